"""An event id that already names a different event is a conflict, never a duplicate.

The log used to deduplicate on the id alone, across stores and sources: whoever sent
an id first owned it, and a later, different event under that id was counted as a
"duplicate" and dropped without a word. Run on SQLite and PostgreSQL (COPY path).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from storelens.core.events import Event, event_adapter
from storelens.storage.eventlog import AppendResult, EventLog
from storelens.storage.tables import events

RawEvent = Callable[..., dict[str, Any]]


def _event(raw_event: RawEvent, *args: Any, **kw: Any) -> Event:
    return event_adapter.validate_python(raw_event(*args, **kw))


def _conflicts(result: AppendResult) -> list[tuple[int, Any]]:
    return [(c.position, c.id) for c in result.conflicts]


def _stored(engine: Engine) -> list[tuple[str, str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(events.c.id, events.c.store_id, events.c.source).order_by(events.c.seq)
        )
        return [(str(r.id), r.store_id, r.source) for r in rows]


def test_same_id_from_another_store_is_a_conflict(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    theirs = _event(raw_event, store_id="cafe-01")
    ours = _event(raw_event, id=str(theirs.id), store_id="cafe-02")
    log.append([theirs])
    result = log.append([ours])
    assert result.accepted == [] and result.duplicates == []
    assert _conflicts(result) == [(0, ours.id)]
    assert _stored(engine) == [(str(theirs.id), "cafe-01", "test")]  # the first one untouched


@pytest.mark.parametrize(
    "change",
    [
        {"source": "pos-2"},
        {"subject": "L-9"},
        {"ts": datetime(2026, 11, 2, 8, 31, tzinfo=UTC).isoformat()},
        {
            "payload": {
                "order_id": "o-2",
                "lines": [{"product_id": "latte", "qty": 2, "unit_price": 3.4}],
            }
        },
        {"type": "order.ready", "payload": {"order_id": "o-1"}},
    ],
    ids=["source", "subject", "ts", "payload", "type"],
)
def test_any_difference_the_sender_chose_is_a_conflict(
    engine: Engine, raw_event: RawEvent, change: dict[str, Any]
) -> None:
    log = EventLog(engine)
    first = _event(raw_event)
    log.append([first])
    result = log.append([_event(raw_event, id=str(first.id), **change)])
    assert (result.accepted, result.duplicates) == ([], [])
    assert [c.id for c in result.conflicts] == [first.id]


def test_an_exact_replay_is_still_a_duplicate(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    raw = raw_event()  # its payload holds a float (unit_price), as JSON round-trips it
    log.append([event_adapter.validate_python(raw)])
    # The same event as a device would send it again: same fields, another UTC spelling.
    again = {**raw, "ts": "2026-11-02T09:30:00+01:00"}
    result = log.append([event_adapter.validate_python(again)])
    assert result.accepted == [] and result.conflicts == []
    assert [str(i) for i in result.duplicates] == [raw["id"]]
    assert len(_stored(engine)) == 1


def test_a_record_imported_again_later_is_a_duplicate(engine: Engine, raw_event: RawEvent) -> None:
    """An import stamps its own run time on ``customer.upserted``; the id names the
    record's content, so the same record at a later import is the same event."""
    log = EventLog(engine)
    record: dict[str, Any] = {"type_": "customer.upserted", "store_id": None, "source": "crm"}
    first = _event(raw_event, **record)
    later = (first.ts + timedelta(days=3)).isoformat()
    log.append([first])
    result = log.append([_event(raw_event, **record, id=str(first.id), ts=later)])
    assert result.duplicates == [first.id] and result.conflicts == []
    changed = _event(
        raw_event,
        **record,
        id=str(first.id),
        ts=later,
        payload={"source_system": "crm", "source_record_id": "c-1", "email": "eve@example.com"},
    )
    assert [c.id for c in log.append([changed]).conflicts] == [first.id]


def test_repeats_within_one_batch(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    a = _event(raw_event, store_id="cafe-01")
    a_again = _event(raw_event, id=str(a.id), store_id="cafe-01")
    a_elsewhere = _event(raw_event, id=str(a.id), store_id="cafe-02")
    old = _event(raw_event)
    log.append([old])
    old_elsewhere = _event(raw_event, id=str(old.id), store_id="cafe-03")
    result = log.append([a, a_elsewhere, old_elsewhere, a_again, old])
    assert result.accepted == [a.id]
    assert result.duplicates == [a.id, old.id]
    assert _conflicts(result) == [(1, a.id), (2, old.id)]
    assert _stored(engine) == [(str(old.id), "cafe-01", "test"), (str(a.id), "cafe-01", "test")]


@pytest.fixture
def reads_of_events(engine: Engine) -> Iterator[list[str]]:
    """Statements SQLAlchemy sent that read the events table back."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM events" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    yield seen
    event.remove(engine, "before_cursor_execute", note)


def test_only_ids_not_inserted_are_read_back(
    engine: Engine, raw_event: RawEvent, reads_of_events: list[str]
) -> None:
    log = EventLog(engine)
    batch = [_event(raw_event) for _ in range(20)]
    assert len(log.append(batch).accepted) == 20
    assert reads_of_events == []  # all new: no comparison read
    result = log.append([*batch[:2], _event(raw_event)])
    assert (len(result.accepted), len(result.duplicates)) == (1, 2)
    assert len(reads_of_events) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 21
