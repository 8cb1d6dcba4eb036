"""The append-only event log: idempotent writes, range queries and resumable cursors.

Every event gets a log position (``seq``) when it is first stored; a replayed event
(same ``id``) is counted as a duplicate and stores nothing. Processors read events
after a position and commit their own writes together with their new position in
one transaction (:meth:`EventLog.consume`), so a crash at any point neither loses
nor double-counts an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select

from storelens.core.events import Event, event_adapter
from storelens.storage.db import PreSerialized
from storelens.storage.dialects import Dialect, dialect_for
from storelens.storage.tables import consumer_offsets, events

__all__ = ["AppendResult", "EventLog", "EventQuery", "StoredEvent"]

Handler = Callable[[Connection, list["StoredEvent"]], None]


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the log, payload as a plain dict for fast processing."""

    seq: int
    id: uuid.UUID
    type: str
    ts: datetime
    store_id: str | None
    source: str
    subject: str | None
    payload: dict[str, Any]
    # The server's clock when the event was appended: no device sets it (the ops
    # tracker tells quiet stores by it), and it is in the log, so replays agree.
    received_at: datetime | None = None

    def to_event(self) -> Event:
        """Re-validate into the typed envelope when a processor wants the models."""
        return event_adapter.validate_python(
            {
                "id": self.id,
                "type": self.type,
                "ts": self.ts,
                "store_id": self.store_id,
                "source": self.source,
                "subject": self.subject,
                "payload": self.payload,
            }
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "id": str(self.id),
            "type": self.type,
            "ts": self.ts.isoformat(),
            "store_id": self.store_id,
            "source": self.source,
            "subject": self.subject,
            "payload": self.payload,
        }


@dataclass(frozen=True, slots=True)
class AppendResult:
    accepted: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EventQuery:
    store_id: str | None = None
    types: Sequence[str] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    subject: str | None = None
    after_seq: int = 0
    limit: int = 1000


def _row(event: Event, received_at: datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "ts": event.ts,
        "store_id": event.store_id,
        "source": event.source,
        "subject": event.subject,
        "payload": PreSerialized(event.payload.model_dump_json()),
        "received_at": received_at,
    }


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        seq=row.seq,
        id=row.id,
        type=row.type,
        ts=row.ts,
        store_id=row.store_id,
        source=row.source,
        subject=row.subject,
        payload=row.payload,
        received_at=row.received_at,
    )


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: Dialect = dialect_for(engine)

    # -- writing ---------------------------------------------------------------------

    def append(self, batch: Sequence[Event]) -> AppendResult:
        """Store the events not seen before, in one transaction, in the order given."""
        if not batch:
            return AppendResult()
        with self.engine.begin() as conn:
            return self.append_in(conn, batch)

    def append_in(self, conn: Connection, batch: Sequence[Event]) -> AppendResult:
        """Append inside the caller's transaction (used by importers that write more)."""
        received_at = datetime.now(UTC)
        unique: dict[uuid.UUID, Event] = {}
        repeats: list[uuid.UUID] = []
        for event in batch:
            if event.id in unique:
                repeats.append(event.id)
            else:
                unique[event.id] = event
        self.dialect.lock_appends(conn)
        stored = self.dialect.append_events(conn, [_row(e, received_at) for e in unique.values()])
        accepted = [i for i in unique if i in stored]
        duplicates = [i for i in unique if i not in stored] + repeats
        return AppendResult(accepted=accepted, duplicates=duplicates)

    # -- reading ---------------------------------------------------------------------

    def query(self, q: EventQuery) -> list[StoredEvent]:
        stmt = select(events).where(events.c.seq > q.after_seq)
        if q.store_id is not None:
            stmt = stmt.where(events.c.store_id == q.store_id)
        if q.types:
            stmt = stmt.where(events.c.type.in_(list(q.types)))
        if q.since is not None:
            stmt = stmt.where(events.c.ts >= q.since)
        if q.until is not None:
            stmt = stmt.where(events.c.ts < q.until)
        if q.subject is not None:
            stmt = stmt.where(events.c.subject == q.subject)
        stmt = stmt.order_by(events.c.seq).limit(q.limit)
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(stmt)]

    def read_after(
        self, position: int, limit: int = 1000, types: Sequence[str] = ()
    ) -> list[StoredEvent]:
        return self.query(EventQuery(after_seq=position, limit=limit, types=types))

    def iter_all(self, batch: int = 5000, types: Sequence[str] = ()) -> Iterator[StoredEvent]:
        position = 0
        while rows := self.read_after(position, batch, types):
            yield from rows
            position = rows[-1].seq

    def head(self) -> int:
        """The highest position written so far (0 for an empty log)."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(select(events.c.seq).order_by(events.c.seq.desc()).limit(1)).scalar()
                or 0
            )

    # -- cursors ---------------------------------------------------------------------

    def position(self, consumer: str, conn: Connection | None = None) -> int:
        stmt = select(consumer_offsets.c.position).where(consumer_offsets.c.consumer == consumer)
        if conn is not None:
            return int(conn.execute(stmt).scalar() or 0)
        with self.engine.connect() as c:
            return int(c.execute(stmt).scalar() or 0)

    def commit_position(self, conn: Connection, consumer: str, position: int) -> None:
        stmt = self.dialect.upsert(consumer_offsets, ["consumer"], ["position", "updated_at"])
        conn.execute(
            stmt, {"consumer": consumer, "position": position, "updated_at": datetime.now(UTC)}
        )

    def consume(
        self,
        consumer: str,
        handler: Handler,
        *,
        types: Sequence[str] = (),
        batch: int = 1000,
        max_batches: int | None = None,
    ) -> int:
        """Feed unseen events to ``handler`` batch by batch; return how many were handled.

        The handler's writes and the new cursor position commit in one transaction,
        which is what makes a projection exactly-once across crashes and restarts.
        Events of other types still advance the cursor, so filtering never stalls it.
        """
        handled = 0
        done = 0
        while max_batches is None or done < max_batches:
            with self.engine.begin() as conn:
                self.dialect.lock_consumer(conn, consumer)
                start = self.position(consumer, conn)
                rows = self._read(conn, start, batch)
                if not rows:
                    break
                wanted = [r for r in rows if not types or r.type in types]
                if wanted:
                    handler(conn, wanted)
                self.commit_position(conn, consumer, rows[-1].seq)
            handled += len(wanted)
            done += 1
        return handled

    def _read(self, conn: Connection, position: int, limit: int) -> list[StoredEvent]:
        stmt = select(events).where(events.c.seq > position).order_by(events.c.seq).limit(limit)
        return [_stored(r) for r in conn.execute(stmt)]
