"""The churn classifier against a simulator that knows who really left."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from storelens.predict.churn_model import (
    churn_labels,
    evaluate_churn_classifier,
    fit_churn_classifier,
    training_set,
)
from storelens.sim.lifecycle import LifecycleConfig, simulate_lifecycles, weeks_after

CONFIG = LifecycleConfig(customers=10_000, seed=11)
WINDOW = 90


@pytest.fixture(scope="module")
def simulated() -> tuple[pd.DataFrame, object]:
    return simulate_lifecycles(CONFIG)


def _naive(when: datetime) -> datetime:
    return when.replace(tzinfo=None)


def test_simulator_is_seeded_and_nobody_buys_after_leaving(simulated: tuple) -> None:
    orders, truth = simulated
    again, _ = simulate_lifecycles(CONFIG)
    pd.testing.assert_frame_equal(orders, again)
    week = (orders["ts"] - pd.Timestamp(truth.start)).dt.total_seconds() / (7 * 86400)
    left = pd.Series(truth.left_week, index=list(truth.customer_ids))
    assert (week.to_numpy() <= left.loc[orders["customer_id"]].to_numpy() + 1e-6).all()
    cutoff = weeks_after(truth.start, 60)
    gone = truth.left_week <= 60
    assert gone.any() and (~gone).any()
    p = truth.p_no_purchase(cutoff, WINDOW)
    assert (p[gone] == 1.0).all()
    assert ((p[~gone] > 0) & (p[~gone] < 1)).all()


def test_calibrated_probabilities_match_the_true_churn_probabilities(simulated: tuple) -> None:
    orders, truth = simulated
    cutoff = weeks_after(truth.start, 60)
    ev = evaluate_churn_classifier(orders, _naive(cutoff), WINDOW, threads=1)
    true_p = (
        pd.Series(truth.p_no_purchase(cutoff, WINDOW), index=list(truth.customer_ids))
        .reindex(ev.customers)
        .to_numpy()
    )
    assert not np.isnan(true_p).any()
    # Five bins of predicted churn; in each, the mean prediction is within 4 points of
    # the mean *true* probability (measured gaps are under 1.5 points on this seed).
    bins = np.clip((ev.predicted * 5).astype(int), 0, 4)
    for b in range(5):
        members = bins == b
        assert members.sum() >= 200, (b, int(members.sum()))
        gap = abs(ev.predicted[members].mean() - true_p[members].mean())
        assert gap <= 0.04, (b, int(members.sum()), gap)
    from sklearn.metrics import roc_auc_score

    oracle = roc_auc_score(ev.churned, true_p)
    assert ev.report.roc_auc >= 0.9
    assert oracle - ev.report.roc_auc <= 0.05
    assert ev.as_json()["window_days"] == WINDOW


def test_orders_after_the_test_window_change_nothing(simulated: tuple) -> None:
    orders, truth = simulated
    cutoff = _naive(weeks_after(truth.start, 40))
    small = orders[orders["customer_id"] < "S0002000"]
    first = evaluate_churn_classifier(small, cutoff, WINDOW, threads=1)
    late = pd.DataFrame(
        {
            "customer_id": pd.Series(["S0000001"] * 3, dtype="string"),
            "ts": pd.Timestamp(truth.start) + pd.Timedelta(weeks=70),
            "amount": 500.0,
            "channel": pd.Series(["web"] * 3, dtype="string"),
        }
    )
    second = evaluate_churn_classifier(pd.concat([small, late]), cutoff, WINDOW, threads=1)
    np.testing.assert_allclose(first.predicted, second.predicted)


def test_labels_count_only_the_window() -> None:
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "ts": pd.to_datetime(["2025-01-05", "2025-02-01", "2025-05-01"], utc=True),
            "amount": [1.0, 1.0, 1.0],
        }
    )
    labels = churn_labels(orders, pd.Index(["a", "b", "c"]), datetime(2025, 1, 10), 30)
    assert labels.to_dict() == {"a": True, "b": False, "c": True}


def test_one_class_refused(simulated: tuple) -> None:
    orders, truth = simulated
    features, labels = training_set(orders, _naive(weeks_after(truth.start, 30)), WINDOW)
    with pytest.raises(ValueError, match="both churners and stayers"):
        fit_churn_classifier(
            features, labels & False, cutoff=datetime(2025, 1, 1), window_days=WINDOW
        )


def test_too_few_customers_for_a_split_are_refused_not_given_one_risk(simulated: tuple) -> None:
    """A calibration fold of fewer than two leaves' worth of customers grows no tree:
    every customer then got the churn rate as their risk (the demo's 47 all showed the
    same 10.6 %). Refused, so scoring falls back to BG/NBD's P(no purchase)."""
    from storelens.predict.churn_model import MIN_TRAINING_CUSTOMERS

    orders, truth = simulated
    features, labels = training_set(orders, _naive(weeks_after(truth.start, 50)), WINDOW)
    assert labels.any() and not labels.all()
    few = features.index[: MIN_TRAINING_CUSTOMERS - 1]
    assert labels.loc[few].any() and not labels.loc[few].all()  # both classes: size alone
    with pytest.raises(ValueError, match=f"need at least {MIN_TRAINING_CUSTOMERS} customers"):
        fit_churn_classifier(
            features.loc[few], labels.loc[few], cutoff=datetime(2025, 1, 1), window_days=WINDOW
        )
    enough = features.index[: 4 * MIN_TRAINING_CUSTOMERS]
    fitted = fit_churn_classifier(
        features.loc[enough], labels.loc[enough], cutoff=datetime(2025, 1, 1),
        window_days=WINDOW, threads=1,
    )  # fmt: skip
    fitted_risk = fitted.predict(features.loc[enough])
    assert np.ptp(fitted_risk) > 0.1  # the customers are told apart


def test_a_classifier_that_learns_nothing_is_refused() -> None:
    """Features that cannot separate anyone (all equal) leave one risk for all."""
    from storelens.predict.churn_model import MIN_TRAINING_CUSTOMERS
    from storelens.predict.features import FEATURE_COLUMNS

    n = 2 * MIN_TRAINING_CUSTOMERS
    features = pd.DataFrame(
        {c: np.ones(n) for c in FEATURE_COLUMNS}, index=[f"c{i}" for i in range(n)]
    )
    labels = pd.Series(np.arange(n) % 3 == 0, index=features.index)
    with pytest.raises(ValueError, match="nothing to tell"):
        fit_churn_classifier(features, labels, cutoff=datetime(2025, 1, 1), window_days=WINDOW)
