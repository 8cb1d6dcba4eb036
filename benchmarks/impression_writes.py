"""What one shown list costs the impression writer, by write size and row order.

The writer stores shown lists in ``recommend_impressions``, whose index on
(customer, time) keeps each customer's rows together for access requests and
erasures. Rows arrive in request order, so each lands somewhere else in that index.
This measures the writer's CPU per row on SQLite (the thread's own time, as the
server's writer thread spends it), side by side in one run:

* arrival order (the writer before) against customer order (the writer now);
* 1,600 rows per write (0.2 s of 8,000 requests/s, the old interval) against 8,000
  (1 s, the new default) and 16,000;
* a fresh table against one that already holds ``--rows`` lists;
* those lists from 2,000 customers (``benchmarks/serving.py``'s) or one each;
* the same table without the index, as the floor.

    python benchmarks/impression_writes.py                 # --rows 1000000, ~3 min
    python benchmarks/impression_writes.py --rows 200000   # quicker

Written to ``benchmarks/results/impression_writes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from storelens.recommend import impression_log
from storelens.recommend.impression_log import ImpressionLog, Row
from storelens.storage.db import create_engine
from storelens.storage.tables import metadata

RESULTS = Path(__file__).with_name("results")
PRODUCTS = [f"P{n:05d}" for n in range(400)]
WRITES = 5  # measured writes per case; the median is reported


def _rows(n: int, customers: int, rng: random.Random, start: datetime) -> list[Row]:
    """``n`` shown lists of ten items in arrival order, a millisecond apart."""
    out = []
    for i in range(n):
        shown = tuple((p, round(rng.random(), 6)) for p in rng.sample(PRODUCTS, 10))
        who = f"C{rng.randrange(customers)}"
        out.append((start + timedelta(milliseconds=i), who, "cafe-01", True, "bench", shown))
    return out


def _fill(path: Path, rows: int, customers: int, index: bool) -> None:
    """A database holding ``rows`` lists (written in customer order: quicker to make)."""
    engine = create_engine(f"sqlite:///{path}")
    metadata.create_all(engine)
    if not index:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_recommend_impressions_customer_id_ts")
    log = ImpressionLog(engine, every_s=3600)
    rng = random.Random(1)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    with log._write_lock:
        for lo in range(0, rows, 50_000):
            log._write(_rows(min(50_000, rows - lo), customers, rng, start))
            start += timedelta(hours=1)
    log.close()
    engine.dispose()


def _measure(path: Path, batch: int, customers: int, ordered: bool) -> float:
    """The writer thread's CPU per row, µs: median of ``WRITES`` writes of ``batch``."""
    engine = create_engine(f"sqlite:///{path}")
    log = ImpressionLog(engine, every_s=3600)
    rng = random.Random(2)
    start = datetime(2026, 12, 1, tzinfo=UTC)
    by_customer = impression_log._by_customer
    if not ordered:  # the writer before: rows as they came (a stable sort on nothing)
        impression_log._by_customer = lambda row: 0  # type: ignore[assignment]
    per_row = []
    try:
        with log._write_lock:
            for _ in range(WRITES):
                rows = _rows(batch, customers, rng, start)
                start += timedelta(minutes=1)
                began = time.thread_time()
                log._write(rows)
                per_row.append((time.thread_time() - began) / batch * 1e6)
    finally:
        impression_log._by_customer = by_customer
        log.close()
        engine.dispose()
    return statistics.median(per_row)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="lists already in the table")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="impression-writes-"))
    results: list[dict[str, Any]] = []
    try:
        cases = [(0, 2000, True), (args.rows, 2000, True), (args.rows, args.rows, True),
                 (args.rows, 2000, False)]  # fmt: skip
        for held, customers, index in cases:
            base = tmp / f"base-{held}-{customers}-{index}.db"
            print(f"filling {held:,} lists of {customers:,} customers, index {index}", flush=True)
            _fill(base, held, customers, index)
            orders = (False, True) if index else (False,)
            for batch in (1_600, 8_000, 16_000):
                for ordered in orders:
                    work = tmp / "work.db"
                    shutil.copy(base, work)
                    us = _measure(work, batch, customers, ordered)
                    for suffix in ("", "-wal", "-shm"):
                        Path(f"{work}{suffix}").unlink(missing_ok=True)
                    results.append({"lists_held": held, "customers": customers, "index": index,
                                    "rows_per_write": batch,
                                    "order": "customer" if ordered else "arrival",
                                    "us_per_row": round(us, 2)})  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    table = Table(title="impression writer, CPU per shown list on SQLite (median of 5 writes)")
    for col in ("lists held", "customers", "index", "rows per write", "order", "µs per row"):
        table.add_column(col, justify="right")
    for r in results:
        table.add_row(f"{r['lists_held']:,}", f"{r['customers']:,}", "yes" if r["index"] else "no",
                      f"{r['rows_per_write']:,}", r["order"], f"{r['us_per_row']:.1f}")  # fmt: skip
    Console(width=120).print(table)
    out = RESULTS / "impression_writes.json"
    out.write_text(json.dumps({
        "command": "python benchmarks/impression_writes.py --rows " + str(args.rows),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "writes_per_case": WRITES,
        "results": results,
    }, indent=2) + "\n")  # fmt: skip
    print(f"written to {out}")


if __name__ == "__main__":
    main()
