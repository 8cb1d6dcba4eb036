"""How far a forecast of holdout counts or spend was from what happened.

Two errors, because they answer different questions: the aggregate error (sum predicted
against sum actual, in %) is what a finance forecast cares about; the per-customer mean
absolute error is what targeting one customer cares about. Coverage (how many customers,
how many actually bought) is reported beside them by the callers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["HoldoutError", "holdout_error"]


@dataclass(frozen=True, slots=True)
class HoldoutError:
    """Predicted against actual over the holdout, in total and per customer."""

    predicted: float
    actual: float
    aggregate_error_pct: float | None  # None when nothing actually happened
    mae: float

    def as_dict(self) -> dict[str, float | None]:
        return {
            "predicted": round(self.predicted, 3),
            "actual": round(self.actual, 3),
            "aggregate_error_pct": (
                None if self.aggregate_error_pct is None else round(self.aggregate_error_pct, 2)
            ),
            "mae": round(self.mae, 4),
        }


def holdout_error(
    predicted: npt.NDArray[np.float64], actual: npt.NDArray[np.float64]
) -> HoldoutError:
    total_pred, total_act = float(predicted.sum()), float(actual.sum())
    pct = None if total_act == 0 else 100.0 * (total_pred - total_act) / total_act
    return HoldoutError(
        predicted=total_pred,
        actual=total_act,
        aggregate_error_pct=pct,
        mae=float(np.abs(predicted - actual).mean()),
    )
