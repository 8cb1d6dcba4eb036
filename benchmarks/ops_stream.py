"""Events/second through the ops stream processor against reading the same events.

For each backend (SQLite file, real PostgreSQL), a simulated café week is loaded into
the event log once; then, per run:

* **read (the limit)**: ``EventLog.consume`` with a handler that does nothing, the
  same batches and cursor commits the processor uses;
* **ops**: the ops processor (tracker, facts, alerts, state snapshot per batch).

Each figure is the median of ``--runs`` runs; cursors, facts and state are reset
between runs. Targets: ops >= 50 % of read, and >= 50,000 events/s.

    python benchmarks/ops_stream.py             # 7 simulated days, 3 runs, both backends
    python benchmarks/ops_stream.py --days 1 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, delete

from storelens import stores
from storelens.ingest.batch import ingest_numbered
from storelens.ingest.files import read_items
from storelens.instore.processor import OpsProcessor
from storelens.sim import default_layout_path, run_simulation
from storelens.storage import migrate
from storelens.storage.db import create_engine, throwaway_postgres
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import (
    alerts,
    consumer_offsets,
    ops_orders,
    ops_queue_waits,
    ops_shifts,
    ops_visits,
    ops_zone_visits,
    processor_state,
)

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = os.environ.get(
    "STORELENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
console = Console()


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        path = workdir / "ops-bench.db"
        yield f"sqlite:///{path}"
        return
    with throwaway_postgres(PG_ADMIN, "storelens_bench") as url:
        yield url


def load(engine: Engine, events_path: Path) -> int:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    report = ingest_numbered(EventLog(engine), read_items(events_path), batch_size=5000)
    assert not report.rejected, report.rejected[:3]
    return report.accepted


def reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (
            ops_orders,
            ops_zone_visits,
            ops_visits,
            ops_queue_waits,
            ops_shifts,
            alerts,
            processor_state,
            consumer_offsets,
        ):
            conn.execute(delete(table))


def measure(engine: Engine, n: int, batch: int) -> tuple[float, float]:
    log = EventLog(engine)
    reset(engine)
    start = time.perf_counter()
    read = 0
    while True:
        before = log.position("bench-read")
        read += log.consume("bench-read", lambda _c, b: None, batch=batch, max_batches=1)
        if log.position("bench-read") == before:
            break
    read_rate = n / (time.perf_counter() - start)
    assert read == n, f"read {read} of {n}"
    start = time.perf_counter()
    handled = OpsProcessor().run(log, batch=batch)
    ops_rate = n / (time.perf_counter() - start)
    assert handled == n, f"ops handled {handled} of {n}"
    return read_rate, ops_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--out", type=Path, default=RESULTS / "ops_stream.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "ops_stream",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "days": args.days,
        "batch": args.batch,
        "runs": args.runs,
        "backends": {},
    }
    table = Table(
        title=f"ops stream processor, {args.days} simulated café days, median of {args.runs} runs"
    )
    for col in ("backend", "events", "read ev/s (limit)", "ops ev/s", "ops / read", "target"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sim = run_simulation(default_layout_path(), args.days, 7, workdir / "sim")
        for backend in args.backends.split(","):
            with database(backend, workdir) as url:
                engine = create_engine(url)
                n = load(engine, sim.events_path)
                reads, opss = [], []
                for run in range(args.runs):
                    r, o = measure(engine, n, args.batch)
                    reads.append(r)
                    opss.append(o)
                    console.print(f"{backend} run {run + 1}: read {r:,.0f} ev/s, ops {o:,.0f} ev/s")
                engine.dispose()
            read, ops = statistics.median(reads), statistics.median(opss)
            ok = ops / read >= 0.5 and ops >= 50_000
            results["backends"][backend] = {
                "events": n,
                "read_events_per_s": round(read),
                "ops_events_per_s": round(ops),
                "ratio": round(ops / read, 3),
                "read_runs": [round(x) for x in reads],
                "ops_runs": [round(x) for x in opss],
                "meets_target": ok,
            }
            table.add_row(
                backend,
                f"{n:,}",
                f"{read:,.0f}",
                f"{ops:,.0f}",
                f"{ops / read:.0%}",
                f">=50%, >=50k/s {'ok' if ok else 'MISSED'}",
            )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
