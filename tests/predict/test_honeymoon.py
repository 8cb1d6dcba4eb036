"""The honeymoon BG/NBD: recovers a known effect, reduces to BG/NBD, reads only the past."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from storelens.predict.cdnow import CALIBRATION_END, load_cdnow
from storelens.predict.clv import FitError, expected_purchases, fit_bgnbd
from storelens.predict.honeymoon import (
    HoneymoonParams,
    _log_likelihood,
    classic_as_honeymoon,
    expected_honeymoon_purchases,
    fit_honeymoon,
    honeymoon_distribution,
    honeymoon_distribution_blocks,
    purchase_history,
)
from storelens.predict.summary import calibration_summary, holdout_summary

START = date(2025, 1, 1)
CAL_END = START + timedelta(days=272)  # 39 weeks
HOLD_END = CAL_END + timedelta(days=273)


def simulate(
    n: int,
    *,
    boost: float,
    settle_weeks: float,
    spend_effect: float,
    seed: int = 3,
    r: float = 0.5,
    alpha: float = 6.0,
    a: float = 1.0,
    b: float = 4.0,
) -> pd.DataFrame:
    """Orders from the honeymoon process itself: Poisson arrivals in operational time,
    dropout with probability p after each purchase, first purchases over 12 weeks."""
    rng = np.random.default_rng(seed)
    first_day = rng.integers(0, 84, n)
    first_spend = rng.lognormal(3.2, 0.7, n)
    logged = np.log1p(first_spend)
    z = (logged - logged.mean()) / logged.std()
    rate = rng.gamma(r, 1.0 / (alpha * np.exp(-spend_effect * z)))
    drop = rng.beta(a, b, n)
    most = 80
    operational = np.cumsum(rng.exponential(1.0, (n, most)), axis=1) / rate[:, None]
    alive = np.arange(1, most + 1)[None, :] <= rng.geometric(drop)[:, None]
    grid = np.linspace(0.0, 200.0, 200_001)  # weeks
    stretched = grid + boost * settle_weeks * -np.expm1(-grid / settle_weeks)
    weeks = np.interp(operational, stretched, grid, right=np.inf)
    days = first_day[:, None] + np.floor(weeks * 7.0)
    keep = alive & (days <= (HOLD_END - START).days)
    who, _ = np.nonzero(keep)
    customers = np.concatenate([np.arange(n), who])
    offsets = np.concatenate([first_day, days[keep]]).astype("int64")
    amounts = np.concatenate([first_spend, rng.gamma(4.0, 8.0, who.size)])
    return pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in customers],
            "date": pd.Timestamp(START) + pd.to_timedelta(offsets, unit="D"),
            "amount": amounts,
        }
    )


@pytest.fixture(scope="module")
def honeymooners() -> pd.DataFrame:
    return simulate(4000, boost=2.0, settle_weeks=6.0, spend_effect=0.5)


def test_recovers_a_known_honeymoon_and_spend_effect(honeymooners: pd.DataFrame) -> None:
    fitted = fit_honeymoon(purchase_history(honeymooners, CAL_END))
    assert 1.2 < fitted.boost < 3.2
    assert 3.0 < fitted.settle_weeks < 12.0
    assert 0.3 < fitted.spend_effect < 0.7


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_finds_no_honeymoon_where_there_is_none(seed: int) -> None:
    """On a steady BG/NBD process the extra parameters buy nothing significant."""
    steady = simulate(4000, boost=0.0, settle_weeks=6.0, spend_effect=0.0, seed=seed)
    history = purchase_history(steady, CAL_END)
    classic = fit_bgnbd(calibration_summary(steady, CAL_END))
    fitted = fit_honeymoon(history, classic)
    gain = _log_likelihood(fitted, history) - _log_likelihood(
        classic_as_honeymoon(classic), history
    )
    # Likelihood-ratio statistic 2 * gain under chi-square(3): 16.27 is its 0.1 % tail.
    assert -1e-6 < 2 * gain < 16.27
    assert abs(fitted.spend_effect) < 0.15
    ours = expected_honeymoon_purchases(fitted, history, 39.0).sum()
    theirs = expected_honeymoon_purchases(classic_as_honeymoon(classic), history, 39.0).sum()
    assert abs(ours / theirs - 1.0) < 0.05


def test_forecasts_the_later_window_better_than_the_classic_model(
    honeymooners: pd.DataFrame,
) -> None:
    cal = calibration_summary(honeymooners, CAL_END)
    actual = holdout_summary(honeymooners, cal.index, CAL_END, HOLD_END)["purchases"].sum()
    weeks = (HOLD_END - CAL_END).days / 7
    classic = fit_bgnbd(cal)
    x, t_x, big_t = (cal[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    classic_total = expected_purchases(classic, weeks, x, t_x, big_t).sum()
    history = purchase_history(honeymooners, CAL_END)
    ours = expected_honeymoon_purchases(fit_honeymoon(history), history, weeks).sum()
    # The classic model reads the honeymoon's end as dropout and under-forecasts.
    assert classic_total < 0.95 * actual
    assert abs(ours - actual) < abs(classic_total - actual)
    assert abs(ours / actual - 1.0) < 0.05


def test_without_honeymoon_or_covariate_it_is_the_classic_bgnbd() -> None:
    tx = load_cdnow("sample")
    cal = calibration_summary(tx, CALIBRATION_END)
    params = fit_bgnbd(cal)
    history = purchase_history(tx, CALIBRATION_END)
    x, t_x, big_t = (cal[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    classic = classic_as_honeymoon(params)
    np.testing.assert_allclose(
        expected_honeymoon_purchases(classic, history, 39.0),
        expected_purchases(params, 39.0, x, t_x, big_t),
        rtol=1e-10,
    )
    # Its distribution is a distribution, and its mean is the expected count.
    dist = honeymoon_distribution(classic, history, 39.0)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(
        dist @ np.arange(dist.shape[1]),
        expected_purchases(params, 39.0, x, t_x, big_t),
        atol=1e-8,
    )


def test_distribution_mean_is_the_expected_count_with_a_honeymoon(
    honeymooners: pd.DataFrame,
) -> None:
    history = purchase_history(honeymooners, CAL_END)
    params = HoneymoonParams(0.5, 6.0, 1.2, 4.0, 2.0, 6.0, 0.5, 3.5, 0.6)
    dist = honeymoon_distribution(params, history, 20.0)
    assert (dist >= 0).all()
    np.testing.assert_allclose(dist.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(
        dist @ np.arange(dist.shape[1]),
        expected_honeymoon_purchases(params, history, 20.0),
        atol=1e-8,
    )
    assert expected_honeymoon_purchases(params, history, 0.0).sum() == 0.0
    # In blocks of customers, each as wide as its own heaviest buyer needs: the same rows.
    blocks = list(honeymoon_distribution_blocks(params, history, 20.0, customers_per_block=700))
    assert [len(b) for b in blocks] == [700] * 5 + [len(dist) - 3500]
    for i, block in enumerate(blocks):
        np.testing.assert_allclose(
            block, dist[700 * i : 700 * (i + 1), : block.shape[1]], rtol=1e-12, atol=1e-15
        )


def test_purchases_after_the_cut_off_change_nothing(honeymooners: pd.DataFrame) -> None:
    """Point in time: orders after the cut-off are not read, by the history or the fit."""
    before = purchase_history(honeymooners, CAL_END)
    later = honeymooners.head(300).assign(date=pd.Timestamp(CAL_END) + pd.Timedelta(days=1))
    after = purchase_history(pd.concat([honeymooners, later]), CAL_END)
    for field in ("frequency", "recency", "age", "first_spend", "repeat_ages"):
        np.testing.assert_array_equal(getattr(before, field), getattr(after, field))
    assert fit_honeymoon(before) == fit_honeymoon(after)


def test_too_little_data_is_refused() -> None:
    few = simulate(3, boost=1.0, settle_weeks=6.0, spend_effect=0.0)
    with pytest.raises(FitError, match="at least 4 customers"):
        fit_honeymoon(purchase_history(few, CAL_END))
    once = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "date": pd.Timestamp(START),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    with pytest.raises(FitError, match="repeat buyer"):
        fit_honeymoon(purchase_history(once, CAL_END))


def test_negative_horizon_is_refused(honeymooners: pd.DataFrame) -> None:
    history = purchase_history(honeymooners, CAL_END)
    params = classic_as_honeymoon(fit_bgnbd(calibration_summary(honeymooners, CAL_END)))
    with pytest.raises(ValueError, match="horizon"):
        expected_honeymoon_purchases(params, history, -1.0)
    with pytest.raises(ValueError, match="horizon"):
        honeymoon_distribution(params, history, -1.0)
