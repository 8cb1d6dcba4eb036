"""BG/NBD and Gamma-Gamma on CDNOW: the published fit, and numpy scoring equal to lifetimes'."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.clv import (
    GAMMA_GAMMA_PENALTIES,
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


def test_spend_that_never_varies_within_a_customer_is_fitted_with_a_penalty() -> None:
    """Each customer spends the same every visit (a cafe's regulars): plain maximum
    likelihood runs p off to infinity and lifetimes stops on precision loss. The fit
    then takes the smallest penalty that converges, and spend stays a mean."""
    import contextlib
    import io

    import lifetimes

    rng = np.random.default_rng(0)
    freq = rng.integers(1, 30, 66).astype(float)
    own = np.round(rng.gamma(16, 6.76 / 16, 66), 2)
    summary = pd.DataFrame({"frequency": freq, "monetary": own})
    plain = lifetimes.GammaGammaFitter(penalizer_coef=0.0)
    with pytest.raises(lifetimes.utils.ConvergenceError), contextlib.redirect_stdout(io.StringIO()):
        plain.fit(summary["frequency"], summary["monetary"])  # the case this test is about
    gg = fit_gamma_gamma(summary)
    assert gg.penalizer in GAMMA_GAMMA_PENALTIES[1:] and gg.q > 1
    spend = expected_spend(gg, freq, own)
    population = gg.p * gg.v / (gg.q - 1)
    low, high = np.minimum(own, population), np.maximum(own, population)
    assert np.isfinite(spend).all() and ((spend >= low - 1e-9) & (spend <= high + 1e-9)).all()
    # more visits, more weight on the customer's own mean
    apart = np.abs(own - population) > 0.05  # where the weight is measurable
    weight = (spend - population)[apart] / (own - population)[apart]
    by_visits = np.argsort(freq[apart], kind="stable")
    assert (np.diff(weight[by_visits]) >= -1e-9).all() and 0 < weight.min() < weight.max() < 1


def test_a_penalised_fit_whose_mean_spend_is_implausible_is_refused() -> None:
    """Heavy-tailed spends of 33 repeat buyers (a review's random store): plain maximum
    likelihood fails, and the smallest penalty converged with q = 1.006, giving every
    one-time buyer 427.9 a purchase on spends averaging 7.12. No lifetime value is
    better than that one."""
    frequency = [7, 13, 27, 16, 25, 6, 11, 4, 5, 1, 25, 6, 22, 21, 24, 19, 15, 21, 25, 9, 3,
                 7, 25, 27, 5, 28, 29, 5, 10, 10, 29, 12, 2]  # fmt: skip
    monetary = [39.94, 2.11, 1.45, 1.46, 7.61, 106.48, 12.36, 6.06, 12.92, 6.59, 10.55, 0.88,
                1.52, 4.98, 1.15, 11.87, 8.68, 3.58, 3.04, 1.72, 24.08, 0.69, 4.97, 1.39, 61.49,
                2.97, 13.43, 1.77, 2.49, 1.92, 0.68, 2.38, 4.35]  # fmt: skip
    summary = pd.DataFrame({"frequency": np.array(frequency, float), "monetary": monetary})
    with pytest.raises(FitError, match="no plausible fit"):
        fit_gamma_gamma(summary)


def test_one_rate_and_no_dropout_still_gives_finite_forecasts() -> None:
    """Customers who all buy at one Poisson rate and never leave put BG/NBD's optimum at
    infinity (r and alpha in the millions, a at 0), where scipy's hypergeometric gives
    NaN: a new user's file then failed. The forecast should be about rate x horizon."""
    from storelens.predict.clv import expected_purchases, fit_bgnbd

    rng = np.random.default_rng(3)
    weekly, horizon, n = 0.35, 17.0, 800
    age = rng.uniform(10.0, 22.0, n)  # weeks since the first purchase
    x = rng.poisson(weekly * age).astype(np.float64)
    # The last purchase's time, given x purchases uniformly spread over the age.
    t_x = np.where(x > 0, age * rng.beta(np.maximum(x, 1.0), 1.0), 0.0)
    summary = pd.DataFrame({"frequency": x, "recency": t_x, "T": age})
    params = fit_bgnbd(summary)
    forecast = expected_purchases(params, horizon, x, t_x, age)
    assert np.isfinite(forecast).all()
    assert forecast.sum() == pytest.approx(weekly * horizon * n, rel=0.1)


def test_the_series_fallback_agrees_with_scipy_and_with_exact_sums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where scipy's 2F1 gives no finite value the power series stands in: it must give
    what scipy gives where scipy answers, and the exact sum where scipy gave NaN."""
    from fractions import Fraction

    import scipy.special
    from scipy.special import hyp2f1

    import storelens.predict.clv as clv

    a, b = np.array([2.5, 40.0, 300.0]), np.array([1.2, 3.0, 5.0])
    c, z = np.array([3.1, 4.5, 4.2]), np.array([0.3, 0.05, 0.002])
    expected = hyp2f1(a, b, c, z)
    monkeypatch.setattr(scipy.special, "hyp2f1", lambda *v: np.full(np.shape(v[3]), np.nan))
    np.testing.assert_allclose(clv._hyp2f1(a, b, c, z), expected, rtol=1e-12)

    def exact(a: float, b: float, c: float, z: float) -> float:
        term, total = Fraction(1), Fraction(1)
        fa, fb, fc, fz = (Fraction(v) for v in (a, b, c, z))
        for n in range(80):
            term *= (fa + n) * (fb + n) / ((fc + n) * (n + 1)) * fz
            total += term
        return float(total)

    # The fit of the test above on a new user's file (r 63,380, alpha 348,760, a ~0,
    # b 0.005; scipy 1.x gave NaN for it): x = 3, observed 15 weeks, 17.4 weeks ahead.
    r, alpha, a_, b_ = 63379.77, 348760.15, 4.54e-05, 0.0051
    big = (r + 3, b_ + 3, a_ + b_ + 3 - 1, 17.4 / (alpha + 15 + 17.4))
    got = clv._hyp2f1(*(np.array([v]) for v in big))
    assert got[0] == pytest.approx(exact(*big), rel=1e-12)
