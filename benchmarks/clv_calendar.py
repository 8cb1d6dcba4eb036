"""A tried candidate, not adopted: the honeymoon BG/NBD with a calendar-time purchase rate.

Why it was tried: on CDNOW's full file, from May 1997 on, the three monthly cohorts (first
purchase in January, February, March) make the same number of repeat purchases per
customer in each calendar month (e.g. August 95, 93, 97 per 1,000; September 94, 94, 95)
although they are one and two months apart in age. The fall after July is a calendar
effect on everyone, which the classic and the honeymoon models can only read as dropout.

The model: rate_i(t) = lambda_i * (1 + boost * exp(-(t - first_i) / settle)) * c(t), with
c(t) piecewise constant on 4-week blocks counted back from the cut-off, the last block's
level fixed to 1 (alpha carries the scale). It is still a BG/NBD in operational time
G_i(s) = integral of the rate multiplier from first_i to first_i + s, and the likelihood
gains log c at each repeat purchase. The future level must be assumed: ``--persist``
blocks (the last 4 or 13 weeks) carry forward. Chosen, as every candidate, on the
validation window; the holdout is reported, not looked at while fitting.

    python benchmarks/clv_calendar.py          # writes benchmarks/results/clv_calendar.json
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import betaln, gammaln

from storelens.predict.accuracy import holdout_error
from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.challenger import validation_cuts
from storelens.predict.clv import BgNbdParams, expected_purchases, fit_bgnbd
from storelens.predict.honeymoon import fit_honeymoon, purchase_history
from storelens.predict.summary import DAYS_PER_PERIOD, calibration_summary, holdout_summary

RESULTS = Path(__file__).with_name("results")
BLOCK_WEEKS = 4.0


@dataclass(frozen=True)
class Data:
    x: np.ndarray
    first: np.ndarray  # first purchase, weeks before the cut (negative)
    recency: np.ndarray
    age: np.ndarray
    spend_z: np.ndarray
    repeat_ages: np.ndarray
    repeat_blocks: np.ndarray  # purchases per calendar block (block 0 = the last)


def _data(tx: pd.DataFrame, cut: date, blocks: int) -> tuple[Data, pd.Index]:
    history = purchase_history(tx, cut)
    end = pd.Timestamp(cut)
    daily = tx[tx["date"] <= end].groupby(["customer_id", "date"], as_index=False).size()
    first = daily.groupby("customer_id")["date"].transform("min")
    weeks_before = (end - daily["date"]).dt.days / DAYS_PER_PERIOD
    repeats = weeks_before[daily["date"] > first]
    index = np.minimum((repeats // BLOCK_WEEKS).astype(int), blocks - 1)
    per_block = np.bincount(index, minlength=blocks).astype(np.float64)
    logged = np.log1p(np.maximum(history.first_spend, 0.0))
    z = (logged - logged.mean()) / (logged.std() or 1.0)
    return (
        Data(
            history.frequency,
            -history.age,
            history.recency,
            history.age,
            z,
            history.repeat_ages,
            per_block,
        ),
        history.customers,
    )


def _stretch(
    start: np.ndarray, length: np.ndarray, first: np.ndarray, levels: np.ndarray, future: float,
    boost: float, settle: float,
) -> np.ndarray:  # fmt: skip
    """Integral of (1 + boost e^(-(t - first)/settle)) c(t) over [start, start + length]."""
    k = len(levels)
    edges = -BLOCK_WEEKS * np.arange(k, -1, -1, dtype=np.float64)  # block k-1 .. 0, then 0
    edges[0] = -np.inf
    lows = np.append(edges[:-1], 0.0)
    highs = np.append(edges[1:], np.inf)
    values = np.append(levels[::-1], future)  # oldest block first, then the future
    lo = np.maximum(start[:, None], lows[None, :])
    hi = np.minimum((start + length)[:, None], highs[None, :])
    inside = hi > lo
    lo, hi = np.where(inside, lo, 0.0), np.where(inside, hi, 0.0)
    decay = (
        boost
        * settle
        * (np.exp(-(lo - first[:, None]) / settle) - np.exp(-(hi - first[:, None]) / settle))
    )
    return np.where(inside, (hi - lo + decay) * values[None, :], 0.0).sum(axis=1)


def _unpack(theta: np.ndarray, blocks: int) -> dict[str, Any]:
    r, alpha, a, b, boost, settle = np.exp(theta[:6])
    levels = np.exp(np.append(0.0, theta[7 : 7 + blocks - 1]))
    return {"r": r, "alpha": alpha, "a": a, "b": b, "boost": boost, "settle": settle,
            "effect": theta[6], "levels": levels}  # fmt: skip


def _log_likelihood(p: dict[str, Any], d: Data) -> float:
    r, a, b, levels = p["r"], p["a"], p["b"], p["levels"]
    alpha = p["alpha"] * np.exp(-p["effect"] * d.spend_z)
    t_x = _stretch(d.first, d.recency, d.first, levels, 1.0, p["boost"], p["settle"])
    big_t = _stretch(d.first, d.age, d.first, levels, 1.0, p["boost"], p["settle"])
    x = d.x
    head = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    survived = betaln(a, b + x) - betaln(a, b) - (r + x) * np.log(alpha + big_t)
    dropped = np.where(
        x > 0,
        betaln(a + 1, b + np.maximum(x, 1) - 1) - betaln(a, b) - (r + x) * np.log(alpha + t_x),
        -np.inf,
    )
    jacobian = np.log1p(p["boost"] * np.exp(-d.repeat_ages / p["settle"])).sum()
    jacobian += float(d.repeat_blocks @ np.log(levels))
    return float((head + np.logaddexp(survived, dropped)).sum() + jacobian)


def fit(tx: pd.DataFrame, cut: date) -> tuple[dict[str, Any], Data, pd.Index]:
    past = tx[tx["date"] <= pd.Timestamp(cut)]
    span_weeks = (cut - past["date"].min().date()).days / DAYS_PER_PERIOD
    blocks = int(np.ceil(span_weeks / BLOCK_WEEKS))
    d, customers = _data(past, cut, blocks)
    honey = fit_honeymoon(purchase_history(past, cut), fit_bgnbd(calibration_summary(past, cut)))
    begin = np.array(
        [*np.log([honey.r, honey.alpha, honey.a, honey.b, max(honey.boost, 1e-3),
                  honey.settle_weeks]), honey.spend_effect, *np.zeros(blocks - 1)]
    )  # fmt: skip
    bounds = [(-7, 5), (-7, 12), (-7, 10), (-7, 12), (np.log(1e-6), np.log(50)),
              (np.log(0.5), np.log(104)), (-5, 5)] + [(-3.0, 3.0)] * (blocks - 1)  # fmt: skip
    n = len(d.x)

    def loss(theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -_log_likelihood(_unpack(theta, blocks), d) / n
        return value if np.isfinite(value) else 1e6

    found = minimize(loss, np.clip(begin, *np.array(bounds).T), method="L-BFGS-B", bounds=bounds,
                     options={"maxiter": 2000, "ftol": 1e-12})  # fmt: skip
    return _unpack(found.x, blocks), d, customers


def forecast(p: dict[str, Any], d: Data, horizon: float, persist: int) -> np.ndarray:
    future = float(p["levels"][:persist].mean())
    alpha = p["alpha"] * np.exp(-p["effect"] * d.spend_z)
    t_x = _stretch(d.first, d.recency, d.first, p["levels"], future, p["boost"], p["settle"])
    big_t = _stretch(d.first, d.age, d.first, p["levels"], future, p["boost"], p["settle"])
    ahead = _stretch(np.zeros_like(d.x), np.full_like(d.x, horizon), d.first, p["levels"],
                     future, p["boost"], p["settle"])  # fmt: skip
    classic = BgNbdParams(p["r"], 0.0, p["a"], p["b"])
    return expected_purchases(classic, ahead, d.x, alpha + t_x, alpha + big_t)


def run(which: Literal["sample", "full"]) -> dict[str, Any]:
    tx = load_cdnow(which)
    past = tx[tx["date"] <= pd.Timestamp(CALIBRATION_END)]
    _, late = validation_cuts(past["date"].min().date(), CALIBRATION_END)
    out: dict[str, Any] = {}
    started = time.perf_counter()
    fits = {"validation": fit(past, late), "holdout": fit(past, CALIBRATION_END)}
    for persist in (1, 3):
        row: dict[str, Any] = {}
        for name, stop in (("validation", CALIBRATION_END), ("holdout", HOLDOUT_END)):
            p, d, customers = fits[name]
            cut = late if name == "validation" else CALIBRATION_END
            actual = holdout_summary(tx, customers, cut, stop)["purchases"].to_numpy(np.float64)
            weeks = (stop - cut).days / DAYS_PER_PERIOD
            row[name] = holdout_error(forecast(p, d, weeks, persist), actual).as_dict()
            row[f"{name}_levels_newest_first"] = [round(float(v), 3) for v in p["levels"]]
        out[f"persist_{persist * 4}_weeks"] = row
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def main() -> None:
    result = {which: run(which) for which in ("sample", "full")}
    print(json.dumps(result, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "clv_calendar.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
