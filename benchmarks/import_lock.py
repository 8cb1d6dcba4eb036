"""How long a till waits to append while a large customer import runs.

Every writer of the event log takes the same append lock, and an import's audit row is
written inside the transaction that stores its records (``ingest/write_audit.py``), so
a till's one-event append waits for whatever an import batch does while it holds the
lock. This measures that wait, in one run and on the same file, for:

* **one transaction**: the whole import as a single batch (what ``POST
  /v1/customers/import`` did before it committed 1,000 records at a time);
* **batches of 1,000**: the import as it runs now (``cdp.sources.BATCH``).

The import is a re-import of a CRM export whose records are all already customers
(the common case: a nightly export, most records changed a little), so the audit work
resolves every record to its customer. A probe process (a till) appends one ``pos.order_paid``
every 50 ms during the import and times each append; beside its median, p99 and
maximum wait are the longest batch transaction and the longest audit hook (the work
done inside the lock after the append).

    python benchmarks/import_lock.py                       # both backends, 30,000 records
    python benchmarks/import_lock.py --records 5000 --backends sqlite   # a smoke run

Writes ``benchmarks/results/import_lock.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection

import storelens.cdp.sources as sources
from storelens.cdp.records import ImportIds
from storelens.config import Settings
from storelens.core.events import Event, OrderPaidEvent
from storelens.ingest.batch import IngestReport
from storelens.ingest.write_audit import audited
from storelens.privacy import audit
from storelens.processors import run_projections
from storelens.storage import migrate
from storelens.storage.db import create_engine, throwaway_postgres
from storelens.storage.eventlog import EventLog

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = os.environ.get(
    "STORELENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnop"
PROBE_EVERY_S = 0.05
console = Console(width=150)


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / f'lock-{uuid.uuid4().hex[:6]}.db'}"
        return
    with throwaway_postgres(PG_ADMIN, "storelens_bench") as url:
        yield url


def write_export(path: Path, records: int, version: int) -> None:
    """A CRM export; ``version`` changes every record's phone, so a re-import stores all."""
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["source_record_id", "first_name", "last_name", "email", "phone"])
        for i in range(records):
            out.writerow([f"c-{i}", "Customer", f"Number{i}", f"c{i}@example.com",
                          f"+49 30 {version:02d}{i:07d}"])  # fmt: skip


def _order(n: int) -> Event:
    return OrderPaidEvent.model_validate(
        {
            "id": str(uuid.uuid4()),
            "type": "pos.order_paid",
            "ts": datetime.now(UTC).isoformat(),
            "store_id": "cafe-01",
            "source": "pos",
            "payload": {
                "order_id": f"probe-{n}",
                "register_id": "reg-1",
                "lines": [{"product_id": "latte", "qty": 1, "unit_price": 3.2}],
            },
        }
    )


def probe(url: str, stop: Any, waits: Any) -> None:
    """A till in its own process (as the API's workers are, so the import's Python work
    does not hold its GIL): one order every 50 ms, each append timed."""
    engine = create_engine(url)
    log, n, seen = EventLog(engine), 0, []
    while not stop.is_set():
        start = time.perf_counter()
        log.append([_order(n)], "till")
        seen.append(time.perf_counter() - start)
        n += 1
        stop.wait(PROBE_EVERY_S)
    engine.dispose()
    waits.put(seen)


def timed_hook(then: Callable[[Connection, IngestReport], None], spent: list[float]) -> Any:
    def hook(conn: Connection, report: IngestReport) -> None:
        start = time.perf_counter()
        then(conn, report)
        spent.append(time.perf_counter() - start)

    return hook


def run(url: str, export: Path, records: int, batch: int) -> dict[str, Any]:
    engine = create_engine(url)
    migrate.upgrade(engine)
    log = EventLog(engine)
    ids = ImportIds.of(Settings(env="prod", secret_key=SECRET, database_url=url))
    write_export(export, records, 1)
    sources.import_customers(log, "crm", export, ids=ids)
    run_projections(log)  # every record is a customer now
    write_export(export, records, 2)

    hooks: list[float] = []
    batches: list[float] = []
    then = timed_hook(audited(audit.operator(), None, action="customers.import",
                              resource="customer", source="crm"), hooks)  # fmt: skip
    ingest_items = sources.__dict__["ingest_items"]  # wrapped to time each batch

    def timed_batch(*args: Any, **kwargs: Any) -> IngestReport:
        start = time.perf_counter()
        report: IngestReport = ingest_items(*args, **kwargs)
        batches.append(time.perf_counter() - start)
        return report

    sources.BATCH = batch
    setattr(sources, "ingest_items", timed_batch)  # noqa: B010
    stop = multiprocessing.Event()
    waits_of: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    till = multiprocessing.Process(target=probe, args=(url, stop, waits_of))
    till.start()
    time.sleep(1.0)  # the probe's first appends, unloaded
    start = time.perf_counter()
    try:
        result = sources.import_customers(log, "crm", export, ids=ids, then=then)
    finally:
        elapsed = time.perf_counter() - start
        time.sleep(0.3)
        stop.set()
        seen = waits_of.get(timeout=60)
        till.join()
        setattr(sources, "ingest_items", ingest_items)  # noqa: B010
        sources.BATCH = 1000
        engine.dispose()
    assert result.accepted == records, f"stored {result.accepted} of {records}"
    waits = sorted(seen)
    return {
        "import_s": round(elapsed, 2),
        "probe_appends": len(waits),
        "wait_median_ms": round(statistics.median(waits) * 1e3, 1),
        "wait_p99_ms": round(waits[min(len(waits) - 1, int(len(waits) * 0.99))] * 1e3, 1),
        "wait_max_ms": round(waits[-1] * 1e3, 1),
        "batches": len(batches),
        "longest_batch_ms": round(max(batches) * 1e3, 1),
        "longest_audit_hook_ms": round(max(hooks) * 1e3, 1),
        "median_audit_hook_ms": round(statistics.median(hooks) * 1e3, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--records", type=int, default=30_000)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    modes = {"one transaction": args.records, "batches of 1,000": 1000}
    out: dict[str, Any] = {
        "command": "python benchmarks/import_lock.py " + " ".join(sys.argv[1:]),
        "records": args.records,
        "probe_every_ms": PROBE_EVERY_S * 1e3,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "runs": {},
    }
    table = Table(title=f"a till's one-event append during a {args.records:,}-record import")
    for col in ("backend", "import", "import s", "appends", "wait p50 ms", "p99 ms", "max ms",
                "longest batch ms", "audit in lock, max / median ms"):  # fmt: skip
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="import-lock-") as tmp:
        for backend in args.backends.split(","):
            for mode, batch in modes.items():
                with database(backend, Path(tmp)) as url:
                    r = run(url, Path(tmp) / "crm.csv", args.records, batch)
                out["runs"][f"{backend} / {mode}"] = r
                table.add_row(backend, mode, f"{r['import_s']:.1f}", str(r["probe_appends"]),
                              f"{r['wait_median_ms']:.1f}", f"{r['wait_p99_ms']:.1f}",
                              f"{r['wait_max_ms']:.1f}", f"{r['longest_batch_ms']:.0f}",
                              f"{r['longest_audit_hook_ms']:.0f} / "
                              f"{r['median_audit_hook_ms']:.0f}")  # fmt: skip
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "import_lock.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
