"""Churn probability from BG/NBD: checked against simulation and lifetimes; the report's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.churn import churn_report, p_no_purchase
from storelens.predict.clv import BgNbdParams, fit_bgnbd
from storelens.predict.summary import summarise

PARAMS = BgNbdParams(r=0.5, alpha=5.0, a=0.8, b=2.5)


def test_a_brand_new_customer_matches_lifetimes_unconditional_probability() -> None:
    from lifetimes import BetaGeoFitter

    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series({"r": PARAMS.r, "alpha": PARAMS.alpha, "a": PARAMS.a, "b": PARAMS.b})
    zero = np.zeros(1)
    ours = p_no_purchase(PARAMS, 10.0, zero, zero, zero)[0]
    assert ours == pytest.approx(float(fitter.probability_of_n_purchases_up_to_time(10.0, 0)))


def test_matches_a_simulated_population_given_its_history() -> None:
    """Customers with 2 repeat purchases, the last in week 14-15 of 20: who buys in 10 more?"""
    rng = np.random.default_rng(20240301)
    n, big_t, t = 4_000_000, 20.0, 10.0
    rate = rng.gamma(PARAMS.r, 1.0 / PARAMS.alpha, n)
    drop = rng.beta(PARAMS.a, PARAMS.b, n)
    arrivals = rng.poisson(rate * big_t)
    max_repeats = rng.geometric(drop)
    x = np.minimum(arrivals, max_repeats)
    alive = max_repeats > arrivals
    chosen = x == 2
    t_x = np.zeros(n)
    t_x[chosen] = big_t * rng.beta(2, arrivals[chosen] - 1)
    chosen &= (t_x >= 14.0) & (t_x < 15.0)
    assert chosen.sum() > 5_000
    simulated = np.mean(np.where(alive[chosen], np.exp(-rate[chosen] * t), 1.0))
    formula = p_no_purchase(
        PARAMS, t, x[chosen].astype(float), t_x[chosen], np.full(chosen.sum(), big_t)
    ).mean()
    assert formula == pytest.approx(simulated, abs=0.01)


def test_cdnow_churn_report() -> None:
    s = summarise(load_cdnow("sample"), CALIBRATION_END, HOLDOUT_END)
    x, t_x, big_t = (s[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    report = churn_report(
        p_no_purchase(fit_bgnbd(s), 39.0, x, t_x, big_t), s["purchases"].to_numpy() == 0
    )
    assert (report.customers, round(report.churn_rate, 4)) == (2357, 0.7098)
    assert (round(report.roc_auc, 3), round(report.pr_auc, 3)) == (0.757, 0.828)
    assert sum(b.customers for b in report.calibration) == 2357
    assert report.calibration[-1].low == 0.9


def test_report_by_hand_and_refuses_one_class() -> None:
    predicted = np.array([0.05, 0.15, 0.95, 0.85])
    churned = np.array([False, False, True, False])
    report = churn_report(predicted, churned, bins=2)
    assert (report.roc_auc, report.pr_auc) == (1.0, 1.0)
    assert report.brier == pytest.approx((0.05**2 + 0.15**2 + 0.05**2 + 0.85**2) / 4)
    assert [(b.customers, b.observed) for b in report.calibration] == [(2, 0.0), (2, 0.5)]
    with pytest.raises(ValueError, match="both"):
        churn_report(predicted, np.ones(4, dtype=bool))
