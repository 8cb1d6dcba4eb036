"""Shown lists, written to the impressions table off the request path, in batches.

Writing one answer's rows inside the request cost an INSERT and a commit per call
(on SQLite a journal sync, and with several workers a wait for the write lock),
about a third of a warm answer. Requests now put their rows on a bounded queue and
return; one thread per process writes whatever has gathered in one statement.

Nothing is dropped: a full queue makes the request write its own rows (slower, not
lost), :meth:`ImpressionLog.close` writes what is left at shutdown (and an exit
handler does for a process that never called it). An access request reads queued
rows with the written ones (:func:`queued_for`); an erasure drops the queued rows of
its subjects and leaves a mark (:func:`forget_all`): a write that already held their
rows deletes them again once it has committed. Waiting for that write instead would
deadlock on SQLite, where the erasure's transaction holds the write lock the writer
needs, and the rows would land after the erasure's delete.

Rows travel as plain tuples in :data:`COLUMNS` order, with each column's own bind
conversion applied (the same values SQLAlchemy would send): building and compiling a
dict per row through ``insert()`` cost about 8 µs a row, a sixth of a warm answer at
``k=10``. The writer sends them as multi-row ``INSERT ... VALUES (...), (...)``
statements of :data:`CHUNK_ROWS` rows, not one ``executemany``. The driver releases
the GIL around every statement it steps, and the event loop takes it each time, so
``executemany`` made the writer wait for the GIL once per row. With one worker under
wrk, a write of 4,000-9,000 rows then sometimes took 1-3 s of wall clock for 0.2 s of
CPU. The queue reached its bound, requests wrote inline behind the write lock, and
that stall was the p99 of 0.5-1 s. In chunks the writer waits once per 500 rows (same
probe: longest write 2.2-3.3 s before, 0.25-0.37 s after).

A write stores its rows in customer order, and the writer waits a second between writes
(``recommend_impressions_every_s``; 0.2 s before). The table's index on (customer,
time) keeps each customer's rows together, so each new row lands somewhere else in it,
and on SQLite every commit rewrites whole index pages into the WAL. Once the table held
a million lists, the writer spent 31-32 µs of CPU per list in writes of 1,600 (0.2 s at
8,000 requests/s), 20-26 µs in customer-ordered writes of 8,000, against 8.5-9.5 µs
without the customer index (``benchmarks/impression_writes.py``). That CPU is the
requests' own when two workers keep both cores busy.

A row the writer cannot store is refused by :meth:`ImpressionLog.add`, to the request
that made it; one that gets into the queue anyway is dropped at the write and counted
in the log, and the rows around it are written (it used to fail the batch, which went
back to the queue and failed again every second, while requests wrote their own rows
inline).

A row is one shown list, its items in ``shown`` (:func:`shown_document`), not one row
per item (migration 0015). At ``k=10`` the row per item made SQLite insert ten rows
per answer, about 5 µs each, on the thread that shares the GIL with the requests; with
two workers the two writers also queued for the one write lock ten times as long.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Dialect, Engine, delete

from storelens.privacy.audit import last_erasure
from storelens.recommend.fences import Fences
from storelens.storage.db import PreSerialized
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import recommend_impressions

__all__ = [
    "CHUNK_ROWS",
    "COLUMNS",
    "ERASED_ELSEWHERE_HOLD_S",
    "ImpressionLog",
    "Row",
    "Shown",
    "flush_all",
    "forget_all",
    "hold_all",
    "queued_for",
    "shown_document",
]

log = logging.getLogger(__name__)
_LIVE: weakref.WeakSet[ImpressionLog] = weakref.WeakSet()

COLUMNS = ("ts", "customer_id", "store_id", "personalized", "actor", "shown")
"""The order :func:`_row_converter` unpacks a row in."""
Row = tuple[Any, ...]  # one shown list, in COLUMNS order
Shown = tuple[tuple[str, float], ...]  # (product, confidence), best first: a row's items
_CUSTOMER = COLUMNS.index("customer_id")


def _by_customer(row: Row) -> str:
    """The sort key of a write (stable: a customer's rows keep their order); a row
    whose id is not text sorts first and is dropped at its conversion, instead of
    failing the sort of the whole batch."""
    customer = row[_CUSTOMER]
    return customer if isinstance(customer, str) else ""


_SHOWN = COLUMNS.index("shown")
_TS = COLUMNS.index("ts")
# Rows per INSERT statement: 3,000 parameters, inside SQLite's (32,766) and
# PostgreSQL's (65,535) limits.
CHUNK_ROWS = 500
ERASED_ELSEWHERE_HOLD_S = 5.0
"""The least time rows are refused after an erasure seen only by its audit row; the
engine holds ten follower steps if that is longer: by then this process has dropped
every list it cached."""
_PLACEHOLDER = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def as_row(row: Mapping[str, Any] | Row) -> Row:
    """A row given by column name (tests, older callers) as the tuple the queue holds."""
    return row if isinstance(row, tuple) else tuple(row[c] for c in COLUMNS)


def shown_document(items: Shown | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A row's items as stored and exported: ``[{"product_id", "rank", "confidence"}]``.

    The queue holds bare pairs (a request builds ten small tuples, not ten dicts); the
    writer spells them out. A list of dicts (``record_shown``, tests) is kept as is."""
    if isinstance(items, list):
        return items
    return [
        {"product_id": product, "rank": rank, "confidence": confidence}
        for rank, (product, confidence) in enumerate(items, start=1)
    ]


def _insert_sql(dialect: Dialect, rows: int = 1) -> str:
    """The driver-level INSERT of ``rows`` rows, in the driver's own parameter style
    (positional styles only repeat; numeric and named styles get one row)."""
    mark = _PLACEHOLDER.get(dialect.paramstyle)
    if mark is None:  # numeric or named: not used by our drivers; spelled out anyway
        marks = [f":{i + 1}" if dialect.paramstyle == "numeric" else f":{c}"
                 for i, c in enumerate(COLUMNS)]  # fmt: skip
        rows = 1
    else:
        marks = [mark] * len(COLUMNS)
    prep = dialect.identifier_preparer
    names = ", ".join(prep.quote(c) for c in COLUMNS)
    table = prep.format_table(recommend_impressions)
    values = ", ".join([f"({', '.join(marks)})"] * rows)
    return f"INSERT INTO {table} ({names}) VALUES {values}"


def _chunkable(dialect: Dialect) -> bool:
    return dialect.paramstyle in _PLACEHOLDER


def _converters(dialect: Dialect) -> list[Callable[[Any], Any] | None]:
    """Each column's bind conversion on this dialect (UTC timestamps to SQLite's text,
    the items to JSON): what ``insert()`` applies to every value, computed once."""
    columns = recommend_impressions.c
    return [columns[c].type.dialect_impl(dialect).bind_processor(dialect) for c in COLUMNS]


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DATETIME stores for ``value`` in UTC
    (``YYYY-MM-DD HH:MM:SS.ffffff``; a test holds the two equal), without its per-value
    dict formatting: 3.8 of the 8.6 µs a row's conversion took. A UTC time (every
    request's) is cut from its own ISO text: no converted copy."""
    zone = value.tzinfo
    if zone is None:
        raise ValueError("naive datetime given; storelens stores tz-aware times only")
    if zone is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _same(value: Any) -> Any:
    return value


def _text(value: Any, column: str) -> str:
    """An id column's value as the databases take it: text of 1-128 characters without
    NUL (PostgreSQL refuses one inside the statement, which would fail the batch)."""
    if not isinstance(value, str) or not 0 < len(value) <= 128 or "\x00" in value:
        raise ValueError(f"{column}: text of 1 to 128 characters without NUL expected")
    return value


def _row_converter(dialect: Dialect) -> Callable[[Row], Row]:
    """One row converted for the driver: items spelled out (:func:`shown_document`),
    then each column's bind conversion (SQLite's timestamps by :func:`_sqlite_time`).
    Whatever the database would refuse inside the statement is refused here, for this
    row alone: ids (:func:`_text`), a flag that is not a bool, items that are not JSON
    or hold a NUL (PostgreSQL's JSONB refuses ``\\u0000``).

    This runs on the writer thread holding the GIL, once per row: a conversion the
    dialect does not need (the JSON text bound as it is) is not called."""
    at, customer, store, flag, actor, shown = _converters(dialect)
    if dialect.name == "sqlite":
        at = _sqlite_time
    at, flag = at or _same, flag or _same
    to_c, to_s, to_a = customer or _same, store or _same, actor or _same
    if shown is not None and shown(PreSerialized("[]")) == "[]":
        shown = None  # the JSON type binds pre-serialised text as it is: skip the call

    def convert(row: Row) -> Row:
        t, c, s, p, a, items = row
        if p is not True and p is not False:
            raise ValueError("personalized: a bool expected")
        # Serialised here on every backend (psycopg's JSONB would do it inside the
        # statement), so an item that is not JSON fails this row, not the batch.
        text = orjson.dumps(shown_document(items)).decode()
        if "\\u0000" in text:
            raise ValueError("shown: an item holds a NUL")
        return (
            at(t),
            to_c(_text(c, "customer_id")),
            to_s(_text(s, "store_id")),
            flag(p),
            to_a(_text(a, "actor")),
            text if shown is None else shown(PreSerialized(text)),
        )

    return convert


def _driver_rows(batch: Sequence[Row], convert: Callable[[Row], Row]) -> tuple[list[Row], int]:
    """``batch`` converted for the driver, and how many rows could not be: those are
    left out. :meth:`ImpressionLog.add` refuses the bad rows it can see; one that got
    past it must not hold every later list in the queue (it did: the whole batch failed
    and went back, again and again)."""
    out: list[Row] = []
    bad = 0
    for row in batch:
        try:
            out.append(convert(row))
        except Exception:  # whatever this row's fault (a review found OverflowError
            bad += 1  # at year 1 and 9999), it is this row's alone
    return out, bad


def _checked(row: Row) -> Row:
    """``row`` if the writer can store it; a ValueError naming the column otherwise, to
    the caller that made it, not the writer a second later."""
    if len(row) != len(COLUMNS):
        raise ValueError(f"an impression row has {len(COLUMNS)} columns, not {len(row)}")
    at = row[_TS]
    if not isinstance(at, datetime) or at.tzinfo is None:
        raise ValueError("ts: an impression's time must be a tz-aware datetime")
    return row


class ImpressionLog:
    """A bounded queue of impression rows and the thread that writes them.

    ``every_s`` is how long rows may wait; ``max_rows`` bounds the queue (past it,
    :meth:`add` writes synchronously); ``write_at`` rows (half the bound unless given)
    wake the writer early, so a burst is written before requests must write their own.
    The thread starts on the first :meth:`add`.
    ``clock`` (monotonic seconds) times the fences; ``hold_s`` is how long every row is
    refused after an erasure seen only by its audit row (see :meth:`admits`)."""

    def __init__(
        self,
        engine: Engine,
        every_s: float = 1.0,
        max_rows: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
        hold_s: float = ERASED_ELSEWHERE_HOLD_S,
        write_at: int | None = None,
    ) -> None:
        self._engine, self._every, self._max = engine, every_s, max_rows
        self._write_at = max(1, max_rows // 2) if write_at is None else write_at
        self._hold_s = hold_s
        self._rows: deque[Row] = deque()
        self._sql = _insert_sql(engine.dialect)
        self._chunked = _chunkable(engine.dialect)
        self._chunk_sql = _insert_sql(engine.dialect, CHUNK_ROWS)
        self._convert = _row_converter(engine.dialect)
        self._lock = threading.Lock()  # guards _rows and the thread's start
        self._write_lock = threading.Lock()  # one writer at a time: order kept
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._forgotten: set[str] = set()  # erased while a write held their rows
        # Customers being erased: rows of answers computed from a read before the
        # erasure committed are dropped, not logged under their id afterwards.
        self._fences = Fences(clock)
        with engine.connect() as conn:  # erasures before this log cannot concern its rows
            self._erasures_seen = last_erasure(conn, 0) or 0
        _LIVE.add(self)

    def add(self, rows: Sequence[Row | Mapping[str, Any]]) -> None:
        """Queue ``rows`` (tuples in :data:`COLUMNS` order, or mappings by name)."""
        if not rows:
            return
        checked = [_checked(r) for r in map(as_row, rows)]
        with self._lock:  # the same lock as the hold: no row slips in after a clear
            queued = [r for r in checked if not self._fences.blocks(r[_CUSTOMER])]
            if not queued:
                return
            if self._stopped.is_set() or len(self._rows) + len(queued) > self._max:
                overflow = True
            else:
                overflow = False
                self._rows.extend(queued)
                if len(self._rows) >= self._write_at:
                    self._wake.set()
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="impression-log", daemon=True
                    )
                    self._thread.start()
        if overflow:  # back-pressure: the caller pays for its own write
            self.flush()
            with self._write_lock:
                with self._lock:  # the flush may have seen an erasure: ask again
                    queued = [r for r in queued if not self._fences.blocks(r[_CUSTOMER])]
                if queued:
                    self._write(queued)

    def full(self, rows: int) -> bool:
        """Whether adding ``rows`` rows now would write inline instead of queueing them."""
        with self._lock:
            return self._stopped.is_set() or len(self._rows) + rows > self._max

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def queued(self, customer_ids: set[str]) -> list[dict[str, Any]]:
        with self._lock:
            mine = [r for r in self._rows if r[_CUSTOMER] in customer_ids]
        rows = [dict(zip(COLUMNS, r, strict=True)) for r in mine]
        for row in rows:
            row["shown"] = shown_document(row["shown"])
        return rows

    def forget(self, customer_ids: set[str]) -> int:
        """Drop these customers' queued rows; a write under way deletes theirs after it.
        Their new rows are refused until :meth:`hold` lets them be after a grace."""
        self._fences.close(customer_ids)
        with self._lock:
            keep = [r for r in self._rows if r[_CUSTOMER] not in customer_ids]
            dropped = len(self._rows) - len(keep)
            self._rows = deque(keep)
            if self._write_lock.locked():
                self._forgotten |= customer_ids
        return dropped

    def _write(self, batch: list[Row]) -> None:
        """Insert ``batch`` (the caller holds the write lock), then delete the rows of
        anyone erased meanwhile: their erasure's delete may have run before this commit.

        An erasure in another process is not known by its ids here, only by its audit
        row; any new one drops the whole batch (see :meth:`admits`).

        Rows are converted a chunk at a time, each just before its statement: the
        conversion holds the GIL (5 µs a row), the statement lets go of it, so requests
        wait for at most one chunk's conversion, not a second's worth of rows.
        Converting every chunk before the transaction instead, to hold the erasure
        lock for the statements alone, was tried: side by side with the previous
        release (``serving_ab.py``, one worker) p99 was 16.1 ms against 12.8, and 12.7
        against 13.3 once this order was back; between chunks the thread took the GIL
        straight back, and requests waited out the switch interval. So the lock is held
        for Python's share too (tens of ms a second), and an erasure waits that long."""
        ordered = sorted(batch, key=_by_customer)
        dropped = 0
        with self._engine.begin() as conn:
            if not self.admits(conn):
                log.info(
                    "an erasure since the last write: %d impression row(s) dropped", len(batch)
                )
                return
            if not self._chunked:
                rows, dropped = _driver_rows(ordered, self._convert)
                if rows:
                    conn.exec_driver_sql(self._sql, rows)
                ordered = []
            for lo in range(0, len(ordered), CHUNK_ROWS):
                part, bad = _driver_rows(ordered[lo : lo + CHUNK_ROWS], self._convert)
                dropped += bad
                if not part:
                    continue
                whole = len(part) == CHUNK_ROWS
                sql = self._chunk_sql if whole else _insert_sql(self._engine.dialect, len(part))
                conn.exec_driver_sql(sql, tuple(v for row in part for v in row))
        if dropped:  # the count and nothing else: the rows are personal data
            log.error("%d impression row(s) could not be stored and were dropped", dropped)
        with self._lock:
            late = self._forgotten & {r[_CUSTOMER] for r in batch}
            self._forgotten.clear()
        if late:
            column = recommend_impressions.c.customer_id
            with self._engine.begin() as conn:
                conn.execute(delete(recommend_impressions).where(column.in_(sorted(late))))

    def flush(self) -> int:
        """Write every queued row now; the number of rows taken from the queue (written,
        or dropped as :meth:`_write` says: rows it cannot store, or every row after an
        erasure elsewhere)."""
        with self._write_lock:
            with self._lock:
                batch = list(self._rows)
                self._rows.clear()
            if batch:
                try:
                    self._write(batch)
                except Exception:
                    with self._lock:  # put them back, oldest first, for the next try
                        gone, self._forgotten = self._forgotten, set()
                        back = [r for r in batch if r[_CUSTOMER] not in gone]
                        self._rows.extendleft(reversed(back))
                    raise
            return len(batch)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._every)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a database hiccup: the rows stay queued, retried next tick
                log.exception("writing impressions failed; retrying")

    def admits(self, conn: Connection) -> bool:
        """Take the shared erasure lock in ``conn``'s transaction, then say whether rows
        of answers this process computed may be written in it: not after an erasure
        since the last look, perhaps by another process, whose ids are unknown here.

        Then rows of this write, everything queued, and every new row for ``hold_s``
        (until this process's follower has emptied the lists it cached) are dropped: a
        few seconds of other customers' impressions lost, never a row about an erased
        person (a review found other workers' rows outliving an erasure, then rows
        queued while the writer waited, then the batch and claimer views' rows)."""
        dialect_for(conn).lock_erasures(conn, shared=True)
        newest = last_erasure(conn, self._erasures_seen)
        if newest is None:
            return True
        with self._lock:
            self._erasures_seen = max(self._erasures_seen, newest)
            self._fences.hold_everyone(self._hold_s)
            self._rows.clear()
        return False

    def hold(self, customer_ids: set[str]) -> None:
        self._fences.hold(customer_ids)

    def refuses(self, customer_id: str) -> bool:
        """Whether this customer's rows are refused now (an erasure is under way)."""
        return self._fences.blocks(customer_id)

    def close(self) -> None:
        """Stop the thread and write what is left (the server's shutdown calls this)."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)
        self.flush()


def flush_all() -> None:
    """Write every queued row of every log in this process."""
    for impressions in list(_LIVE):
        try:
            impressions.flush()
        except Exception:  # at exit: say so, do not hide the other logs' rows
            log.exception("impressions left unwritten")


def queued_for(customer_ids: set[str]) -> list[dict[str, Any]]:
    """Rows of these customers not written yet, in every log of this process."""
    return [row for impressions in list(_LIVE) for row in impressions.queued(customer_ids)]


def forget_all(customer_ids: set[str]) -> int:
    return sum(impressions.forget(customer_ids) for impressions in list(_LIVE))


def hold_all(customer_ids: set[str], *, drop: bool = True) -> int:
    """After an erasure ended: drop what was queued meanwhile (only if it committed),
    and refuse these customers' rows for the grace period from now (then it lifts)."""
    dropped = 0
    for impressions in list(_LIVE):
        if drop:
            dropped += impressions.forget(customer_ids)
        impressions.hold(customer_ids)
    return dropped


atexit.register(flush_all)
