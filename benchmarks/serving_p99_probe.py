"""Where the serving p99 stalls come from: one server alone, or beside a busy neighbour.

``benchmarks/serving.py`` measured in rounds showed a median p99 of 95-139 ms with
candidates in memory at 16 connections, where single passes had shown 8-20 ms. This
probe measures one storelens server (one worker, the same seeded database and wrk
script as ``serving.py``) in short windows under three conditions:

* **alone**: back to back, then after 25 s idle (the gap a round leaves);
* **neighbour idle**: a second storelens server (candidates in Redis) on the same
  SQLite file, started but not asked anything;
* **after the neighbour was busy**: the second server driven for 10 s first (it writes
  its impressions into the same file), then the first measured.

    python benchmarks/serving_p99_probe.py            # writes results/serving_p99_probe.json

It prints each window's req/s, p50 and p99, and the median p99 per condition.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from serving import (
    CUSTOMERS,
    LUA,
    RESULTS,
    seed,
    serve,
    signed_in,
    start_redis_and_env,
    stop,
    wrk,
)

console = Console()
WINDOW_S = 4


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="p99-probe-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    console.print(f"seeding {CUSTOMERS} customers into {db_url}")
    seed(db_url)
    script = tmp / "customers.lua"
    script.write_text(LUA % CUSTOMERS)
    redis, base = start_redis_and_env(db_url)
    windows: list[dict[str, Any]] = []

    def measure(condition: str, url: str, headers: dict[str, str]) -> None:
        got = wrk(url, WINDOW_S, 16, headers, script)
        windows.append({"condition": condition, **got})
        console.print(condition, got)

    try:
        proc, port = serve("storelens_app", 1, {**base,
                           "STORELENS_RECOMMEND_CANDIDATE_STORE": "memory"})  # fmt: skip
        url, headers = signed_in(port)
        wrk(url, 20, 16, headers, script)  # fills the candidate entries
        for _ in range(3):
            measure("alone, back to back", url, headers)
        for _ in range(3):
            time.sleep(25)
            measure("alone, after 25 s idle", url, headers)
        other, other_port = serve("storelens_app", 1, {**base,
                                  "STORELENS_RECOMMEND_CANDIDATE_STORE": "redis"})  # fmt: skip
        other_url, other_headers = signed_in(other_port)
        for _ in range(3):
            measure("neighbour idle", url, headers)
        for _ in range(4):
            wrk(other_url, 10, 16, other_headers, script)
            measure("right after the neighbour was busy", url, headers)
        stop(other)
        stop(proc)
    finally:
        redis.kill()
        redis.wait()
    table = Table(title="memory candidates, 1 worker, 16 connections, windows of 4 s")
    for col in ("condition", "windows", "p99 ms each", "median p99 ms", "median req/s"):
        table.add_column(col, justify="right")
    summary = []
    for condition in dict.fromkeys(w["condition"] for w in windows):
        mine = [w for w in windows if w["condition"] == condition]
        row = {"condition": condition, "windows": len(mine),
               "p99_ms": [w["p99_ms"] for w in mine],
               "median_p99_ms": statistics.median(w["p99_ms"] for w in mine),
               "median_rps": statistics.median(w["rps"] for w in mine)}  # fmt: skip
        summary.append(row)
        table.add_row(condition, str(len(mine)), ", ".join(f"{p:.1f}" for p in row["p99_ms"]),
                      f"{row['median_p99_ms']:.1f}", f"{row['median_rps']:.0f}")  # fmt: skip
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving_p99_probe.json").write_text(
        json.dumps(
            {
                "command": "python benchmarks/serving_p99_probe.py",
                "load_average_after": list(os.getloadavg()),
                "window_s": WINDOW_S,
                "summary": summary,
                "windows": windows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
