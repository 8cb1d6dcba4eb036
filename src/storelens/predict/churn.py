"""Churn risk from BG/NBD, and the numbers that say whether to believe it.

"Churned" is measured, not guessed: a customer who makes no purchase in the outcome
window. BG/NBD gives the probability of exactly that in closed form,

    P(no purchase in t) = (1 - P(alive)) + P(alive) * ((alpha + T) / (alpha + T + t))^(r + x)

(a customer who is still alive has purchase rate ~ Gamma(r + x, alpha + T) and, since
BG/NBD customers drop out only right after a purchase, stays alive through a quiet
spell). P(alive) alone is not that probability: a live customer may still not buy.

The report gives ROC AUC (does the score rank churners first), PR AUC (how clean the
top of the list is when churners are the majority or the minority), the Brier score,
and a calibration table, so a churn probability of 0.7 can be checked to mean 70 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from storelens.predict.clv import BgNbdParams, p_alive

__all__ = ["CalibrationBin", "ChurnReport", "churn_report", "p_no_purchase"]

Array = npt.NDArray[np.float64]


def p_no_purchase(params: BgNbdParams, t: float, x: Array, t_x: Array, big_t: Array) -> Array:
    """Probability of no purchase in the next ``t`` periods, given each customer's history."""
    alive = p_alive(params, x, t_x, big_t)
    quiet_if_alive = ((params.alpha + big_t) / (params.alpha + big_t + t)) ** (params.r + x)
    result: Array = (1.0 - alive) + alive * quiet_if_alive
    return result


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """Customers whose predicted churn fell in ``[low, high)``, and how many did churn."""

    low: float
    high: float
    customers: int
    predicted: float
    observed: float


@dataclass(frozen=True, slots=True)
class ChurnReport:
    customers: int
    churn_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    calibration: list[CalibrationBin]

    def as_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "churn_rate": round(self.churn_rate, 4),
            "roc_auc": round(self.roc_auc, 4),
            "pr_auc": round(self.pr_auc, 4),
            "brier": round(self.brier, 4),
            "calibration": [
                {
                    "range": [b.low, b.high],
                    "customers": b.customers,
                    "predicted": round(b.predicted, 4),
                    "observed": round(b.observed, 4),
                }
                for b in self.calibration
            ],
        }


def churn_report(predicted: Array, churned: npt.NDArray[np.bool_], bins: int = 10) -> ChurnReport:
    """Ranking and calibration of churn probabilities against what happened.

    Bins are equal-width over [0, 1]; empty bins are left out. Needs both churners and
    stayers, or AUC is undefined.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    if predicted.shape != churned.shape or predicted.ndim != 1:
        raise ValueError("predicted and churned must be 1-d arrays of the same length")
    if churned.all() or not churned.any():
        raise ValueError("need both customers who churned and customers who stayed")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(predicted, edges[1:-1]), 0, bins - 1)
    table = []
    for k in range(bins):
        members = which == k
        if members.any():
            table.append(
                CalibrationBin(
                    low=round(float(edges[k]), 4),
                    high=round(float(edges[k + 1]), 4),
                    customers=int(members.sum()),
                    predicted=float(predicted[members].mean()),
                    observed=float(churned[members].mean()),
                )
            )
    return ChurnReport(
        customers=len(predicted),
        churn_rate=float(churned.mean()),
        roc_auc=float(roc_auc_score(churned, predicted)),
        pr_auc=float(average_precision_score(churned, predicted)),
        brier=float(np.mean((predicted - churned) ** 2)),
        calibration=table,
    )
