"""Fit on a calibration window, predict the holdout, and say how far off the model was.

This is the measurement behind ``storelens predict eval-clv``: the same split Fader,
Hardie and Lee used on CDNOW, run on any transaction file, so that a store can see
how well lifetime value is predicted on its own customers before trusting it.

Two errors are reported, because they answer different questions: the aggregate error
(sum predicted vs sum actual, in %) is what a finance forecast cares about; the
per-customer mean absolute error is what targeting one customer cares about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np

from storelens.predict.accuracy import HoldoutError, holdout_error
from storelens.predict.clv import (
    BgNbdParams,
    FitError,
    GammaGammaParams,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
)
from storelens.predict.holdout_bootstrap import HoldoutUncertainty, holdout_uncertainty
from storelens.predict.summary import DAYS_PER_PERIOD, summarise

if TYPE_CHECKING:
    import pandas as pd

    from storelens.predict.challenger import Challenge

__all__ = ["PERIOD_CONVENTION", "ClvEvaluation", "HoldoutError", "evaluate_clv", "holdout_error"]

PERIOD_CONVENTION = "weeks of 7 days; purchases counted once per customer per day"


@dataclass(frozen=True, slots=True)
class ClvEvaluation:
    """The classic model's fitted parameters and its holdout errors."""

    calibration_end: date
    holdout_end: date
    customers: int
    repeat_buyers: int
    holdout_weeks: float
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams | None  # None: not fitted, see ``spend_unavailable``
    purchases: HoldoutError
    spend: HoldoutError | None
    challenger: Challenge | None = None
    challenger_purchases: HoldoutError | None = None
    challenger_expected: HoldoutError | None = None  # its expected counts, for comparison
    # storelens against BG/NBD over resampled customers (the forecasts above, not refitted)
    uncertainty: HoldoutUncertainty | None = None
    spend_unavailable: str | None = None  # why Gamma-Gamma could not be fitted

    def as_json(self) -> dict[str, Any]:
        storelens: dict[str, Any] = {}
        if self.challenger is not None and self.challenger_purchases is not None:
            storelens = {**self.challenger_purchases.as_dict(), **self.challenger.as_json()}
            if self.challenger_expected is not None:
                storelens["expected_counts"] = self.challenger_expected.as_dict()
        return {
            "storelens": storelens,
            "calibration_end": self.calibration_end.isoformat(),
            "holdout_end": self.holdout_end.isoformat(),
            "period": PERIOD_CONVENTION,
            "customers": self.customers,
            "repeat_buyers": self.repeat_buyers,
            "holdout_weeks": round(self.holdout_weeks, 4),
            "bgnbd": {
                **self.purchases.as_dict(),
                "params": {k: round(v, 4) for k, v in self.bgnbd.as_dict().items()},
                "spend": None if self.spend is None else self.spend.as_dict(),
                "gamma_gamma": (
                    None
                    if self.gamma_gamma is None
                    else {k: round(v, 4) for k, v in self.gamma_gamma.as_dict().items()}
                ),
                "spend_unavailable": self.spend_unavailable,
            },
            "uncertainty": None if self.uncertainty is None else self.uncertainty.as_json(),
        }


def evaluate_clv(
    tx: pd.DataFrame,
    calibration_end: date,
    holdout_end: date,
    *,
    challenge_with: float | None = None,
) -> ClvEvaluation:
    """Fit BG/NBD and Gamma-Gamma to the calibration end, then score the holdout after it.

    Predicted holdout spend is expected purchases times the Gamma-Gamma expected spend
    per purchase; actual spend is what the customer paid in the holdout. With
    ``challenge_with`` (a validation tolerance in %), storelens's challenger
    (:mod:`storelens.predict.challenger`) is chosen and scored beside the classic model,
    and the two are compared over resampled customers
    (:mod:`storelens.predict.holdout_bootstrap`) from the same per-customer forecasts.
    """
    summary = summarise(tx, calibration_end, holdout_end)
    bg = fit_bgnbd(summary)
    # Spend is the second question: a file whose repeat spend Gamma-Gamma cannot fit
    # (too few repeat buyers, or spends it cannot shape) still gets its purchase counts
    # measured, not refused with the library's advice to add a penalizer.
    gg, spend_unavailable = None, None
    try:
        gg = fit_gamma_gamma(summary)
    except FitError as exc:
        spend_unavailable = str(exc).splitlines()[0]
    weeks = (holdout_end - calibration_end).days / DAYS_PER_PERIOD
    x = summary["frequency"].to_numpy(np.float64)
    t_x = summary["recency"].to_numpy(np.float64)
    big_t = summary["T"].to_numpy(np.float64)
    monetary = summary["monetary"].to_numpy(np.float64)
    purchases = expected_purchases(bg, weeks, x, t_x, big_t)
    if not np.isfinite(purchases).all():
        raise FitError("BG/NBD's forecasts on this file are not finite numbers (a degenerate fit)")
    actual = summary["purchases"].to_numpy(np.float64)
    challenger = None
    if challenge_with is not None:
        from storelens.predict.challenger import challenge

        challenger = challenge(
            tx, summary, calibration_end, holdout_end, tolerance_pct=challenge_with, classic=bg
        )
    ours = None if challenger is None else challenger.predicted
    return ClvEvaluation(
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        customers=len(summary),
        repeat_buyers=int((x > 0).sum()),
        holdout_weeks=weeks,
        bgnbd=bg,
        gamma_gamma=gg,
        purchases=holdout_error(purchases, actual),
        spend=(
            None
            if gg is None
            else holdout_error(
                purchases * expected_spend(gg, x, monetary), summary["spend"].to_numpy(np.float64)
            )
        ),
        spend_unavailable=spend_unavailable,
        challenger=challenger,
        challenger_purchases=None if ours is None else holdout_error(ours, actual),
        challenger_expected=(
            None if challenger is None else holdout_error(challenger.expected, actual)
        ),
        uncertainty=None if ours is None else holdout_uncertainty(ours, purchases, actual),
    )
