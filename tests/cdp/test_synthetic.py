"""Synthetic customers: determinism, realistic duplicates, and an end-to-end dedupe.

Measured (2,000 records, threshold 0.9, 2-core machine, ~6 s): cluster pairs
seed 7 precision 0.948, recall 0.997, F1 0.972; seeds 1 and 3 F1 0.979 and 0.960.
The F1 floor below leaves a margin for library drift.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd
import pytest

from storelens.cdp.identity import MODEL_COLUMNS, dedupe
from storelens.cdp.linkage_eval import clusters_to_pairs, score_pairs
from storelens.cdp.synthetic import SOURCES, SYNTHETIC_COLUMNS, generate_customers


@pytest.fixture(scope="module")
def sample() -> tuple[pd.DataFrame, pd.Series]:
    return generate_customers(5_000, seed=7)


def test_deterministic_for_a_seed(sample: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, truth = generate_customers(5_000, seed=7)
    pd.testing.assert_frame_equal(frame, sample[0])
    pd.testing.assert_series_equal(truth, sample[1])
    other, _ = generate_customers(5_000, seed=8)
    assert not other.equals(frame)


def test_shape_and_columns(sample: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, truth = sample
    assert len(frame) == len(truth) == 5_000
    assert list(frame.columns) == ["unique_id", "source_dataset", *SYNTHETIC_COLUMNS]
    assert set(SYNTHETIC_COLUMNS) <= set(MODEL_COLUMNS)
    assert frame["unique_id"].is_unique
    assert set(frame["source_dataset"]) == set(SOURCES)
    for col in ("first_name", "last_name", "street_number", "address", "postcode", "city"):
        assert frame[col].notna().all(), col
    # optional fields are mostly present, but not always
    for col, low, high in (("dob", 0.9, 0.999), ("email", 0.8, 0.97), ("phone", 0.6, 0.85)):
        share = frame[col].notna().mean()
        assert low < share < high, (col, share)
    pos = frame["source_dataset"] == "pos_loyalty"
    assert frame.loc[pos, "loyalty_id"].notna().all()
    assert frame["phone"].dropna().str.fullmatch(r"\+49\d{10,11}").all()
    assert frame["dob"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert frame["postcode"].str.fullmatch(r"\d{5}").all()


def test_exact_size_for_small_inputs() -> None:
    for n in (1, 2, 17):
        frame, truth = generate_customers(n, seed=1)
        assert len(frame) == len(truth) == n


def test_duplicate_share(sample: tuple[pd.DataFrame, pd.Series]) -> None:
    per_person = sample[1].value_counts()
    share = (per_person > 1).mean()
    assert 0.15 <= share <= 0.30
    assert per_person.max() <= 4


def test_identifiers_never_shared_between_people(
    sample: tuple[pd.DataFrame, pd.Series],
) -> None:
    frame, truth = sample
    for key in ("email", "phone", "loyalty_id"):
        owners = truth.groupby(frame[key]).nunique()
        assert (owners == 1).all(), key


def test_duplicates_are_corrupted(sample: tuple[pd.DataFrame, pd.Series]) -> None:
    frame, truth = sample
    by_entity = frame.assign(entity=truth.to_numpy()).groupby("entity")
    differs: dict[str, int] = dict.fromkeys(SYNTHETIC_COLUMNS, 0)
    nick = identical = 0
    for _, group in by_entity:
        for (_, a), (_, b) in combinations(group.iterrows(), 2):
            cols = [c for c in SYNTHETIC_COLUMNS if a[c] != b[c] and pd.notna(a[c])]
            for c in cols:
                differs[c] += 1
            names = {a["first_name"], b["first_name"]}
            nick += names in ({"johannes", "hannes"}, {"katharina", "kathi"}, {"william", "bill"})
            identical += a[list(SYNTHETIC_COLUMNS)].equals(b[list(SYNTHETIC_COLUMNS)])
    for col in ("first_name", "last_name", "dob", "address", "postcode", "email", "phone"):
        assert differs[col] > 10, (col, differs)
    assert nick > 0
    assert identical < 0.1 * sum(1 for _, g in by_entity for _ in combinations(g.index, 2))


def test_end_to_end_dedupe_quality() -> None:
    frame, truth = generate_customers(2_000, seed=7)
    result = dedupe(frame)
    true_pairs = clusters_to_pairs(dict(zip(frame["unique_id"], truth, strict=True)))
    scores = score_pairs(clusters_to_pairs(result.cluster_of()), true_pairs)
    assert len(true_pairs) > 500
    # With the household veto (measured seed 7: P 0.987, R 0.961, F1 0.974; before it
    # P 0.948, R 0.997): its year-and-day dob faults read as a different person.
    assert scores.precision >= 0.97, scores
    assert scores.recall >= 0.95, scores
    assert scores.f1 >= 0.96, scores
