"""Customer import at scale: no record with an id lost, flagged fields counted.

Builds a retailer's three extracts (:mod:`storelens.cdp.retail_synthetic`, households,
phone spellings, placeholders, bad values …) for ``--base-people`` people and repeats
them under fresh record ids until ``--records`` rows exist, writes one CSV per source,
then imports each as ``storelens cdp import`` does (``import_customers``, default region
GB, flagged not rejected) into a fresh SQLite database and runs the projections. It
checks that the ``customers`` table holds one row per source row, and reports rows,
rejected rows, flagged fields per column, seconds and the load average (the benchmark
machine is shared: re-measure on a quiet one with the same command).

    python benchmarks/identity_import.py --records 1000000
    python benchmarks/identity_import.py --records 100000     # a few minutes
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).with_name("results")
console = Console()


def write_extracts(records: int, base_people: int, seed: int, folder: Path) -> dict[str, int]:
    """One CSV per source with ``records`` rows in all; rows per source."""
    from storelens.cdp.retail_synthetic import RETAIL_SOURCES, generate_retail

    data = generate_retail(base_people, seed=seed)
    base = sum(len(rows) for rows in data.sources.values())
    copies = -(-records // base)
    written: dict[str, int] = {}
    left = records
    for source, columns in RETAIL_SOURCES.items():
        rows = data.sources[source]
        n = min(left, len(rows) * copies) if source != "crm" else left
        with (folder / f"{source}.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            done = 0
            for copy in range(-(-n // len(rows))):
                for row in rows[: n - done]:
                    rid = f"{row['source_record_id']}-{copy}"
                    writer.writerow({**row, "source_record_id": rid})
                    done += 1
        written[source], left = n, left - n
    return written


def measure(records: int, base_people: int, seed: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from storelens.cdp.records import ImportIds
    from storelens.cdp.sources import import_customers
    from storelens.processors import run_projections
    from storelens.storage.db import create_engine
    from storelens.storage.eventlog import EventLog
    from storelens.storage.migrate import upgrade
    from storelens.storage.tables import customers

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        written = write_extracts(records, base_people, seed, folder)
        generate_s = time.perf_counter() - start
        engine = create_engine(f"sqlite:///{folder / 'storelens.db'}")
        upgrade(engine)
        log = EventLog(engine)
        load_before = os.getloadavg()
        flagged: Counter[str] = Counter()
        rejected = 0
        start = time.perf_counter()
        for source in written:
            fields = {"street": "address"} if source != "pos" else {}
            result = import_customers(
                log, source, folder / f"{source}.csv", fields, "GB", ids=ImportIds("benchmark")
            )
            rejected += len(result.rejected)
            flagged.update(result.flagged_by_field())
        import_s = time.perf_counter() - start
        start = time.perf_counter()
        run_projections(log)
        project_s = time.perf_counter() - start
        with engine.connect() as conn:
            stored: dict[str, int] = dict(
                conn.execute(
                    select(customers.c.source_system, func.count()).group_by(
                        customers.c.source_system
                    )
                ).all()
            )
        engine.dispose()
    return {
        "records": records,
        "rows_per_source": written,
        "stored_per_source": stored,
        "lost": sum(written.values()) - sum(stored.values()),
        "rejected": rejected,
        "flagged_by_field": dict(sorted(flagged.items())),
        "flagged_total": sum(flagged.values()),
        "generate_s": round(generate_s, 1),
        "import_s": round(import_s, 1),
        "projection_s": round(project_s, 1),
        "load_avg_1_5_15_before_after": [
            [round(x, 2) for x in load_before],
            [round(x, 2) for x in os.getloadavg()],
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--base-people", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=RESULTS / "identity_import.json")
    args = parser.parse_args()
    report = measure(args.records, args.base_people, args.seed)
    table = Table(title=f"customer import, {args.records:,} records (SQLite)")
    for col in ("rows", "stored", "lost", "rejected", "flagged", "import s", "projection s"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{sum(report['rows_per_source'].values()):,}",
        f"{sum(report['stored_per_source'].values()):,}",
        str(report["lost"]),
        str(report["rejected"]),
        f"{report['flagged_total']:,}",
        str(report["import_s"]),
        str(report["projection_s"]),
    )
    console.print(table)
    console.print(f"flagged by field: {report['flagged_by_field']}")
    console.print(f"load average before/after: {report['load_avg_1_5_15_before_after']}")
    report |= {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "command": f"python benchmarks/identity_import.py --records {args.records} "
        f"--base-people {args.base_people} --seed {args.seed}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
