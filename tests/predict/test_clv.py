"""BG/NBD and Gamma-Gamma on CDNOW: the published fit, and numpy scoring equal to lifetimes'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.clv import (
    FitError,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    lifetime_value,
    p_alive,
)
from storelens.predict.evaluate import evaluate_clv
from storelens.predict.summary import summarise


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return summarise(load_cdnow("sample"), CALIBRATION_END, HOLDOUT_END)


def test_bgnbd_reproduces_the_published_cdnow_parameters(sample: pd.DataFrame) -> None:
    p = fit_bgnbd(sample)
    # Fader, Hardie and Lee (2005), table 1: r=0.243, alpha=4.414, a=0.793, b=2.426.
    assert (round(p.r, 3), round(p.alpha, 3), round(p.a, 3), round(p.b, 3)) == (
        0.243,
        4.414,
        0.793,
        2.426,
    )


def test_holdout_evaluation_matches_the_published_figures() -> None:
    ev = evaluate_clv(load_cdnow("sample"), CALIBRATION_END, HOLDOUT_END)
    # The paper: 1,653 predicted against 1,882 actual repeat purchases in weeks 40-78.
    assert (ev.customers, ev.repeat_buyers, ev.holdout_weeks) == (2357, 946, 39.0)
    assert (round(ev.purchases.predicted), ev.purchases.actual) == (1653, 1882.0)
    assert round(ev.purchases.aggregate_error_pct or 0.0, 1) == -12.1
    assert round(ev.purchases.mae, 3) == 0.785
    # Without a challenger there is nothing to compare BG/NBD with.
    assert ev.uncertainty is None
    assert ev.as_json()["uncertainty"] is None


def test_numpy_scores_equal_lifetimes_scores(sample: pd.DataFrame) -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bg, gg = fit_bgnbd(sample), fit_gamma_gamma(sample)
    x, t_x, big_t = (sample[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    monetary = sample["monetary"].to_numpy(np.float64)
    theirs_bg = BetaGeoFitter()
    theirs_bg.params_ = pd.Series(bg.as_dict())
    theirs_bg.predict = (
        theirs_bg.conditional_expected_number_of_purchases_up_to_time
    )  # as fit() does
    theirs_gg = GammaGammaFitter()
    theirs_gg.params_ = pd.Series(gg.as_dict())

    np.testing.assert_allclose(
        expected_purchases(bg, 39.0, x, t_x, big_t),
        theirs_bg.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, big_t),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        p_alive(bg, x, t_x, big_t),
        theirs_bg.conditional_probability_alive(x, t_x, big_t),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        expected_spend(gg, x, monetary),
        theirs_gg.conditional_expected_average_profit(pd.Series(x), pd.Series(monetary)),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        lifetime_value(bg, gg, x, t_x, big_t, monetary, months=12, monthly_discount=0.01),
        theirs_gg.customer_lifetime_value(
            theirs_bg,
            pd.Series(x),
            pd.Series(t_x),
            pd.Series(big_t),
            pd.Series(monetary),
            time=12,
            discount_rate=0.01,
            freq="W",
        ),
        rtol=1e-10,
    )


def test_one_time_buyers_are_alive_and_get_the_population_spend(sample: pd.DataFrame) -> None:
    bg, gg = fit_bgnbd(sample), fit_gamma_gamma(sample)
    zero = np.zeros(2)
    assert p_alive(bg, zero, zero, np.array([1.0, 30.0])).tolist() == [1.0, 1.0]
    population = gg.p * gg.v / (gg.q - 1)
    np.testing.assert_allclose(expected_spend(gg, zero, zero), [population, population])


def test_no_repeat_buyers_cannot_be_fitted() -> None:
    flat = pd.DataFrame(
        {"frequency": [0.0] * 5, "recency": [0.0] * 5, "T": [3.0] * 5, "monetary": [0.0] * 5}
    )
    with pytest.raises(FitError, match="repeat buyer"):
        fit_bgnbd(flat)
    with pytest.raises(FitError, match="Gamma-Gamma needs at least 3"):
        fit_gamma_gamma(flat)
