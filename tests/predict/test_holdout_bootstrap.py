"""The paired bootstrap behind eval-clv's intervals: brackets, zeros, seeds, and a clear winner."""

from __future__ import annotations

import numpy as np
import pytest

from storelens.core.errors import InvalidInput
from storelens.predict.accuracy import holdout_error
from storelens.predict.holdout_bootstrap import (
    BOOTSTRAP_RESAMPLES,
    BOOTSTRAP_SEED,
    holdout_uncertainty,
)


def _holdout(n: int = 3000, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts like CDNOW's holdout, and two noisy forecasts of them that under-predict."""
    rng = np.random.default_rng(seed)
    rate = rng.gamma(0.3, 3.0, n)
    actual = rng.poisson(rate).astype(np.float64)
    ours = np.maximum(rate * 0.93 + rng.normal(0.0, 0.3, n), 0.0)
    classic = np.maximum(rate * 0.87 + rng.normal(0.0, 0.5, n), 0.0)
    return ours, classic, actual


def test_intervals_bracket_the_point_figures() -> None:
    ours, classic, actual = _holdout()
    band = holdout_uncertainty(ours, classic, actual)
    point_diff = holdout_error(ours, actual).mae - holdout_error(classic, actual).mae
    assert band.mae_diff == pytest.approx(point_diff, abs=1e-12)
    low, high = band.mae_diff_ci95
    assert low < band.mae_diff < high
    for forecast, ci in (
        (ours, band.storelens_aggregate_error_pct_ci95),
        (classic, band.bgnbd_aggregate_error_pct_ci95),
    ):
        point = holdout_error(forecast, actual).aggregate_error_pct
        assert ci is not None and point is not None
        assert ci[0] < point < ci[1]
        assert ci[1] - ci[0] > 1.0  # 3,000 customers leave a few % of doubt, not none
    assert (band.customers, band.resamples, band.seed) == (3000, 2000, BOOTSTRAP_SEED)
    assert BOOTSTRAP_RESAMPLES == 2000


def test_identical_forecasts_differ_by_exactly_zero() -> None:
    ours, _, actual = _holdout()
    band = holdout_uncertainty(ours, ours.copy(), actual)
    assert band.mae_diff == 0.0
    assert band.mae_diff_ci95 == (0.0, 0.0)
    assert band.storelens_aggregate_error_pct_ci95 == band.bgnbd_aggregate_error_pct_ci95
    assert band.as_json()["mae_diff"] == {"diff": 0.0, "ci95": [0.0, 0.0]}


def test_the_same_seed_gives_the_same_intervals_and_another_seed_does_not() -> None:
    ours, classic, actual = _holdout()
    first = holdout_uncertainty(ours, classic, actual, seed=11)
    assert holdout_uncertainty(ours, classic, actual, seed=11) == first
    other = holdout_uncertainty(ours, classic, actual, seed=12)
    assert other.mae_diff == first.mae_diff  # the point figure does not depend on the draw
    assert other.mae_diff_ci95 != first.mae_diff_ci95


def test_a_model_better_for_every_customer_has_its_whole_interval_below_zero() -> None:
    _, classic, actual = _holdout()
    # Halfway to the truth for everyone: strictly smaller error wherever BG/NBD erred.
    better = (classic + actual) / 2.0
    assert np.all(np.abs(better - actual) <= np.abs(classic - actual))
    band = holdout_uncertainty(better, classic, actual)
    assert band.mae_diff < 0.0
    assert band.mae_diff_ci95[1] < 0.0


def test_blocks_of_resamples_give_the_intervals_one_block_would() -> None:
    """Large customer bases are drawn a block at a time; the draw must not depend on it."""
    import storelens.core.resampling as module

    ours, classic, actual = _holdout(n=500)
    whole = holdout_uncertainty(ours, classic, actual, resamples=300)
    saved = module._BLOCK_CELLS
    try:
        module._BLOCK_CELLS = 500 * 7  # blocks of 7 resamples
        blocked = holdout_uncertainty(ours, classic, actual, resamples=300)
    finally:
        module._BLOCK_CELLS = saved
    assert blocked == whole


def test_nobody_bought_leaves_the_aggregate_intervals_undefined() -> None:
    band = holdout_uncertainty(np.ones(10), np.full(10, 2.0), np.zeros(10), resamples=50)
    assert band.storelens_aggregate_error_pct_ci95 is None
    assert band.bgnbd_aggregate_error_pct_ci95 is None
    assert band.mae_diff == -1.0
    assert band.as_json()["bgnbd_aggregate_error_pct_ci95"] is None


@pytest.mark.parametrize(
    ("ours", "classic", "actual", "resamples", "message"),
    [
        (np.ones(3), np.ones(4), np.ones(3), 10, "equal-length"),
        (np.ones(0), np.ones(0), np.ones(0), 10, "no customers"),
        (np.ones(3), np.array([1.0, np.nan, 1.0]), np.ones(3), 10, "finite"),
        (np.ones(3), np.ones(3), np.ones(3), 0, "at least 1"),
    ],
)
def test_unusable_input_is_refused(
    ours: np.ndarray, classic: np.ndarray, actual: np.ndarray, resamples: int, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        holdout_uncertainty(ours, classic, actual, resamples=resamples)
