"""The purchase model production scores with: the one that measured best on the store's own orders.

Why: ``eval-clv`` chooses among BG/NBD, Pareto/NBD, a boosted BG/NBD and the honeymoon
BG/NBD on a validation window, and on CDNOW the classic model loses. A store owner
expects the scores they act on (expected purchases, P(alive), lifetime value) to come
from the model that measured best on *their* customers, so ``predict score`` runs the
same choice (:func:`storelens.predict.challenger.challenge`, not a copy of it) on the
history before the as-of date: the last third of that history is the validation window,
the winner is refitted on all of it and scores the horizon after the as-of date.

What each winner can say, and what is borrowed when it cannot:

* **BG/NBD**, **honeymoon BG/NBD**: expected purchases and P(alive) from the model (the
  honeymoon model's P(alive) is BG/NBD's in its stretched time, with each customer's
  own alpha);
* **Pareto/NBD**: its own expected purchases and P(alive), from the parameters the
  challenge refitted on all history (:mod:`storelens.predict.pareto`);
* **boosted BG/NBD**: it corrects BG/NBD's *counts* only, so P(alive) is BG/NBD's and
  the lifetime value is BG/NBD's scaled by the same per-customer correction (the
  registry row says so).

Lifetime value is always Gamma-Gamma's expected spend per purchase times the winner's
expected purchases month by month, discounted. When Gamma-Gamma cannot be fitted even
with a penalty, the run still scores expected purchases and P(alive) (and the churn
stand-in built on them) and leaves lifetime value empty, saying why in
``spend_unavailable``: one failed spend fit used to cost the run every purchase score.
When the history is too short to cut a
validation window (or a candidate cannot be fitted on it), BG/NBD scores and the
registry row records why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from storelens.predict.clv import (
    WEEKS_PER_MONTH,
    BgNbdParams,
    FitError,
    GammaGammaParams,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    lifetime_value,
    p_alive,
    quiet_lifetimes,
)
from storelens.predict.summary import DAYS_PER_PERIOD, calibration_summary

if TYPE_CHECKING:
    import pandas as pd

    from storelens.predict.challenger import Challenge
    from storelens.predict.honeymoon import HoneymoonParams, PurchaseHistory
    from storelens.predict.pareto import ParetoNbdParams

__all__ = ["Champion", "discounted_value", "fit_champion", "honeymoon_scores"]

Array = npt.NDArray[np.float64]
_BORROWED_P_ALIVE = "the boosted BG/NBD corrects purchase counts only: P(alive) is BG/NBD's"
_BOOSTED_CLV = "BG/NBD's lifetime value times the boosted model's per-customer correction"


@dataclass(frozen=True, slots=True)
class Champion:
    """The winning model's scores (one entry a customer, in ``customers`` order) and its record."""

    model: str
    customers: pd.Index
    expected: Array  # purchases over the horizon
    p_alive: Array
    clv: Array
    bgnbd: BgNbdParams
    gamma_gamma: GammaGammaParams | None  # None: not fitted, see ``spend_unavailable``
    params: dict[str, Any]  # the winner's own parameters, when it is not BG/NBD
    p_alive_model: str
    notes: tuple[str, ...]
    validation: dict[str, Any] | None
    fallback_reason: str | None
    spend_unavailable: str | None = None  # why there is no lifetime value, when there is none

    def registry_params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "chosen_on": "fallback" if self.fallback_reason else "validation window",
            "model_params": self.params,
            "p_alive_model": self.p_alive_model,
            "notes": list(self.notes),
            "bgnbd": self.bgnbd.as_dict(),
            "gamma_gamma": None if self.gamma_gamma is None else self.gamma_gamma.as_dict(),
        }

    def registry_metrics(self) -> dict[str, Any]:
        return {
            "validation": self.validation,
            "fallback_reason": self.fallback_reason,
            "spend_unavailable": self.spend_unavailable,
        }


def discounted_value(
    per_purchase: Array,
    purchases_by: Callable[[float], Array],
    *,
    months: int,
    monthly_discount: float,
) -> Array:
    """Spend per purchase times each month's expected purchases, discounted month by month.

    ``purchases_by(weeks)`` is the expected number of purchases in the next ``weeks``;
    months are lifetimes' (4.345 weeks) so values agree with :func:`lifetime_value`.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    total = np.zeros_like(per_purchase, dtype=np.float64)
    before = np.zeros_like(per_purchase, dtype=np.float64)
    for month in range(1, months + 1):
        upto = purchases_by(month * WEEKS_PER_MONTH)
        total += per_purchase * (upto - before) / (1.0 + monthly_discount) ** month
        before = upto
    return total


def honeymoon_scores(
    params: HoneymoonParams,
    history: PurchaseHistory,
    per_purchase: Array,
    horizon_weeks: float,
    *,
    months: int,
    monthly_discount: float,
) -> tuple[Array, Array, Array]:
    """Expected purchases over ``horizon_weeks``, P(alive) and discounted CLV, per customer."""
    from storelens.predict.honeymoon import expected_honeymoon_purchases, honeymoon_p_alive

    def purchases_by(weeks: float) -> Array:
        return expected_honeymoon_purchases(params, history, weeks)

    clv = discounted_value(
        per_purchase, purchases_by, months=months, monthly_discount=monthly_discount
    )
    return purchases_by(horizon_weeks), honeymoon_p_alive(params, history), clv


def _pareto_scores(
    fitted: ParetoNbdParams | None,
    summary: pd.DataFrame,
    per_purchase: Array,
    horizon_weeks: float,
    months: int,
    discount: float,
) -> tuple[dict[str, float], Array, Array, Array]:
    """Pareto/NBD's scores from its refit on all history (fitted here when not given)."""
    from storelens.predict.pareto import (
        fit_pareto_nbd,
        pareto_expected_purchases,
        pareto_p_alive,
    )

    x, t_x, big_t = (summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    params = fit_pareto_nbd(x, t_x, big_t) if fitted is None else fitted

    def purchases_by(weeks: float) -> Array:
        return pareto_expected_purchases(params, weeks, x, t_x, big_t)

    alive = pareto_p_alive(params, x, t_x, big_t)
    clv = discounted_value(per_purchase, purchases_by, months=months, monthly_discount=discount)
    return params.as_dict(), purchases_by(horizon_weeks), alive, clv


def _validation_record(chosen: Challenge, last_day: date, tolerance_pct: float) -> dict[str, Any]:
    report = chosen.as_json()
    window = report["validation_window"]
    return {
        "from": window["from"],
        "to": last_day.isoformat(),
        "tolerance_pct": tolerance_pct,
        "winner": window["candidates"][chosen.winner],
        "candidates": window["candidates"],
        "training_cuts": report["training_cuts"],
    }


def fit_champion(
    tx: pd.DataFrame,
    last_day: date,
    horizon_days: int,
    *,
    months: int,
    monthly_discount: float,
    tolerance_pct: float,
    threads: int | None = None,
) -> Champion:
    """Choose on the validation window, refit the winner on purchases to ``last_day``, score.

    ``tx`` has ``customer_id``, ``date`` (day), ``amount``; nothing after ``last_day`` is
    read. Raises :class:`FitError` when not even BG/NBD can be fitted; without Gamma-Gamma
    the lifetime values are NaN and ``spend_unavailable`` says why.
    ``threads`` caps the challenge's OpenMP threads (see :func:`challenge`).
    """
    from storelens.predict.challenger import challenge
    from storelens.predict.honeymoon import purchase_history

    if horizon_days < 1:
        raise ValueError(f"the horizon must be at least one day, got {horizon_days}")
    if not 0 < tolerance_pct <= 100:
        raise ValueError(f"the validation tolerance must be in (0, 100] %, got {tolerance_pct}")
    summary = calibration_summary(tx, last_day)
    bg = fit_bgnbd(summary)
    x, t_x, big_t, monetary = (
        summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T", "monetary")
    )
    gg: GammaGammaParams | None
    try:
        gg, spend_unavailable = fit_gamma_gamma(summary), None
        per_purchase = expected_spend(gg, x, monetary)
    except FitError as exc:
        gg, spend_unavailable = None, str(exc)
        per_purchase = np.full(len(x), np.nan)
    weeks = horizon_days / DAYS_PER_PERIOD
    try:
        with quiet_lifetimes():
            chosen: Challenge | None = challenge(
                tx,
                summary,
                last_day,
                last_day + timedelta(days=horizon_days),
                tolerance_pct=tolerance_pct,
                point_forecasts=False,  # scores are expectations; only eval-clv's MAE needs them
                classic=bg,
                threads=threads,
            )
        reason = None
    except (FitError, ValueError) as exc:  # lifetimes' ConvergenceError is a ValueError
        chosen, reason = None, f"no validation choice, BG/NBD used: {exc}"
    winner = "bgnbd" if chosen is None else chosen.winner
    params: dict[str, Any] = {}
    notes: list[str] = []
    alive_model = winner
    scores: tuple[Array, Array, Array] | None = None
    if winner == "honeymoon_bgnbd" and chosen is not None and chosen.honeymoon is not None:
        params = chosen.honeymoon.as_dict()
        scores = honeymoon_scores(
            chosen.honeymoon,
            purchase_history(tx, last_day),
            per_purchase,
            weeks,
            months=months,
            monthly_discount=monthly_discount,
        )
    elif winner == "pareto_nbd":
        try:
            fitted = None if chosen is None else chosen.pareto
            params, *pareto = _pareto_scores(
                fitted, summary, per_purchase, weeks, months, monthly_discount
            )
            scores = (pareto[0], pareto[1], pareto[2])
        except (FitError, ValueError) as exc:  # it fitted on the validation window, not on all
            params, winner, alive_model = {}, "bgnbd", "bgnbd"
            reason = (
                f"Pareto/NBD won on the validation window but its refit failed, BG/NBD used: {exc}"
            )
    if scores is None:
        scores = (
            expected_purchases(bg, weeks, x, t_x, big_t),
            p_alive(bg, x, t_x, big_t),
            per_purchase.copy()  # NaN: no spend model
            if gg is None
            else lifetime_value(
                bg, gg, x, t_x, big_t, monetary, months=months, monthly_discount=monthly_discount
            ),
        )
        if winner == "boosted_bgnbd" and chosen is not None:
            correction = chosen.expected / np.maximum(scores[0], 1e-12)
            scores, alive_model = (chosen.expected, scores[1], scores[2] * correction), "bgnbd"
            notes += [_BORROWED_P_ALIVE, _BOOSTED_CLV]
    expected, alive, clv = scores
    return Champion(
        model=winner,
        customers=summary.index,
        expected=expected,
        p_alive=alive,
        clv=clv,
        bgnbd=bg,
        gamma_gamma=gg,
        params=params,
        p_alive_model=alive_model,
        notes=tuple(notes),
        validation=None if chosen is None else _validation_record(chosen, last_day, tolerance_pct),
        fallback_reason=reason,
        spend_unavailable=spend_unavailable,
    )
