"""How sure is storelens's lead over BG/NBD on one holdout? A paired bootstrap over customers.

``eval-clv`` reports one holdout: storelens's model against BG/NBD on the same customers.
Whether a lead of 0.07 in per-customer MAE, or an aggregate error of -8 % against a
±5 % target, would survive another draw of customers is a question about the spread
of those figures over customers, which this module answers.

Both models are scored on the same customers, so the MAE comparison is about the
per-customer *difference* in absolute error, whose spread is much smaller than either
model's own (a customer who bought ten times in the holdout is hard for both). Each
resample draws customers with replacement and computes, on the same draw: the mean
difference in absolute error, and each model's aggregate error (predicted total
against actual total over the drawn customers, in %). The 2.5th and 97.5th
percentiles of the resamples are the 95 % interval; the generator is seeded, so the
same report gives the same interval.

The forecasts are fitted once, on the whole calibration period, and only the customers
are redrawn: the interval covers which customers happened to be in the file, *not* the
uncertainty of the fitted parameters or of the model choice (refitting per resample
would take minutes per draw on the full CDNOW file). Intervals are per figure, not
adjusted for looking at three of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from storelens.core.errors import InvalidInput
from storelens.core.resampling import bootstrap_sums, percentile_interval

__all__ = [
    "BOOTSTRAP_METHOD",
    "BOOTSTRAP_RESAMPLES",
    "BOOTSTRAP_SEED",
    "HoldoutUncertainty",
    "holdout_uncertainty",
]

Array = npt.NDArray[np.float64]
Interval = tuple[float, float]

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 19_970_930
BOOTSTRAP_METHOD = (
    "paired bootstrap over customers (percentile 95 % intervals); the forecasts are fitted "
    "once and not refitted per resample, so the intervals cover which customers were drawn, "
    "not parameter uncertainty"
)


@dataclass(frozen=True, slots=True)
class HoldoutUncertainty:
    """storelens's MAE minus BG/NBD's, and each model's aggregate error, with 95 % intervals.

    An aggregate-error interval is None when no drawn customer set bought anything
    (the error is then undefined, as in :class:`storelens.predict.accuracy.HoldoutError`).
    """

    mae_diff: float
    mae_diff_ci95: Interval
    storelens_aggregate_error_pct_ci95: Interval | None
    bgnbd_aggregate_error_pct_ci95: Interval | None
    customers: int
    resamples: int
    seed: int

    def as_json(self) -> dict[str, Any]:
        return {
            "mae_diff": {
                "diff": round(self.mae_diff, 4),
                "ci95": [round(v, 4) for v in self.mae_diff_ci95],
            },
            "storelens_aggregate_error_pct_ci95": _pct(self.storelens_aggregate_error_pct_ci95),
            "bgnbd_aggregate_error_pct_ci95": _pct(self.bgnbd_aggregate_error_pct_ci95),
            "customers": self.customers,
            "resamples": self.resamples,
            "seed": self.seed,
            "method": BOOTSTRAP_METHOD,
        }


def _pct(interval: Interval | None) -> list[float] | None:
    return None if interval is None else [round(v, 2) for v in interval]


def holdout_uncertainty(
    storelens: Array,
    bgnbd: Array,
    actual: Array,
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> HoldoutUncertainty:
    """Resample customers (element ``i`` of each array is customer ``i``) and score both.

    A resample whose customers bought nothing in the holdout has no aggregate error and
    is left out of those two intervals (never on a file with buyers of any size).
    """
    ours = np.asarray(storelens, dtype=np.float64)
    classic = np.asarray(bgnbd, dtype=np.float64)
    truth = np.asarray(actual, dtype=np.float64)
    if ours.ndim != 1 or not (ours.shape == classic.shape == truth.shape):
        raise InvalidInput(
            "forecasts and actuals must be equal-length vectors, got "
            f"{ours.shape}, {classic.shape} and {truth.shape}"
        )
    if resamples < 1:
        raise InvalidInput(f"resamples must be at least 1, got {resamples}")
    n = truth.shape[0]
    if n == 0:
        raise InvalidInput("there are no customers to resample")
    columns = np.stack([np.abs(ours - truth) - np.abs(classic - truth), ours, classic, truth])
    if not np.all(np.isfinite(columns)):
        raise InvalidInput("forecasts and actuals must be finite")

    sums = bootstrap_sums(columns, resamples, seed)
    diff_sum, ours_total, classic_total, actual_total = sums
    with np.errstate(divide="ignore", invalid="ignore"):
        ours_pct = 100.0 * (ours_total - actual_total) / actual_total
        classic_pct = 100.0 * (classic_total - actual_total) / actual_total
    ours_pct[actual_total == 0] = np.nan
    classic_pct[actual_total == 0] = np.nan
    mae_ci = percentile_interval(diff_sum / n)
    assert mae_ci is not None  # every resample has a mean difference
    return HoldoutUncertainty(
        mae_diff=float(columns[0].mean()),
        mae_diff_ci95=mae_ci,
        storelens_aggregate_error_pct_ci95=percentile_interval(ours_pct),
        bgnbd_aggregate_error_pct_ci95=percentile_interval(classic_pct),
        customers=n,
        resamples=resamples,
        seed=seed,
    )
