"""The append-only event log: idempotent writes, range queries and resumable cursors.

Every event gets a log position (``seq``) when it is first stored; a replayed event
(same ``id``, same event) is counted as a duplicate and stores nothing, while a
different event under a stored id is a conflict: it stores nothing either, but the
sender is told (see :func:`same_event`). Processors read events after a position and
commit their own writes together with their new position in one transaction
(:meth:`EventLog.consume`), so a crash at any point neither loses nor double-counts
an event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, select

from storelens.core.events import Event, event_adapter
from storelens.storage.db import PreSerialized
from storelens.storage.dialects import Dialect, dialect_for
from storelens.storage.tables import consumer_offsets, events

__all__ = [
    "AppendResult",
    "EventLog",
    "EventQuery",
    "IdConflict",
    "Senders",
    "SentEvent",
    "StoredEvent",
    "same_event",
]

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
    # Who handed it in (the key, user, MQTT device or operator), as the server knew them.
    sent_by: str | None = None

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
            "sent_by": self.sent_by,
        }


@dataclass(frozen=True, slots=True)
class IdConflict:
    """An event not stored because its id already names a different event; ``position``
    is its index in the batch given to :meth:`EventLog.append`."""

    position: int
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class AppendResult:
    accepted: list[uuid.UUID] = field(default_factory=list)
    duplicates: list[uuid.UUID] = field(default_factory=list)
    conflicts: list[IdConflict] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class EventQuery:
    store_id: str | None = None
    types: Sequence[str] = ()
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    subject: str | None = None
    sent_by: str | None = None
    after_seq: int = 0
    limit: int = 1000


Senders = str | Sequence[str | None] | None
"""Who handed a batch in: one name for all of it, one per event, or nobody known."""


def _row(event: Event, received_at: datetime, sent_by: str | None) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "ts": event.ts,
        "store_id": event.store_id,
        "source": event.source,
        "subject": event.subject,
        "payload": PreSerialized(event.payload.model_dump_json()),
        "received_at": received_at,
        "sent_by": None if sent_by is None else sent_by[:128],
    }


class SentEvent(NamedTuple):
    """What a sender chose for an event (everything but the server's ``received_at``)."""

    type: str
    ts: datetime
    store_id: str | None
    source: str
    subject: str | None
    payload: Any


def _sent(event: Event) -> SentEvent:
    # The payload as the log holds it (JSON), so a stored row compares like for like.
    payload = orjson.loads(event.payload.model_dump_json())
    return SentEvent(event.type, event.ts, event.store_id, event.source, event.subject, payload)


def same_event(event: Event, known: SentEvent) -> bool:
    """Whether ``event`` is the event already known under its id, sent again.

    Ids are chosen by senders and shared by every store and source, so an id alone
    proves nothing: a device of one store, or one guessing an import's ids, could
    otherwise take an id first and have the real event dropped as a "duplicate".
    A resend (an edge outbox after a lost answer, MQTT redelivery, a file loaded
    twice) repeats everything its sender chose, so every such field must match: type,
    store, source, subject, payload and the time, compared as instants (a UTC
    offset is spelling, not content). The exception is a ``restamped`` type, whose
    sender stamps each send anew (a customer import's run time) and whose id names
    the content: there ``ts`` is left out, or every re-import would be a conflict.
    """
    sent = _sent(event)
    if type(event).restamped:
        return sent._replace(ts=known.ts) == known
    return sent == known


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
        sent_by=row.sent_by,
    )


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect: Dialect = dialect_for(engine)

    # -- writing ---------------------------------------------------------------------

    def append(self, batch: Sequence[Event], sent_by: Senders = None) -> AppendResult:
        """Store the events not seen before, in one transaction, in the order given."""
        if not batch:
            return AppendResult()
        with self.engine.begin() as conn:
            return self.append_in(conn, batch, sent_by)

    def append_in(
        self, conn: Connection, batch: Sequence[Event], sent_by: Senders = None
    ) -> AppendResult:
        """Append inside the caller's transaction (used by importers that write more).

        An event that is not stored is a duplicate when it is the event its id names
        (:func:`same_event`) and a conflict otherwise; repeats within the batch are
        held against what the id names after the insert. Only ids the insert skipped
        are read back, so an all-new batch costs no extra query.

        ``sent_by`` (a name, or one per event) is who handed the events in, recorded with
        each stored event so an investigation can tell which key or device wrote it. It
        is not part of the event: a replay from another sender is still a duplicate, and
        the first sender stays on record.
        """
        received_at = datetime.now(UTC)
        first: dict[uuid.UUID, int] = {}
        for position, event in enumerate(batch):
            first.setdefault(event.id, position)
        self.dialect.lock_appends(conn)
        senders = [sent_by] * len(batch) if sent_by is None or isinstance(sent_by, str) else sent_by
        if len(senders) != len(batch):
            raise ValueError(f"{len(senders)} senders for a batch of {len(batch)} events")
        rows = [_row(batch[p], received_at, senders[p]) for p in first.values()]
        stored = self.dialect.append_events(conn, rows)
        accepted = [i for i in first if i in stored]
        rest = [(p, e) for p, e in enumerate(batch) if e.id not in stored or first[e.id] != p]
        if not rest:
            return AppendResult(accepted=accepted)
        known = _read_sent(conn, {e.id for _, e in rest if e.id not in stored})
        duplicates: list[uuid.UUID] = []
        conflicts: list[IdConflict] = []
        for position, event in rest:
            if event.id in stored and event.id not in known:
                known[event.id] = _sent(batch[first[event.id]])
            held = known.get(event.id)
            if held is not None and same_event(event, held):
                duplicates.append(event.id)
            else:  # different (or its row vanished: not provably the same)
                conflicts.append(IdConflict(position, event.id))
        return AppendResult(accepted=accepted, duplicates=duplicates, conflicts=conflicts)

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
        if q.sent_by is not None:
            stmt = stmt.where(events.c.sent_by == q.sent_by)
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


_READ_CHUNK = 1000  # ids per comparison read: well under every backend's bound-parameter limit


def _read_sent(conn: Connection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, SentEvent]:
    """What the log holds under ``ids``, in the caller's transaction (after the insert)."""
    wanted = list(ids)
    columns = [events.c[name] for name in ("id", *SentEvent._fields)]
    found: dict[uuid.UUID, SentEvent] = {}
    for start in range(0, len(wanted), _READ_CHUNK):
        chunk = wanted[start : start + _READ_CHUNK]
        for row in conn.execute(select(*columns).where(events.c.id.in_(chunk))):
            found[row.id] = SentEvent(
                row.type, row.ts, row.store_id, row.source, row.subject, row.payload
            )
    return found
