"""Churn classifier and clustering segments, on CDNOW and on simulated customers.

* **Churn** (no purchase in the next 13 weeks): the calibrated gradient-boosting
  classifier (trained at a cut-off 13 weeks earlier, its outcome known before the test
  cut-off) beside BG/NBD's P(no purchase), on CDNOW (test cut-off 1997-10-01, the day
  after the published calibration end) and on the lifecycle simulator, where each
  customer's true churn probability is known: ROC AUC, PR AUC, Brier and a calibration
  table, and for the simulator the gap to the true probabilities per bin.
* **Clustering**: k, silhouette, Davies-Bouldin and seed stability (ARI) on the
  simulator's customers and on CDNOW's full file, with each cluster's description.

    python benchmarks/churn_segments.py      # writes benchmarks/results/churn_segments.json
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from storelens.predict.cdnow import CALIBRATION_END, load_cdnow
from storelens.predict.churn import churn_report, p_no_purchase
from storelens.predict.churn_model import evaluate_churn_classifier
from storelens.predict.clusters import cluster_customers
from storelens.predict.clv import fit_bgnbd
from storelens.predict.features import customer_features
from storelens.predict.summary import DAYS_PER_PERIOD, summarise
from storelens.sim.lifecycle import LifecycleConfig, simulate_lifecycles, weeks_after

RESULTS = Path(__file__).with_name("results")
WINDOW_DAYS = 91  # 13 weeks
console = Console(width=140)


def _orders_from(tx: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": tx["customer_id"], "ts": tx["date"], "amount": tx["amount"]}
    )


def cdnow_churn(which: str) -> dict[str, Any]:
    return churn_at(load_cdnow(which), CALIBRATION_END)  # type: ignore[arg-type]


def churn_at(tx: pd.DataFrame, calibration_end: date) -> dict[str, Any]:
    """Both churn models on ``tx`` (``customer_id,date,amount``), test cut-off the day
    after ``calibration_end``, outcome the following 13 weeks."""
    holdout_end = calibration_end + timedelta(days=WINDOW_DAYS)
    summary = summarise(tx, calibration_end, holdout_end)
    bg = fit_bgnbd(summary)
    x, t_x, big_t = (summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    churned = summary["purchases"].to_numpy() == 0
    classic = churn_report(
        p_no_purchase(bg, WINDOW_DAYS / DAYS_PER_PERIOD, x, t_x, big_t), churned
    ).as_json()
    started = time.perf_counter()
    cut = datetime.combine(calibration_end + timedelta(days=1), datetime.min.time())
    ev = evaluate_churn_classifier(_orders_from(tx), cut, WINDOW_DAYS, threads=1)
    seconds = time.perf_counter() - started
    assert list(ev.customers) == list(summary.index)
    return {
        "customers": len(summary),
        "bgnbd": classic,
        "classifier": ev.as_json(),
        "classifier_seconds": round(seconds, 2),
    }


def simulated_churn(customers: int) -> dict[str, Any]:
    orders, truth = simulate_lifecycles(LifecycleConfig(customers=customers, seed=21))
    cutoff = weeks_after(truth.start, 60)
    ev = evaluate_churn_classifier(orders, cutoff.replace(tzinfo=None), WINDOW_DAYS, threads=1)
    true_p = (
        pd.Series(truth.p_no_purchase(cutoff, WINDOW_DAYS), index=list(truth.customer_ids))
        .reindex(ev.customers)
        .to_numpy()
    )
    from sklearn.metrics import roc_auc_score

    bins = np.clip((ev.predicted * 10).astype(int), 0, 9)
    table = []
    for b in range(10):
        members = bins == b
        if members.any():
            table.append(
                {
                    "range": [b / 10, (b + 1) / 10],
                    "customers": int(members.sum()),
                    "predicted": round(float(ev.predicted[members].mean()), 4),
                    "true_probability": round(float(true_p[members].mean()), 4),
                    "observed": round(float(ev.churned[members].mean()), 4),
                }
            )
    return {
        "customers": len(ev.customers),
        "classifier": ev.as_json(),
        "oracle_roc_auc": round(float(roc_auc_score(ev.churned, true_p)), 4),
        "against_truth": table,
        "max_gap_bins_over_100": round(
            max(
                abs(r["predicted"] - r["true_probability"]) for r in table if r["customers"] >= 100
            ),
            4,
        ),
    }


def clustering(customers: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    orders, truth = simulate_lifecycles(LifecycleConfig(customers=customers, seed=21))
    as_of = weeks_after(truth.start, 60)
    started = time.perf_counter()
    result = cluster_customers(
        customer_features(orders, as_of), orders=orders, as_of=as_of, threads=1
    )
    out["simulated"] = {**result.as_json(), "seconds": round(time.perf_counter() - started, 2)}
    tx = load_cdnow("full")
    cut = datetime(1997, 10, 1, tzinfo=UTC)
    started = time.perf_counter()
    orders = _orders_from(tx)
    cd = cluster_customers(customer_features(orders, cut), orders=orders, as_of=cut, threads=1)
    out["cdnow_full"] = {**cd.as_json(), "seconds": round(time.perf_counter() - started, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000, help="simulated customers")
    args = parser.parse_args()
    churn = {
        "cdnow_sample": cdnow_churn("sample"),
        "cdnow_full": cdnow_churn("full"),
        "simulated": simulated_churn(args.customers),
    }
    clusters = clustering(args.customers // 2)
    table = Table(title=f"churn = no purchase in the next {WINDOW_DAYS} days (test cut-off)")
    for col in ("data", "customers", "model", "churn rate", "ROC AUC", "PR AUC", "Brier"):
        table.add_column(col, justify="right")
    for name, f in churn.items():
        for model in ("bgnbd", "classifier"):
            if model in f:
                r = f[model]
                table.add_row(
                    name,
                    str(f["customers"]),
                    model,
                    f"{r['churn_rate']:.3f}",
                    f"{r['roc_auc']:.3f}",
                    f"{r['pr_auc']:.3f}",
                    f"{r['brier']:.4f}",
                )
    console.print(table)
    sim = churn["simulated"]
    console.print(
        f"simulated: oracle ROC AUC {sim['oracle_roc_auc']}, largest calibration gap "
        f"to the true probability (bins >= 100 customers) {sim['max_gap_bins_over_100']}"
    )
    for name, c in clusters.items():
        console.print(
            f"clusters {name}: k={c['k']} silhouette {c['silhouette']} "
            f"Davies-Bouldin {c['davies_bouldin']} stability ARI {c['stability_ari']}"
        )
        for cl in c["clusters"]:
            console.print(f"  {cl['id']}: {cl['description']}", highlight=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "churn_segments.json").write_text(
        json.dumps(
            {
                "benchmark": "churn_segments",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "window_days": WINDOW_DAYS,
                "cdnow_test_cutoff": (CALIBRATION_END + timedelta(days=1)).isoformat(),
                "churn": churn,
                "clustering": clusters,
                "peak_rss_mib": round(peak),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
