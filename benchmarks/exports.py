"""How long BI exports take for a simulated café week, and how big they are.

A café week (quarter-hour heatmaps on, raw ``vision.track`` left out: no export reads
it) is loaded into a SQLite file and its projections run once; then, per run:

* **directory**: ``storelens export`` for the week (one Parquet file per table and day);
* **download**: each table over the week as the API builds it, CSV and Parquet.

Figures are the median of ``--runs`` runs; not asserted anywhere (the machine is shared).

    python benchmarks/exports.py              # 7 days, 3 runs
    python benchmarks/exports.py --days 1 --runs 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from storelens import catalogue, stores
from storelens.catalogue import load_catalogue
from storelens.core.events import event_adapter
from storelens.instore.export_data import export_range, table_bytes, write_export_dir
from storelens.instore.export_tables import EXPORT_TABLES
from storelens.processors import run_projections
from storelens.sim import default_layout_path, run_simulation
from storelens.sim.config import SimConfig
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

RESULTS = Path(__file__).with_name("results")
STORE = "cafe-01"
console = Console()


def _timed(runs: int, work: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    config = SimConfig(heatmap_every_s=900)
    first = config.start_date
    last = first + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sim = run_simulation(default_layout_path(), args.days, 7, work / "sim", config=config)
        engine = create_engine(f"sqlite:///{work / 'bench.db'}")
        migrate.upgrade(engine)
        with engine.begin() as conn:
            stores.load_layout_file(conn, default_layout_path())
            catalogue.upsert_products(conn, [asdict(p) for p in load_catalogue()])
        lines = sim.events_path.read_text(encoding="utf-8").splitlines()
        events = [event_adapter.validate_json(x) for x in lines if '"vision.track"' not in x]
        log = EventLog(engine)
        for start in range(0, len(events), 5000):
            log.append(events[start : start + 5000])
        run_projections(log)

        rows: list[dict[str, Any]] = []
        seconds, summary = _timed(
            args.runs, lambda: write_export_dir(engine, STORE, first, last, work / "bi")
        )
        size = sum(f.stat().st_size for f in summary.files)
        rows.append(
            {
                "what": "storelens export (all tables)",
                "seconds": round(seconds, 3),
                "rows": sum(summary.rows.values()),
                "bytes": size,
            }
        )
        for name in EXPORT_TABLES:
            for fmt in ("csv", "parquet"):

                def download(name: str = name, fmt: str = fmt) -> bytes:
                    return table_bytes(export_range(engine, STORE, name, first, last), fmt)

                seconds, body = _timed(args.runs, download)
                rows.append(
                    {
                        "what": f"download {name} as {fmt}",
                        "seconds": round(seconds, 3),
                        "rows": summary.rows[name],
                        "bytes": len(body),
                    }
                )
        engine.dispose()

    table = Table(title=f"BI exports of a simulated café, {args.days} day(s), SQLite")
    for col in ("what", "seconds", "rows", "bytes"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["what"], f"{r['seconds']:.2f}", f"{r['rows']:,}", f"{r['bytes']:,}")
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    out = {
        "benchmark": "exports",
        "command": f"python benchmarks/exports.py --days {args.days} --runs {args.runs}",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpu": platform.processor()},
        "events": len(events),
        "results": rows,
    }
    (RESULTS / "exports.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
