"""Absolute-error point forecasts: they keep the total and beat every other split of it."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from storelens.predict.allocation import absolute_error_forecasts, expected_absolute_error
from storelens.predict.clv import FitError


def _poisson_rows(means: list[float], width: int = 30) -> np.ndarray:
    from scipy.stats import poisson

    k = np.arange(width)
    return np.array([poisson.pmf(k, m) for m in means])


def test_forecasts_add_up_to_the_total_and_are_whole_but_one() -> None:
    dist = _poisson_rows([0.1, 0.4, 0.9, 2.5, 6.0])
    total = float((dist @ np.arange(dist.shape[1])).sum())
    forecasts = absolute_error_forecasts(dist, total)
    assert forecasts.sum() == pytest.approx(total)
    assert (forecasts >= 0).all()
    assert int((forecasts != np.floor(forecasts)).sum()) <= 1


def test_exhaustive_search_finds_nothing_better() -> None:
    """Every whole split of the total into three customers' counts costs at least as much."""
    dist = _poisson_rows([0.3, 1.2, 3.0], width=12)
    total = 5.0
    forecasts = absolute_error_forecasts(dist, total)
    ours = expected_absolute_error(dist, forecasts)
    for split in itertools.product(range(6), repeat=3):
        if sum(split) == 5:
            other = expected_absolute_error(dist, np.array(split, dtype=np.float64))
            assert ours <= other + 1e-12


def test_beats_the_expected_counts_on_skewed_customers() -> None:
    rng = np.random.default_rng(0)
    dist = _poisson_rows(list(rng.gamma(0.3, 2.0, 400)))
    expected = dist @ np.arange(dist.shape[1])
    forecasts = absolute_error_forecasts(dist, float(expected.sum()))
    assert expected_absolute_error(dist, forecasts) < expected_absolute_error(dist, expected)
    # Most of these customers' medians are 0, and so are their forecasts.
    assert (forecasts == 0).mean() > 0.5


def test_zero_total_gives_zero_forecasts() -> None:
    assert absolute_error_forecasts(_poisson_rows([1.0, 2.0]), 0.0).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("dist", "total", "message"),
    [
        (np.array([0.5, 0.5]), 1.0, "one row a customer"),
        (np.array([[0.5, -0.5, 1.0]]), 1.0, "negative probability"),
        (np.array([[0.9, 0.9]]), 1.0, "more than all"),
        (np.array([[0.5, 0.5]]), -1.0, "cannot spread"),
        (np.array([[0.5, 0.5]]), 2.0, "cannot spread"),
        (np.array([[0.5, 0.5]]), float("nan"), "cannot spread"),
    ],
)
def test_bad_distributions_and_totals_are_refused(
    dist: np.ndarray, total: float, message: str
) -> None:
    with pytest.raises(FitError, match=message):
        absolute_error_forecasts(dist, total)


def test_blocks_of_customers_give_the_same_forecasts_as_one_matrix() -> None:
    rng = np.random.default_rng(1)
    means = list(rng.gamma(0.4, 2.0, 300))
    whole = _poisson_rows(means, width=40)
    total = float((whole @ np.arange(40)).sum())
    # Blocks of different widths, as each block is cut at its own heaviest customer.
    blocks = [_poisson_rows(means[:100], width=25), _poisson_rows(means[100:], width=40)]
    np.testing.assert_allclose(
        absolute_error_forecasts(iter(blocks), total), absolute_error_forecasts(whole, total)
    )


def test_no_customers_is_refused() -> None:
    with pytest.raises(FitError, match="no customers"):
        absolute_error_forecasts(iter([]), 0.0)
