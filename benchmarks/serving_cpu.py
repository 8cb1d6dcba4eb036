"""Where a warm recommendation request's CPU goes under wrk, thread by thread.

``serving.py`` gives each row's share of hello world; this says what the share is made
of. The same seeded database and servers as ``serving.py``; for hello world and the
recommendation route (candidates in memory), a warm-up under wrk, then ``--seconds``
measured: each server thread's CPU time from ``/proc`` (Linux only) and wrk's own, both
per request answered. With every core busy, the sum per request bounds the rate, so
the ratio of the two sums bounds the share of hello world.

    python benchmarks/serving_cpu.py                 # one worker, 16 connections
    python benchmarks/serving_cpu.py --workers 2

Written to ``benchmarks/results/serving_cpu.json`` (one key per worker count).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from serving import CUSTOMERS, LUA, RESULTS, seed, serve, signed_in, start_redis_and_env, stop, wrk

console = Console()
TICK = os.sysconf("SC_CLK_TCK")


def _thread_cpu(pids: list[int]) -> dict[str, float]:
    """CPU seconds (user + system) of every thread of ``pids``, by "pid:thread name:tid"."""
    out: dict[str, float] = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
                name = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
            except FileNotFoundError:  # a thread that ended meanwhile
                continue
            fields = stat.rsplit(")", 1)[1].split()
            out[f"{pid}:{name}:{tid}"] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(k) for k in kids] or [pid]


def _wrk_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(workers: int, seconds: int, connections: int) -> dict[str, dict[str, Any]]:
    work = Path(tempfile.mkdtemp(prefix="serving-cpu-"))
    db_url = f"sqlite:///{work}/bench.db"
    console.print(f"seeding {CUSTOMERS} customers into {db_url}")
    seed(db_url)
    redis, env = start_redis_and_env(db_url)
    env = {**env, "STORELENS_RECOMMEND_CANDIDATE_STORE": "memory"}
    script = work / "reco.lua"
    script.write_text(LUA % CUSTOMERS)
    path = "/v1/customers/C1/recommendations?store=cafe-01&k=10"
    results: dict[str, dict[str, Any]] = {}
    try:
        for endpoint, factory in (("hello world", "hello"), ("recommendations", "storelens_app")):
            proc, port = serve(factory, workers, env)
            url, headers, lua = f"http://127.0.0.1:{port}", {}, None
            target = "/hello"
            if factory != "hello":
                url, headers = signed_in(port)
                target, lua = path, script
            wrk(url + target, seconds, connections, headers, lua)  # warm-up
            pids = [*_children(proc.pid), proc.pid]
            before, wrk_before = _thread_cpu(pids), _wrk_cpu()
            run = wrk(url + target, seconds, connections, headers, lua)
            after, wrk_after = _thread_cpu(pids), _wrk_cpu()
            answered = run["rps"] * seconds
            threads = {
                key: round((after[key] - before.get(key, 0.0)) / answered * 1e6, 1)
                for key in after
                if after[key] - before.get(key, 0.0) > 0.005 * seconds  # 0.5 % of a core or more
            }
            results[endpoint] = {
                "rps": run["rps"],
                "threads_us_per_request": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
                "wrk_us_per_request": round((wrk_after - wrk_before) / answered * 1e6, 1),
            }
            stop(proc)
    finally:
        redis.terminate()
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()
    results = measure(args.workers, args.seconds, args.connections)
    title = f"CPU per request answered, µs ({args.workers} worker(s), wrk -c{args.connections})"
    table = Table(title=title)
    for col in ("endpoint", "req/s", "thread", "µs/request"):
        table.add_column(col, justify="right")
    totals = {}
    for endpoint, row in results.items():
        threads: dict[str, float] = row["threads_us_per_request"]
        wrk_us: float = row["wrk_us_per_request"]
        for name, us in threads.items():
            table.add_row(endpoint, f"{row['rps']:,.0f}", name, f"{us:.1f}")
        table.add_row(endpoint, "", "wrk", f"{wrk_us:.1f}")
        totals[endpoint] = round(sum(threads.values()) + wrk_us, 1)
        table.add_row(endpoint, "", "all", f"{totals[endpoint]:.1f}", end_section=True)
    console.print(table)
    bound = totals["hello world"] / totals["recommendations"]
    console.print(f"share of hello world when every core is busy: at most {bound:.2f}")
    out = RESULTS / "serving_cpu.json"
    saved = json.loads(out.read_text()) if out.exists() else {}
    saved[f"workers_{args.workers}"] = {
        "command": f"python benchmarks/serving_cpu.py --workers {args.workers}",
        "seconds": args.seconds,
        "connections": args.connections,
        "load_average_before": list(os.getloadavg()),
        "results": results,
        "total_us_per_request": totals,
        "share_bound_when_cores_are_busy": round(bound, 3),
    }
    out.write_text(json.dumps(saved, indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
