"""Where the serving p99 stalls came from: the first requests after a quiet minute.

``benchmarks/serving.py`` measured in rounds showed a median p99 of 85-139 ms with
candidates in memory at 16 connections in some rounds and 11 ms in others. Traced with
a watchdog on the event loop and a timer per request: every window that came more
than a minute after the server's last one opened with all 16 requests in flight sent
to the threadpool, 110-125 ms each, reloading the store's popularity (kept 60 s, then
served stale for 1 s while one reload runs; past that the warm path refuses). wrk
corrects for coordinated omission: a connection held up 120 ms stands for the
requests it would have sent meanwhile, so those 16 requests became the window's p99.

This probe measures one storelens server (one worker, candidates in memory, the same
seeded database and wrk script as ``serving.py``) in 4 s windows at 16 connections:
back to back, after 25 s idle, and after 70 s idle (past the popularity's 60 s and its
1 s of grace). Run it on two trees to compare:

    python benchmarks/serving_p99_probe.py            # writes results/serving_p99_probe.json
    python benchmarks/serving_p99_probe.py --label before --out /tmp/before.json

It prints each window's req/s, p50 and p99, and the median p99 per condition.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
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
CONDITIONS = (("back to back", 0, 3), ("after 25 s idle", 25, 3), ("after 70 s idle", 70, 3))


def _commit() -> str:
    here = Path(__file__).resolve().parent
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here,
                          capture_output=True, text=True, check=False)  # fmt: skip
    return done.stdout.strip() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--label", default="", help="names the tree in the output")
    ap.add_argument("--out", type=Path, default=RESULTS / "serving_p99_probe.json")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="p99-probe-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    console.print(f"seeding {CUSTOMERS} customers into {db_url}")
    seed(db_url)
    script = tmp / "customers.lua"
    script.write_text(LUA % CUSTOMERS)
    redis, base = start_redis_and_env(db_url)
    windows: list[dict[str, Any]] = []
    try:
        proc, port = serve("storelens_app", 1, {**base,
                           "STORELENS_RECOMMEND_CANDIDATE_STORE": "memory"})  # fmt: skip
        url, headers = signed_in(port)
        wrk(url, 20, 16, headers, script)  # fills the candidate entries
        for condition, idle_s, count in CONDITIONS:
            for _ in range(count):
                time.sleep(idle_s)
                got = wrk(url, WINDOW_S, 16, headers, script)
                windows.append({"condition": condition, **got})
                console.print(condition, got)
        stop(proc)
    finally:
        redis.kill()
        redis.wait()
    table = Table(title="memory candidates, 1 worker, 16 connections, windows of 4 s")
    for col in ("condition", "windows", "p99 ms each", "median p99 ms", "median req/s"):
        table.add_column(col, justify="right")
    summary = []
    for condition, _, _ in CONDITIONS:
        mine = [w for w in windows if w["condition"] == condition]
        row = {"condition": condition, "windows": len(mine),
               "p99_ms": [w["p99_ms"] for w in mine],
               "median_p99_ms": statistics.median(w["p99_ms"] for w in mine),
               "median_rps": statistics.median(w["rps"] for w in mine)}  # fmt: skip
        summary.append(row)
        table.add_row(condition, str(len(mine)), ", ".join(f"{p:.1f}" for p in row["p99_ms"]),
                      f"{row['median_p99_ms']:.1f}", f"{row['median_rps']:.0f}")  # fmt: skip
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": "python benchmarks/serving_p99_probe.py",
                "label": args.label,
                "commit": _commit(),
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
