"""What reads a store's clock reads that store's: stored alerts, the alerts pushed to
staff devices, the Today page's "now", day and barista-hours, and a dashboard's
default day, on SQLite and PostgreSQL, with another store's device five minutes ahead.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from storelens import stores
from storelens.core.errors import NotFound
from storelens.core.events import event_adapter
from storelens.instore.processor import NAME, OpsProcessor
from storelens.instore.store import list_alerts, load_state
from storelens.instore.tracker import store_time
from storelens.sim import default_layout_path
from storelens.storage.eventlog import EventLog
from storelens.web.period import latest_day
from storelens.web.today import today_view

# 23:54 in Berlin (cafe-01's zone): five minutes on, it is the next day there.
T0 = datetime(2026, 11, 2, 22, 54, tzinfo=UTC)


def _raw(store: str, minutes: float, type_: str, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": (T0 + timedelta(minutes=minutes)).isoformat(),
        "source": "test",
        "store_id": store,
        "payload": payload,
    }


def _cafe(minutes: float) -> list[dict[str, Any]]:
    """cafe-01: a barista on shift, four people queueing, ``minutes`` of its own time."""
    out = [_raw("cafe-01", 0, "staff.clock_in", staff_id="ana", role="barista")]
    out += [
        _raw("cafe-01", 0.1 * (i + 1), "vision.zone_enter", zone_id="queue", track_id=f"t{i}")
        for i in range(4)
    ]
    out.append(_raw("cafe-01", minutes, "sensor.espresso_shot", machine_id="m"))
    return out


def _process(engine: Engine, raws: list[dict[str, Any]]) -> list[dict[str, Any]]:
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    log = EventLog(engine)
    log.append([event_adapter.validate_python(r) for r in raws])
    pushed: list[dict[str, Any]] = []
    OpsProcessor(on_alerts=pushed.extend).run(log, batch=2)
    return pushed


def test_another_stores_device_ahead_changes_nothing_here(engine: Engine) -> None:
    cafe = _cafe(minutes=1.5)
    # A device at cafe-02 (no layout: an unknown store to the tracker) runs 5 min ahead.
    pushed = _process(
        engine, [*cafe[:5], _raw("cafe-02", 6.5, "sensor.espresso_shot", machine_id="m"), *cafe[5:]]
    )
    # The idle-barista rule (2 min idle, 4 queueing, held 2 min) must wait for cafe-01's
    # own time; on cafe-02's it fired at 22:57 while cafe-01 was at 22:55:30.
    assert list_alerts(engine, "cafe-01") == []
    assert [m for m in pushed if m["store_id"] == "cafe-01"] == []
    view = today_view(engine, "cafe-01")
    assert view.as_of == T0 + timedelta(minutes=1.5)
    assert view.day == date(2026, 11, 2)  # still the 2nd in Berlin for cafe-01
    assert view.queue_length == 4 and view.staff_on_shift == 1
    assert view.barista_hours == 0.025  # 1.5 min on shift by cafe-01's clock, not 6.5
    assert latest_day(engine, "cafe-01") == date(2026, 11, 2)
    with engine.connect() as conn:
        state = load_state(conn, NAME)
    assert store_time(state, "cafe-02") == T0 + timedelta(minutes=6.5)
    assert store_time(state, "cafe-03") is None


def test_the_stores_own_time_still_raises_its_alert(engine: Engine) -> None:
    """The same store alone, carried on to 22:58 by its own events: the alert comes."""
    pushed = _process(engine, _cafe(minutes=4))
    rows = list_alerts(engine, "cafe-01")
    assert [(r["rule_id"], r["state"]) for r in rows] == [("idle-barista", "raised")]
    assert [m["rule_id"] for m in pushed] == ["idle-barista"]
    assert today_view(engine, "cafe-01").as_of == T0 + timedelta(minutes=4)


def test_a_store_with_no_events_yet_shows_none_whatever_others_do(engine: Engine) -> None:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-03", "Quiet corner", "Europe/Berlin")
    _process(engine, [_raw("cafe-02", 0, "sensor.espresso_shot", machine_id="m")])
    view = today_view(engine, "cafe-03")
    assert view.as_of is None and view.day is None and view.orders == 0
    assert latest_day(engine, "cafe-03") == datetime.now(UTC).date()


def test_unknown_store_is_404_not_another_stores_figures(engine: Engine) -> None:
    _process(engine, _cafe(minutes=1))
    with pytest.raises(NotFound):
        today_view(engine, "no-such-store")
    with pytest.raises(NotFound):
        latest_day(engine, "no-such-store")
