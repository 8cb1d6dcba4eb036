"""A tried candidate, not adopted: Pareto/NBD with a Gompertz lifetime (G/G/NBD).

Why it was tried: every calibration-period model under-predicts CDNOW's holdout, and the
dropout they extrapolate is the likeliest culprit. Bemmaor and Glady's Gamma/Gompertz/NBD
(Management Science, 2012) lets each customer's dropout hazard change with age:
hazard_i(t) = eta_i * exp(b t), eta_i ~ Gamma(s, beta). Here b may be negative too (a
hazard that fades: survivors stop leaving), and b = 0 is exactly Pareto/NBD, so the
model nests the candidate already in the challenge:

    S(t) = (beta / (beta + c(t)))^s,   c(t) = (exp(b t) - 1) / b   (c(t) = t at b = 0).

The purchase rate is Pareto/NBD's (lambda ~ Gamma(r, alpha), purchases at any time while
alive). The likelihood's dropout term and the expected purchases each need one integral
per customer, done by 64-point Gauss-Legendre; at b = 0 the likelihood matches
:mod:`storelens.predict.pareto`'s closed form (the largest difference is printed).
Fitted by maximum likelihood from Pareto/NBD's own fit and three values of b.

Judged, as every candidate, on the validation window cut from the calibration period
(fit to its start, predict to the calibration end); the holdout is reported, not used.

    python benchmarks/clv_gompertz.py          # writes benchmarks/results/clv_gompertz.json
"""

from __future__ import annotations

import json
import time
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from scipy.optimize import minimize
from scipy.special import gammaln, roots_legendre

from storelens.predict.accuracy import holdout_error
from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.challenger import validation_cuts
from storelens.predict.pareto import (
    ParetoNbdParams,
    fit_pareto_nbd,
    pareto_expected_purchases,
    pareto_log_likelihood,
)
from storelens.predict.summary import DAYS_PER_PERIOD, calibration_summary, holdout_summary

RESULTS = Path(__file__).with_name("results")
NODES, WEIGHTS = roots_legendre(64)
Params = tuple[float, float, float, float, float]  # r, alpha, s, beta, b


def _c(b: float, t: np.ndarray) -> np.ndarray:
    return t if abs(b) < 1e-10 else np.expm1(b * t) / b


def _log_survival(p: Params, t: np.ndarray) -> np.ndarray:
    _, _, s, beta, b = p
    return s * (np.log(beta) - np.log(beta + _c(b, t)))


def _log_density(p: Params, t: np.ndarray) -> np.ndarray:
    _, _, s, beta, b = p
    return np.log(s) + s * np.log(beta) + b * t - (s + 1.0) * np.log(beta + _c(b, t))


def _nodes(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Quadrature points (one row per customer) on [lo, hi] and the half-widths."""
    half = (hi - lo) / 2.0
    return ((hi + lo) / 2.0)[:, None] + half[:, None] * NODES[None, :], half


def _terms(p: Params, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> tuple[Any, Any, Any]:
    """log of the common head, of the alive-at-T term and of the dropped-in-(t_x, T) term."""
    r, alpha = p[0], p[1]
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    alive = _log_survival(p, big_t) - (r + x) * np.log(alpha + big_t)
    tau, half = _nodes(t_x, big_t)
    values = _log_density(p, tau) - (r + x)[:, None] * np.log(alpha + tau)
    top = values.max(axis=1)
    with np.errstate(divide="ignore"):
        summed = np.log((np.exp(values - top[:, None]) * WEIGHTS).sum(axis=1))
        dropped = np.where(half > 0, top + summed + np.log(half), -np.inf)
    return head, alive, dropped


def log_likelihood(p: Params, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> np.ndarray:
    head, alive, dropped = _terms(p, x, t_x, big_t)
    return np.asarray(head + np.logaddexp(alive, dropped))


def expected(p: Params, horizon: float, x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray) -> Any:
    """P(alive at T) x the alive customer's rate x expected time alive in (T, T + horizon]."""
    _, alive, dropped = _terms(p, x, t_x, big_t)
    u, half = _nodes(big_t, big_t + horizon)
    kept = np.exp(_log_survival(p, u) - _log_survival(p, big_t)[:, None])
    time_alive = (kept * WEIGHTS).sum(axis=1) * half
    return 1.0 / (1.0 + np.exp(dropped - alive)) * (p[0] + x) / (p[1] + big_t) * time_alive


def fit(x: np.ndarray, t_x: np.ndarray, big_t: np.ndarray, start: ParetoNbdParams) -> Params:
    triples, counts = np.unique(np.column_stack([x, t_x, big_t]), axis=0, return_counts=True)
    ux, ut_x, ubig_t = (np.ascontiguousarray(triples[:, i]) for i in range(3))
    weights, n = counts.astype(np.float64), len(x)

    def unpack(z: np.ndarray) -> Params:
        r, alpha, s, beta = np.exp(z[:4]).tolist()
        return r, alpha, s, beta, float(z[4])

    def loss(z: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -float(log_likelihood(unpack(z), ux, ut_x, ubig_t) @ weights) / n
        return value if np.isfinite(value) else 1e6

    bounds = [(-7.0, 5.0), (-7.0, 12.0), (-7.0, 5.0), (-7.0, 12.0), (-1.0, 1.0)]
    logs = np.log([start.r, start.alpha, start.s, start.beta])
    found = [
        minimize(loss, np.append(logs, b0), method="L-BFGS-B", bounds=bounds,
                 options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-8})
        for b0 in (0.0, -0.02, 0.02)
    ]  # fmt: skip
    return unpack(min(found, key=lambda f: f.fun).x)


def run(which: Literal["sample", "full"]) -> dict[str, Any]:
    tx = load_cdnow(which)
    past = tx[tx["date"] <= pd.Timestamp(CALIBRATION_END)]
    _, late = validation_cuts(past["date"].min().date(), CALIBRATION_END)
    out: dict[str, Any] = {}
    windows: tuple[tuple[str, date, date], ...] = (
        ("validation", late, CALIBRATION_END), ("holdout", CALIBRATION_END, HOLDOUT_END),
    )  # fmt: skip
    for name, cut, stop in windows:
        started = time.perf_counter()
        cal = calibration_summary(past, cut)
        x, t_x, big_t = (cal[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
        actual = holdout_summary(tx, cal.index, cut, stop)["purchases"].to_numpy(np.float64)
        weeks = (stop - cut).days / DAYS_PER_PERIOD
        pareto = fit_pareto_nbd(x, t_x, big_t)
        gompertz = fit(x, t_x, big_t, pareto)
        at_zero = (pareto.r, pareto.alpha, pareto.s, pareto.beta, 0.0)
        check = np.abs(log_likelihood(at_zero, x, t_x, big_t)
                       - pareto_log_likelihood(pareto, x, t_x, big_t)).max()  # fmt: skip
        out[name] = {
            "customers": len(x),
            "pareto_nbd": holdout_error(
                pareto_expected_purchases(pareto, weeks, x, t_x, big_t), actual
            ).as_dict(),
            "gompertz": holdout_error(expected(gompertz, weeks, x, t_x, big_t), actual).as_dict(),
            "gompertz_params": dict(
                zip(("r", "alpha", "s", "beta", "b"), (round(v, 4) for v in gompertz), strict=True)
            ),
            "log_likelihood_gain": round(
                float(
                    log_likelihood(gompertz, x, t_x, big_t).sum()
                    - pareto_log_likelihood(pareto, x, t_x, big_t).sum()
                ),
                3,
            ),
            "quadrature_vs_closed_form_at_b0": float(check),
            "seconds": round(time.perf_counter() - started, 1),
        }
    return out


def main() -> None:
    result = {which: run(which) for which in ("sample", "full")}
    table = Table(title="Gompertz lifetime vs Pareto/NBD on CDNOW (predicted / actual purchases)")
    for column in ("file", "window", "customers", "model", "predicted", "actual", "error",
                   "MAE", "b", "log-lik gain"):  # fmt: skip
        table.add_column(column)
    for which, windows in result.items():
        for name, row in windows.items():
            for model in ("pareto_nbd", "gompertz"):
                e = row[model]
                table.add_row(
                    which, name, str(row["customers"]), model, f"{e['predicted']:,.0f}",
                    f"{e['actual']:,.0f}", f"{e['aggregate_error_pct']:+.2f} %", f"{e['mae']:.3f}",
                    f"{row['gompertz_params']['b']:+.4f}" if model == "gompertz" else "0",
                    f"{row['log_likelihood_gain']:+.2f}" if model == "gompertz" else "",
                )  # fmt: skip
    Console(width=150).print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "clv_gompertz.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
