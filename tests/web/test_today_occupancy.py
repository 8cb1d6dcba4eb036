"""The Today page's "in the store": customers past the door, or in the doorway now.

Someone who steps into the entrance zone and straight back out (a look through the
door, a passer-by clipping the zone) never came in; their track stays open for the
visit timeout (30 min) in case they do, and was counted as a customer in the store
all that time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storelens import stores
from storelens.core.events import event_adapter
from storelens.instore.processor import OpsProcessor
from storelens.sim import default_layout_path
from storelens.storage.eventlog import EventLog
from storelens.web.today import today_view

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _raw(seconds: float, type_: str, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": (T0 + timedelta(seconds=seconds)).isoformat(),
        "source": "test",
        "store_id": "cafe-01",
        "payload": payload,
    }


def _zone(seconds: float, enter: bool, zone: str, track: str) -> dict[str, Any]:
    kind = "vision.zone_enter" if enter else "vision.zone_exit"
    return _raw(seconds, kind, zone_id=zone, track_id=track)


def test_a_look_through_the_door_is_not_a_customer_in_the_store(engine: Engine) -> None:
    raws = [
        _zone(0, True, "entrance", "came-in"),
        _zone(4, False, "entrance", "came-in"),
        _zone(4, True, "seating", "came-in"),  # sits down
        _zone(10, True, "entrance", "looked-in"),
        _zone(14, False, "entrance", "looked-in"),  # turned round at the door
        _zone(100, True, "entrance", "arriving"),  # in the doorway now
        _raw(120, "sensor.espresso_shot", machine_id="m"),
    ]
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    log = EventLog(engine)
    log.append([event_adapter.validate_python(r) for r in raws])
    OpsProcessor().run(log, batch=100)
    view = today_view(engine, "cafe-01")
    assert view.as_of == T0 + timedelta(seconds=120)
    assert view.occupancy == 2  # came-in and arriving; it was 3 with looked-in
