"""Lifetime value on CDNOW (the published benchmark) and scoring a million customers.

For the CDNOW 1/10 sample (2,357 customers) and the full file (23,570), with the
published split (calibration 1997-01-01..1997-09-30, holdout to 1998-06-30, 39 weeks
each; purchases counted per day, time in weeks):

* fitted BG/NBD r, alpha, a, b and Gamma-Gamma p, q, v;
* holdout repeat purchases and spend, predicted against actual: aggregate error and
  per-customer MAE;
* storelens's model against BG/NBD with 95 % intervals from a paired bootstrap over
  customers (the forecasts fitted once, not refitted per resample), as ``eval-clv``;
* time to summarise, fit, and score.

Then 1,000,000 synthetic customers drawn from the BG/NBD and Gamma-Gamma processes with
the full-file parameters are scored (expected purchases over 39 weeks, P(alive),
expected spend per purchase, and a 12-month discounted CLV), and again with the
honeymoon BG/NBD storelens chose on the full file (expected purchases over 39 weeks;
then those with P(alive) and the 12-month CLV, what ``predict score`` computes when the
honeymoon model wins), timed best of ``--runs``, and once its absolute-error forecasts
(what ``eval-clv`` does per customer: predictive distributions in blocks, then the
allocation).

    python benchmarks/clv.py            # writes benchmarks/results/clv.json
    python benchmarks/clv.py --customers 100000 --runs 1   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from storelens.predict.allocation import absolute_error_forecasts
from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.challenger import challenge
from storelens.predict.champion import honeymoon_scores
from storelens.predict.churn import churn_report, p_no_purchase
from storelens.predict.clv import (
    BgNbdParams,
    GammaGammaParams,
    expected_purchases,
    expected_spend,
    fit_bgnbd,
    fit_gamma_gamma,
    lifetime_value,
    p_alive,
)
from storelens.predict.evaluate import PERIOD_CONVENTION, holdout_error
from storelens.predict.holdout_bootstrap import holdout_uncertainty
from storelens.predict.honeymoon import (
    HoneymoonParams,
    PurchaseHistory,
    expected_honeymoon_purchases,
    honeymoon_distribution_blocks,
)
from storelens.predict.summary import DAYS_PER_PERIOD, summarise

RESULTS = Path(__file__).with_name("results")
console = Console(width=140)
Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def cdnow(which: Literal["sample", "full"]) -> dict[str, Any]:
    started = time.perf_counter()
    tx = load_cdnow(which)
    loaded = time.perf_counter()
    summary = summarise(tx, CALIBRATION_END, HOLDOUT_END)
    summarised = time.perf_counter()
    bg, gg = fit_bgnbd(summary), fit_gamma_gamma(summary)
    fitted = time.perf_counter()
    x, t_x, big_t, monetary = (
        summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T", "monetary")
    )
    weeks = (HOLDOUT_END - CALIBRATION_END).days / DAYS_PER_PERIOD
    purchases = expected_purchases(bg, weeks, x, t_x, big_t)
    spend = purchases * expected_spend(gg, x, monetary)
    scored = time.perf_counter()
    ours = challenge(tx, summary, CALIBRATION_END, HOLDOUT_END, tolerance_pct=5.0)
    challenged = time.perf_counter()
    actual = summary["purchases"].to_numpy(np.float64)
    forecasts = ours.expected if ours.predicted is None else ours.predicted
    churn = churn_report(
        p_no_purchase(bg, weeks, x, t_x, big_t), summary["purchases"].to_numpy() == 0
    )
    return {
        "customers": len(summary),
        "transactions": len(tx),
        "bgnbd": {k: round(v, 4) for k, v in bg.as_dict().items()},
        "gamma_gamma": {k: round(v, 4) for k, v in gg.as_dict().items()},
        "holdout_repeat_purchases": holdout_error(
            purchases, summary["purchases"].to_numpy(np.float64)
        ).as_dict(),
        "holdout_spend": holdout_error(spend, summary["spend"].to_numpy(np.float64)).as_dict(),
        "storelens": {
            **holdout_error(forecasts, actual).as_dict(),
            **ours.as_json(),
            "expected_counts": holdout_error(
                ours.expected, summary["purchases"].to_numpy(np.float64)
            ).as_dict(),
            "seconds": round(challenged - scored, 2),
        },
        "churn_no_holdout_purchase": churn.as_json(),
        "uncertainty": holdout_uncertainty(forecasts, purchases, actual).as_json(),
        "seconds": {
            "load": round(loaded - started, 3),
            "summarise": round(summarised - loaded, 3),
            "fit_bgnbd_and_gamma_gamma": round(fitted - summarised, 3),
            "score": round(scored - fitted, 4),
        },
    }


def synthetic(n: int, bg: BgNbdParams, gg: GammaGammaParams, seed: int = 7) -> Arrays:
    """Summaries of ``n`` customers simulated from the BG/NBD and Gamma-Gamma processes.

    Purchases arrive as a Poisson process (rate ~ Gamma(r, alpha)); after each repeat
    purchase a customer drops out with probability p ~ Beta(a, b), so the number of
    repeat purchases is min(Poisson count, Geometric(p)); given n arrivals in (0, T],
    the x-th falls at T times a Beta(x, n - x + 1) draw. Times are rounded to whole days
    because :mod:`storelens.predict.summary` counts in days.
    """
    rng = np.random.default_rng(seed)
    # First purchases spread over a quarter, as CDNOW's; times in whole days, as summaries give.
    big_t = rng.integers(182, 274, n) / DAYS_PER_PERIOD
    rate = rng.gamma(bg.r, 1.0 / bg.alpha, n)
    drop = rng.beta(bg.a, bg.b, n)
    arrivals = rng.poisson(rate * big_t)
    x = np.minimum(arrivals, rng.geometric(drop)).astype(np.float64)
    repeat = x > 0
    t_x = np.zeros(n)
    last = big_t[repeat] * rng.beta(x[repeat], arrivals[repeat] - x[repeat] + 1)
    t_x[repeat] = np.floor(last * DAYS_PER_PERIOD) / DAYS_PER_PERIOD
    nu = rng.gamma(gg.q, 1.0 / gg.v, n)
    monetary = np.zeros(n)
    monetary[repeat] = rng.gamma(gg.p * x[repeat], 1.0 / (nu[repeat] * x[repeat]))
    return x, t_x, big_t, monetary


def score_million(
    n: int,
    runs: int,
    bg: BgNbdParams,
    gg: GammaGammaParams,
    honeymoon: HoneymoonParams | None,
) -> dict[str, Any]:
    x, t_x, big_t, monetary = synthetic(n, bg, gg)
    first_spend = np.random.default_rng(11).lognormal(3.26, 0.7, n)
    history = PurchaseHistory(pd.RangeIndex(n), x, t_x, big_t, first_spend, np.empty(0))
    per_purchase = expected_spend(gg, x, monetary)
    core, clv, honey, production = [], [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        expected_purchases(bg, 39.0, x, t_x, big_t)
        p_alive(bg, x, t_x, big_t)
        expected_spend(gg, x, monetary)
        middle = time.perf_counter()
        lifetime_value(bg, gg, x, t_x, big_t, monetary, months=12, monthly_discount=0.01)
        core.append(middle - started)
        clv.append(time.perf_counter() - middle)
        if honeymoon is not None:
            started = time.perf_counter()
            expected_honeymoon_purchases(honeymoon, history, 39.0)
            honey.append(time.perf_counter() - started)
            started = time.perf_counter()  # what `predict score` computes when it wins
            honeymoon_scores(
                honeymoon, history, per_purchase, 39.0, months=12, monthly_discount=0.01
            )
            production.append(time.perf_counter() - started)
    forecast_seconds = None
    if honeymoon is not None:  # eval-clv's per-customer forecasts, once: it is the slow part
        started = time.perf_counter()
        total = float(expected_honeymoon_purchases(honeymoon, history, 39.0).sum())
        absolute_error_forecasts(honeymoon_distribution_blocks(honeymoon, history, 39.0), total)
        forecast_seconds = round(time.perf_counter() - started, 2)
    return {
        "customers": n,
        "repeat_buyers": int((x > 0).sum()),
        "runs": runs,
        "seconds_purchases_alive_spend": round(min(core), 3),
        "seconds_clv_12_months": round(min(clv), 3),
        "seconds_total": round(min(core) + min(clv), 3),
        "seconds_honeymoon_purchases": round(min(honey), 3) if honey else None,
        "seconds_honeymoon_purchases_alive_clv": (
            round(min(production), 3) if production else None
        ),
        "seconds_honeymoon_absolute_error_forecasts": forecast_seconds,
        "target_seconds": 10.0,
    }


def scoring_run(n: int) -> dict[str, Any]:
    """A whole ``storelens predict score`` run minus the database: features, BG/NBD and
    Gamma-Gamma fits, the churn classifier, RFM and clusters, on simulated customers."""
    from storelens.predict.scoring import score_customers
    from storelens.sim.lifecycle import LifecycleConfig, simulate_lifecycles, weeks_after

    orders, truth = simulate_lifecycles(LifecycleConfig(customers=n, seed=1))
    started = time.perf_counter()
    run = score_customers(orders, weeks_after(truth.start, 78), set(truth.customer_ids), threads=1)
    return {
        "customers": len(run.scores),
        "orders": len(orders),
        "seconds": round(time.perf_counter() - started, 1),
        "purchase_model": next((m.params["model"] for m in run.models if m.kind == "clv"), None),
        "models": {m.kind: m.metrics for m in run.models},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--run-customers", type=int, default=100_000, help="customers in the full scoring run"
    )
    args = parser.parse_args()

    figures = {which: cdnow(which) for which in ("sample", "full")}
    full = figures["full"]
    bg = BgNbdParams(**full["bgnbd"])
    gg = GammaGammaParams(**full["gamma_gamma"])
    chosen = full["storelens"].get("honeymoon_params")
    honeymoon = HoneymoonParams(**chosen) if chosen else None
    scoring = score_million(args.customers, args.runs, bg, gg, honeymoon)
    whole_run = scoring_run(args.run_customers)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    table = Table(title=f"CDNOW, BG/NBD + Gamma-Gamma ({PERIOD_CONVENTION})")
    for col in ("file", "customers", "r", "alpha", "a", "b", "predicted", "actual", "error", "MAE"):
        table.add_column(col, justify="right")
    for which, f in figures.items():
        p, h = f["bgnbd"], f["holdout_repeat_purchases"]
        table.add_row(
            which,
            str(f["customers"]),
            *(f"{p[k]:.3f}" for k in ("r", "alpha", "a", "b")),
            f"{h['predicted']:.0f}",
            f"{h['actual']:.0f}",
            f"{h['aggregate_error_pct']:+.2f} %",
            f"{h['mae']:.3f}",
        )
    console.print(table)
    for which, f in figures.items():
        s = f["storelens"]
        console.print(
            f"{which}: storelens chose {s['model']} on the validation window; holdout "
            f"{s['predicted']:.0f} / {s['actual']:.0f} ({s['aggregate_error_pct']:+.2f} %), "
            f"MAE {s['mae']:.3f} (its expected counts: {s['expected_counts']['mae']:.3f})",
            highlight=False,
        )
    console.print(
        f"scoring {scoring['customers']:,} customers: {scoring['seconds_total']} s "
        f"({scoring['seconds_purchases_alive_spend']} s purchases, P(alive), spend; "
        f"{scoring['seconds_clv_12_months']} s 12-month CLV; honeymoon BG/NBD purchases "
        f"{scoring['seconds_honeymoon_purchases']} s, with P(alive) and 12-month CLV as "
        f"`predict score` does {scoring['seconds_honeymoon_purchases_alive_clv']} s, "
        "and its absolute-error forecasts "
        f"{scoring['seconds_honeymoon_absolute_error_forecasts']} s); peak RSS {peak_mib:.0f} MiB"
    )
    console.print(
        f"whole scoring run (features, fits, churn classifier, clusters) on "
        f"{whole_run['customers']:,} customers / {whole_run['orders']:,} orders: "
        f"{whole_run['seconds']} s",
        highlight=False,
    )
    result = {
        "benchmark": "clv",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "split": {
            "calibration_end": CALIBRATION_END.isoformat(),
            "holdout_end": HOLDOUT_END.isoformat(),
            "period": PERIOD_CONVENTION,
        },
        "published_sample": {
            "bgnbd": {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
            "holdout_repeat_purchases": {"predicted": 1653, "actual": 1882, "mae": 0.79},
        },
        "cdnow": figures,
        "scoring": scoring,
        "scoring_run": whole_run,
        "peak_rss_mib": round(peak_mib),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "clv.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
