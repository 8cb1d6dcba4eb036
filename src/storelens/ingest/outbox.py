"""The edge outbox: events wait here, on the edge box's own disk, until the server has them.

It is a small SQLite file of its own (not the server's schema). WAL with
``synchronous=FULL`` makes every acknowledged :meth:`Outbox.put` an fsync'd commit,
so an event a camera or POS bridge handed over survives a power cut. Events are
validated on the way in (a device bug fails at the source, naming the field, instead
of being rejected by the server hours later) and stored as their normalised JSON, so
forwarding never re-encodes them. Rows are only ever removed when the server has
acknowledged them (:meth:`Outbox.ack`) or refused them (:meth:`Outbox.quarantine`,
which keeps the event with the server's reason instead of retrying it forever).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from storelens.core.errors import ConfigError, FieldError, InvalidInput, field_errors
from storelens.core.events import EVENT_TYPES, EventBase, event_adapter

__all__ = [
    "InvalidEvent",
    "Outbox",
    "QuarantinedEvent",
    "SourceCursor",
    "is_outbox_file",
]

_APPLICATION_ID = 0x534C4F42  # "SLOB": marks the file as a storelens outbox
_SCHEMA_VERSION = 1
_TABLES = frozenset({"outbox", "quarantine", "sources", "sqlite_sequence"})
_TAGS = tuple(EVENT_TYPES)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a stale ack cannot hit a new row
    id TEXT NOT NULL,
    ts REAL NOT NULL,                       -- event time, epoch seconds (sorts correctly)
    queued_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quarantine (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    errors TEXT NOT NULL,
    quarantined_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    line INTEGER NOT NULL
);
"""


class InvalidEvent(InvalidInput):
    """An event refused by :meth:`Outbox.put`; ``index`` is its position in the put."""

    def __init__(self, index: int, event_id: str | None, errors: list[FieldError]) -> None:
        self.index, self.event_id, self.errors = index, event_id, errors
        where = f"event {index}" + (f" (id {event_id})" if event_id else "")
        reasons = "; ".join(f"{e.loc}: {e.msg}" for e in errors)
        super().__init__(f"{where}: {reasons}", errors)


@dataclass(frozen=True, slots=True)
class QuarantinedEvent:
    """An event the server refused, kept with its reasons for an operator to look at."""

    rowid: int
    event_id: str
    raw_json: str
    errors: list[dict[str, Any]]
    quarantined_at: datetime


@dataclass(frozen=True, slots=True)
class SourceCursor:
    """How far a tailed file has been read, committed together with the events it gave."""

    name: str
    inode: int
    offset: int
    line: int


def _validated(item: Any, index: int) -> EventBase:
    if isinstance(item, EventBase):
        return item
    try:
        event: EventBase = event_adapter.validate_python(item)
    except ValidationError as exc:
        raw_id = item.get("id") if isinstance(item, Mapping) else None
        raise InvalidEvent(
            index, str(raw_id) if raw_id is not None else None, field_errors(exc, _TAGS)
        ) from None
    return event


def is_outbox_file(path: Path) -> bool:
    """Whether ``path`` is an outbox some edge wrote, read without writing to it: a
    command that only looks (``edge status``) must not turn an empty or foreign file
    into an outbox."""
    try:
        db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return False
    finally:
        db.close()
    # An outbox from before the application id was set holds only outbox tables.
    return bool(app_id == _APPLICATION_ID or (app_id == 0 and tables and tables <= _TABLES))


class Outbox:
    """A durable FIFO of events, safe to share between a producer and a forwarder thread.

    One connection behind a lock: SQLite serialises writers anyway, and it keeps the
    file's transactions simple. Other processes (``storelens edge status``) may open
    the same file; WAL lets them read while this one writes.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._generation = 0
        self._db = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=10.0
        )
        try:
            self._prepare()
        except BaseException:
            self._db.close()
            raise

    def _prepare(self) -> None:
        db = self._db
        try:
            app_id = db.execute("PRAGMA application_id").fetchone()[0]
        except sqlite3.OperationalError:  # locked, unreadable: not a question of the file's kind
            raise
        except sqlite3.DatabaseError as exc:  # "file is not a database": a log, a JSON file
            raise ConfigError(f"{self.path} is not an edge outbox file ({exc})") from None
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id not in (0, _APPLICATION_ID) or (app_id == 0 and tables - _TABLES):
            # Most likely the server's database: never write outbox tables into it.
            raise ConfigError(f"{self.path} is not an edge outbox file")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise ConfigError(
                f"{self.path} was written by a newer storelens (outbox schema {version})"
            )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        if app_id == 0 or version < _SCHEMA_VERSION:
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------

    def put(
        self,
        events: Iterable[EventBase | Mapping[str, Any]],
        *,
        cursor: SourceCursor | None = None,
    ) -> int:
        """Store events atomically; returns how many. Raises :class:`InvalidEvent`
        (a ``ValueError`` naming the event and field) and stores nothing if any is bad.

        ``cursor`` records how far a source file has been read in the same commit, so
        a restart neither skips nor re-queues lines.
        """
        checked = [_validated(item, i) for i, item in enumerate(events)]
        now = time.time()
        rows = [(str(e.id), e.ts.timestamp(), now, e.model_dump_json()) for e in checked]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO outbox (id, ts, queued_at, body) VALUES (?, ?, ?, ?)", rows
                )
                if cursor is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO sources (name, inode, offset, line) "
                        "VALUES (?, ?, ?, ?)",
                        (cursor.name, cursor.inode, cursor.offset, cursor.line),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if rows:
                self._generation += 1
                self._arrived.notify_all()
        return len(rows)

    def ack(self, rowids: Iterable[int]) -> int:
        """Delete events the server has acknowledged; returns how many were deleted."""
        params = [(int(r),) for r in rowids]
        if not params:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.executemany("DELETE FROM outbox WHERE seq = ?", params)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return cur.rowcount

    def quarantine(self, rowid: int, errors: Sequence[Mapping[str, Any] | FieldError]) -> bool:
        """Move a refused event out of the queue, keeping the server's reasons.

        Returns False when the row is no longer pending (already acked or quarantined).
        """
        reasons = [e.as_dict() if isinstance(e, FieldError) else dict(e) for e in errors]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT id, body FROM outbox WHERE seq = ?", (rowid,)
                ).fetchone()
                if row is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO quarantine (seq, id, body, errors, quarantined_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (rowid, row[0], row[1], orjson.dumps(reasons).decode(), time.time()),
                    )
                    self._db.execute("DELETE FROM outbox WHERE seq = ?", (rowid,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return row is not None

    # -- reading ---------------------------------------------------------------------

    def peek(self, limit: int) -> list[tuple[int, str]]:
        """The oldest ``limit`` pending events as ``(rowid, raw JSON)``, oldest first."""
        with self._lock:
            return self._db.execute(
                "SELECT seq, body FROM outbox ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()

    def size(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def quarantined(self) -> list[QuarantinedEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, id, body, errors, quarantined_at FROM quarantine ORDER BY seq"
            ).fetchall()
        return [
            QuarantinedEvent(
                seq, event_id, body, orjson.loads(errors), datetime.fromtimestamp(at, UTC)
            )
            for seq, event_id, body, errors, at in rows
        ]

    def quarantined_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0])

    def oldest(self) -> tuple[datetime | None, datetime | None]:
        """The earliest event time pending, and when the longest-waiting event was queued."""
        with self._lock:
            (min_ts,) = self._db.execute("SELECT MIN(ts) FROM outbox").fetchone()
            first = self._db.execute("SELECT queued_at FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return (
            datetime.fromtimestamp(min_ts, UTC) if min_ts is not None else None,
            datetime.fromtimestamp(first[0], UTC) if first is not None else None,
        )

    def cursor(self, name: str) -> SourceCursor | None:
        with self._lock:
            row = self._db.execute(
                "SELECT inode, offset, line FROM sources WHERE name = ?", (name,)
            ).fetchone()
        return SourceCursor(name, *row) if row is not None else None

    @property
    def generation(self) -> int:
        """Counts puts in this process; read it before :meth:`peek` to wait without a race."""
        return self._generation

    def wait_for_events(self, seen: int, timeout: float) -> None:
        """Block until a put in this process after generation ``seen``, or ``timeout``.

        Lets a forwarder idle without polling; puts from other processes are noticed
        when the timeout runs out.
        """
        with self._arrived:
            self._arrived.wait_for(lambda: self._generation != seen, timeout)
