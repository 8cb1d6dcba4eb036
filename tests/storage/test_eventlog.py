"""The event log on SQLite and PostgreSQL: idempotent appends, queries, resumable cursors."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from storelens.core.events import Event, event_adapter
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog, EventQuery, StoredEvent
from storelens.storage.tables import events

RawEvent = Callable[..., dict[str, Any]]
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _batch(raw_event: RawEvent, n: int, **kw: Any) -> list[Event]:
    return [
        event_adapter.validate_python(raw_event(ts=(T0 + timedelta(minutes=i)).isoformat(), **kw))
        for i in range(n)
    ]


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


def test_same_batch_twice_is_stored_once(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    batch = _batch(raw_event, 50)
    first = log.append(batch)
    second = log.append(batch)
    assert len(first.accepted) == 50 and first.duplicates == []
    assert second.accepted == [] and len(second.duplicates) == 50
    assert _count(engine) == 50


def test_partly_new_batch_stores_only_the_new(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    old = _batch(raw_event, 10)
    log.append(old)
    new = _batch(raw_event, 5)
    result = log.append(old[:3] + new)
    assert sorted(result.accepted) == sorted(e.id for e in new)
    assert sorted(result.duplicates) == sorted(e.id for e in old[:3])
    assert _count(engine) == 15


def test_repeated_id_within_a_batch(engine: Engine, raw_event: RawEvent) -> None:
    event = _batch(raw_event, 1)[0]
    result = EventLog(engine).append([event, event, event])
    assert result.accepted == [event.id]
    assert result.duplicates == [event.id, event.id]
    assert _count(engine) == 1


def test_payload_round_trips(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    original = _batch(raw_event, 1)[0]
    log.append([original])
    stored = log.read_after(0)[0]
    assert stored.id == original.id
    assert stored.ts == original.ts and stored.ts.tzinfo is not None
    assert stored.payload == original.payload.model_dump(mode="json")
    assert stored.to_event() == original


def test_query_by_store_type_and_time(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    log.append(_batch(raw_event, 10, store_id="a"))
    log.append(_batch(raw_event, 10, store_id="b"))
    log.append(
        _batch(
            raw_event,
            4,
            store_id=None,
            type="web.event",
            payload={"session_id": "s", "action": "search", "query": "oat"},
        )
    )
    assert len(log.query(EventQuery(store_id="a"))) == 10
    window = log.query(
        EventQuery(store_id="b", since=T0 + timedelta(minutes=2), until=T0 + timedelta(minutes=5))
    )
    assert [e.ts for e in window] == [T0 + timedelta(minutes=m) for m in (2, 3, 4)]
    assert {e.type for e in log.query(EventQuery(types=["web.event"]))} == {"web.event"}
    assert len(log.query(EventQuery(types=["web.event", "pos.order_paid"]))) == 24
    page = log.query(EventQuery(limit=7))
    rest = log.query(EventQuery(after_seq=page[-1].seq, limit=100))
    assert len(page) == 7 and len(rest) == 17
    assert page[-1].seq < rest[0].seq


def test_cursor_resumes_after_restart(db_url: str, raw_event: RawEvent) -> None:
    """A consumer stopped half-way continues where it committed, in a new process."""
    seen: list[uuid.UUID] = []

    def handler(_: Connection, batch: list[StoredEvent]) -> None:
        seen.extend(e.id for e in batch)

    first_engine = create_engine(db_url)
    log = EventLog(first_engine)
    batch = _batch(raw_event, 25)
    log.append(batch)
    assert log.consume("counter", handler, batch=10, max_batches=1) == 10
    first_engine.dispose()  # "restart"

    second_engine = create_engine(db_url)
    log2 = EventLog(second_engine)
    assert log2.position("counter") == log2.read_after(0)[9].seq
    assert log2.consume("counter", handler, batch=10) == 15
    assert seen == [e.id for e in batch]
    log2.append(_batch(raw_event, 2))
    assert log2.consume("counter", handler) == 2
    assert log2.consume("counter", handler) == 0
    second_engine.dispose()


def test_failed_handler_does_not_advance_cursor(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    log.append(_batch(raw_event, 5))
    calls = 0

    def flaky(_: Connection, batch: list[StoredEvent]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("projection crashed")

    with pytest.raises(RuntimeError):
        log.consume("flaky", flaky)
    assert log.position("flaky") == 0
    assert log.consume("flaky", flaky) == 5
    assert log.position("flaky") == log.head()


def test_type_filter_still_advances_cursor(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    log.append(_batch(raw_event, 3))
    got: list[str] = []
    n = log.consume("web-only", lambda _c, b: got.extend(e.type for e in b), types=["web.event"])
    assert n == 0 and got == []
    assert log.position("web-only") == log.head() > 0


def test_empty_log(engine: Engine) -> None:
    log = EventLog(engine)
    assert log.head() == 0
    assert log.append([]).accepted == []
    assert log.consume("x", lambda _c, _b: None) == 0


def test_concurrent_consumers_handle_each_event_once(db_url: str, raw_event: RawEvent) -> None:
    """Two API workers run the same projection at once: no event is handled twice."""
    import threading

    from storelens.privacy.audit import SYSTEM, record
    from storelens.storage.tables import audit_log

    setup = create_engine(db_url)
    EventLog(setup).append(_batch(raw_event, 300))

    def handler(conn: Connection, batch: list[StoredEvent]) -> None:
        for e in batch:  # a side effect that is NOT idempotent, to catch double handling
            record(conn, SYSTEM, "handled", "event", str(e.id))

    def worker() -> None:
        engine = create_engine(db_url)  # a process of its own, as far as the pool goes
        log = EventLog(engine)
        while log.consume("shared", handler, batch=7, max_batches=1):
            pass
        engine.dispose()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with setup.connect() as conn:
        handled = conn.execute(select(audit_log.c.resource_id)).scalars().all()
    assert len(handled) == 300
    assert len(set(handled)) == 300
    setup.dispose()
