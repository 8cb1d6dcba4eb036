"""The operations tracker for a chain: does a store's minute cost grow with the chain?

Each store has its own event-time clock and runs its own minutes (sweeps, snapshot,
next deadline). This feeds an hour of camera tracks for 1, 50 and 200 stores (20
people in each, one position a minute each) through one tracker and reports the time
per store: flat if a store's minute reads only its own items, rising with the store
count if it scans the chain's.

    python benchmarks/ops_chain.py        # writes benchmarks/results/ops_chain.json
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from storelens.instore.tracker import OpsTracker, TrackerConfig

PEOPLE, MINUTES = 20, 60
T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)


@dataclass
class _Event:
    type: str
    ts: datetime
    store_id: str | None
    subject: str | None = None
    payload: dict[str, Any] = field(default_factory=dict)


def _hour(stores: int) -> list[_Event]:
    out: list[_Event] = []
    for minute in range(MINUTES):
        for s in range(stores):
            for k in range(PEOPLE):
                ts = T0 + timedelta(minutes=minute, seconds=(s * PEOPLE + k) % 60)
                track = {"track_id": f"t{k}", "x": 1.0, "y": 1.0}
                if minute == 0:
                    enter = {**track, "zone_id": "floor"}
                    out.append(_Event("vision.zone_enter", ts, f"s{s}", payload=enter))
                out.append(_Event("vision.track", ts, f"s{s}", payload=track))
    out.sort(key=lambda e: e.ts)
    return out


def run(stores: int) -> dict[str, float]:
    events = _hour(stores)
    kinds = {f"s{s}": {"floor": "floor"} for s in range(stores)}
    tracker = OpsTracker(TrackerConfig(zone_kinds=kinds))
    started = time.perf_counter()
    tracker.apply_all(events)
    seconds = time.perf_counter() - started
    return {
        "stores": stores,
        "events": len(events),
        "seconds": round(seconds, 3),
        "ms_per_store": round(1000 * seconds / stores, 2),
        "store_minutes": tracker.ticks,
    }


def main() -> None:
    rows = [run(n) for n in (1, 50, 200)]
    table = Table(title=f"an hour of {PEOPLE} tracked people per store, one tracker")
    for col in ("stores", "events", "seconds", "ms per store", "store-minutes run"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['stores']}", f"{r['events']:,}", f"{r['seconds']:.2f}",
                      f"{r['ms_per_store']:.1f}", f"{r['store_minutes']:,}")  # fmt: skip
    Console().print(table)
    ratio = rows[-1]["ms_per_store"] / rows[1]["ms_per_store"]
    Console().print(f"time per store, 200 stores against 50: {ratio:.2f}x (flat is 1)")
    out = Path(__file__).with_name("results") / "ops_chain.json"
    result = {
        "benchmark": "ops_chain",
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "per_store_ratio_200_vs_50": round(ratio, 2),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
