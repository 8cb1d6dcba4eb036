"""FMR/FNMR arithmetic and the threshold rule, on embeddings whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from storelens.recognition.evaluate import (
    PairDistances,
    choose_threshold,
    pair_distances,
    rates_at,
)


def test_pairs_split_into_genuine_and_impostor_with_their_distances() -> None:
    e = np.array([[0.0, 0], [0.3, 0], [1.0, 0], [1.0, 0.4]])
    pairs = pair_distances(e, ["a", "a", "b", "b"])
    assert sorted(pairs.genuine.round(3)) == [0.3, 0.4]
    assert len(pairs.impostor) == 4
    assert min(pairs.impostor) == pytest.approx(0.7)


def test_groups_drop_genuine_pairs_of_one_photo() -> None:
    e = np.array([[0.0, 0], [0.1, 0], [0.5, 0]])
    pairs = pair_distances(e, ["a", "a", "a"], groups=["p1", "p1", "p2"])
    assert sorted(pairs.genuine.round(3)) == [0.4, 0.5]


def test_pairs_against_a_gallery() -> None:
    probes = np.array([[0.0, 0], [2.0, 0]])
    gallery = (np.array([[0.1, 0], [2.0, 0.2]]), ["a", "b"])
    pairs = pair_distances(probes, ["a", "c"], against=gallery)
    assert pairs.genuine.round(3).tolist() == [0.1]
    assert len(pairs.impostor) == 3


def test_rates_count_errors_on_each_side_of_the_threshold() -> None:
    pairs = PairDistances(genuine=np.array([0.2, 0.4, 0.6]), impostor=np.array([0.5, 0.8, 0.9]))
    r = rates_at(0.55, pairs)
    assert (r.false_non_matches, r.false_matches) == (1, 1)
    assert r.fnmr == pytest.approx(1 / 3)
    assert r.fmr == pytest.approx(1 / 3)
    at_distance = rates_at(0.6, pairs)  # a distance equal to the threshold does not match
    assert at_distance.false_non_matches == 1
    assert np.isnan(rates_at(0.5, PairDistances(np.array([]), np.array([0.1]))).fnmr)


def test_the_threshold_sits_between_the_sets_and_below_the_closest_stranger() -> None:
    pairs = PairDistances(genuine=np.array([0.2, 0.4]), impostor=np.array([0.7, 0.9]))
    assert choose_threshold(pairs, margin=0.1, ceiling=0.6) == pytest.approx(0.55)
    assert choose_threshold(pairs, margin=0.2, ceiling=0.6) == pytest.approx(0.5)
    assert choose_threshold(pairs, margin=0.0, ceiling=0.45) == pytest.approx(0.45)
    with pytest.raises(ValueError, match="genuine and impostor"):
        choose_threshold(PairDistances(np.array([]), np.array([0.5])), margin=0.1, ceiling=0.6)
