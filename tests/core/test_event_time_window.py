"""EventTimeWindow: the bound on event times that every ingest path validates with."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError

from storelens.core.events import EventTimeWindow, event_adapter, event_batch_adapter
from storelens.ingest.batch import validate_items

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _web(ts: str) -> dict[str, object]:
    return {
        "id": str(uuid.uuid4()),
        "type": "web.event",
        "ts": ts,
        "source": "web",
        "payload": {"session_id": "s", "action": "page_view"},
    }


def test_window_edges_are_inclusive() -> None:
    window = EventTimeWindow(now=NOW, max_future=timedelta(seconds=300))
    context = window.context()
    assert event_adapter.validate_python(_web("2026-11-02T12:05:00Z"), context=context)
    assert event_adapter.validate_python(_web("2000-01-01T00:00:00Z"), context=context)
    with pytest.raises(ValidationError, match="event_time_in_future"):
        event_adapter.validate_python(_web("2026-11-02T12:05:00.000001Z"), context=context)
    with pytest.raises(ValidationError, match="event_time_too_early"):
        event_adapter.validate_python(_web("1999-12-31T23:59:59.999999Z"), context=context)


def test_a_time_with_no_utc_equivalent_is_a_validation_error_not_a_crash() -> None:
    # Before the fix this raised OverflowError out of pydantic, failing the whole batch.
    body = orjson.dumps([_web("0001-01-01T00:00:00+14:00")])
    with pytest.raises(ValidationError, match="event_time_out_of_range"):
        event_batch_adapter.validate_json(body)


def test_validate_items_rejects_per_item_with_an_injected_clock() -> None:
    items = [
        _web("2026-11-02T11:00:00Z"),
        _web("2099-01-01T00:00:00Z"),
        _web("2026-11-02T11:30:00Z"),
    ]
    events, rejected = validate_items(items, window=EventTimeWindow(now=NOW))
    assert len(events) == 2
    assert [(r.index, r.errors[0].loc, r.errors[0].type) for r in rejected] == [
        (1, "ts", "event_time_in_future")
    ]
    later = EventTimeWindow(now=datetime(2099, 1, 1, tzinfo=UTC))
    assert validate_items(items, window=later)[1] == []
