"""The tracker's snapshot is a stored format, and its names are a public surface.

The processor saves ``OpsTracker.state()`` as JSON with the log cursor and resumes from
it after a restart, so its keys, their order and every field's position are what sits
on disk: this pins them byte for byte for a sequence that fills every part (two stores,
a held far-future event, an open order, people queueing, a shift, a shift expired with
no clock-out, a handed-off order, a firing alert), and an older version still loads.
The tracker's code is split over several modules (tracker, shopfloor, inflight,
eventtime); callers import from ``tracker`` as they always have.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from storelens.instore import eventtime, inflight, shopfloor, tracker
from storelens.instore.alerts import AlertRule
from storelens.instore.processor import FileEvent
from storelens.instore.tracker import OpsTracker, TrackerConfig

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
ZONES = {"entrance": "entrance", "queue": "queue", "counter": "counter", "bar": "staff_only"}
RULES = (AlertRule("queue", "queue_length", threshold=1, raise_after_min=1, clear_after_min=3),)
LINE = [{"product_id": "latte", "qty": 2, "unit_price": 3.0, "category": "coffee"}]

# v2, written by the tracker before its split into modules (commit 97a4d32), for the
# sequence without bea's clock-in and with shifts unbounded (no expiry, no last activity).
SNAPSHOT_V2 = (
    '{"v": 2, "clocks": {"a": ["2026-11-02T07:02:30+00:00", "2026-11-02T07:03:00+00:00", '
    'false, null, "2026-11-02T07:02:30+00:00"], "b": ["2026-11-02T07:00:30+00:00", '
    '"2026-11-02T07:01:00+00:00", true, ["sensor.espresso_shot", '
    '"2026-11-12T17:00:00+00:00", "b", null, {"machine_id": "m"}], '
    '"2026-11-02T07:03:20+00:00"]}, "heard": "2026-11-02T07:03:20+00:00", "quiet_check": '
    '"2026-11-02T07:04:00+00:00", "orders": [["a", "o2", "app", null, '
    '"2026-11-02T07:01:35+00:00", null, null, null, 2, 2, "2026-11-02T07:01:35+00:00"]], '
    '"tracks": [["a", "t1", "2026-11-02T07:00:05+00:00", "2026-11-02T07:00:05+00:00", '
    'false, {"queue": "2026-11-02T07:00:05+00:00"}, 1, true, '
    '"2026-11-02T07:00:05+00:00"], ["a", "t2", "2026-11-02T07:00:06+00:00", '
    '"2026-11-02T07:00:06+00:00", false, {"queue": "2026-11-02T07:00:06+00:00"}, 1, '
    'true, "2026-11-02T07:00:06+00:00"], ["b", "s1", "2026-11-02T07:00:30+00:00", '
    '"2026-11-02T07:00:30+00:00", true, {"bar": "2026-11-02T07:00:30+00:00"}, 1, true, '
    'null]], "shifts": [["a", "ana", "2026-11-02T07:00:00+00:00"]], "free_since": [["a", '
    '"ana", "2026-11-02T07:01:20+00:00"]], "recent": {"a": '
    '[["2026-11-02T07:01:30+00:00", 80.0]]}, "firing": [["a", "queue", true, 0]]}'
)


# v3: each shift keeps its last activity (ana's shift expired at 07:02 with it, bea's is
# open), and "missed" the staff whose shift expired without a clock-out.
SNAPSHOT = (
    '{"v": 3, "clocks": {"a": ["2026-11-02T07:02:30+00:00", "2026-11-02T07:03:00+00:00", '
    'false, null, "2026-11-02T07:02:30+00:00"], "b": ["2026-11-02T07:00:30+00:00", '
    '"2026-11-02T07:01:00+00:00", true, ["sensor.espresso_shot", '
    '"2026-11-12T17:00:00+00:00", "b", null, {"machine_id": "m"}], '
    '"2026-11-02T07:03:20+00:00"]}, "heard": "2026-11-02T07:03:20+00:00", "quiet_check": '
    '"2026-11-02T07:04:00+00:00", "orders": [["a", "o2", "app", null, '
    '"2026-11-02T07:01:35+00:00", null, null, null, 2, 2, "2026-11-02T07:01:35+00:00"]], '
    '"tracks": [["a", "t1", "2026-11-02T07:00:05+00:00", "2026-11-02T07:00:05+00:00", '
    'false, {"queue": "2026-11-02T07:00:05+00:00"}, 1, true, '
    '"2026-11-02T07:00:05+00:00"], ["a", "t2", "2026-11-02T07:00:06+00:00", '
    '"2026-11-02T07:00:06+00:00", false, {"queue": "2026-11-02T07:00:06+00:00"}, 1, '
    'true, "2026-11-02T07:00:06+00:00"], ["b", "s1", "2026-11-02T07:00:30+00:00", '
    '"2026-11-02T07:00:30+00:00", true, {"bar": "2026-11-02T07:00:30+00:00"}, 1, true, '
    'null]], "shifts": [["a", "bea", "2026-11-02T07:02:20+00:00", '
    '"2026-11-02T07:02:20+00:00"]], "free_since": [["a", "bea", '
    '"2026-11-02T07:02:20+00:00"]], "recent": {"a": '
    '[["2026-11-02T07:01:30+00:00", 80.0]]}, "firing": [["a", "queue", true, 0]], '
    '"missed": [["a", "ana", "2026-11-02T07:02:00+00:00"]]}'
)
CONFIG = TrackerConfig(
    zone_kinds={"a": ZONES, "b": ZONES}, alert_rules=RULES, shift_max_s=60
)  # a minute-long bound: ana's shift expires within the sequence


def ev(store: str, sec: float, type_: str, **payload: Any) -> FileEvent:
    """An event received by the server when it happened (at most 200 s in)."""
    at = T0 + timedelta(seconds=sec)
    return FileEvent(type_, at, store, None, payload, T0 + timedelta(seconds=min(sec, 200)))


def _tracker() -> OpsTracker:
    t = OpsTracker(CONFIG)
    t.apply_all(
        [
            ev("a", 0, "staff.clock_in", staff_id="ana"),
            ev("a", 5, "vision.zone_enter", zone_id="queue", track_id="t1"),
            ev("a", 6, "vision.zone_enter", zone_id="queue", track_id="t2"),
            ev("a", 10, "pos.order_paid", order_id="o1", lines=LINE, register_id="r1"),
            ev("a", 20, "order.started", order_id="o1", staff_id="ana"),
            ev("a", 80, "order.ready", order_id="o1", staff_id="ana"),
            ev("a", 90, "order.handed_off", order_id="o1", staff_id="ana"),
            ev("a", 95, "pos.order_paid", order_id="o2", lines=LINE, channel="app"),
            ev("b", 30, "vision.zone_enter", zone_id="bar", track_id="s1"),
            ev("a", 140, "staff.clock_in", staff_id="bea"),
            ev("a", 150, "sensor.espresso_shot", machine_id="m"),
            ev("b", 9e5, "sensor.espresso_shot", machine_id="m"),  # far ahead: held
        ]
    )
    return t


def test_snapshot_is_byte_identical_to_the_stored_format() -> None:
    assert json.dumps(_tracker().state()) == SNAPSHOT


def test_a_snapshot_read_back_writes_the_same_bytes() -> None:
    resumed = OpsTracker.from_state(CONFIG, json.loads(SNAPSHOT))
    assert json.dumps(resumed.state()) == SNAPSHOT
    assert tracker.store_time(json.loads(SNAPSHOT), "a") == T0 + timedelta(seconds=150)


def test_a_v2_snapshot_loads_with_the_last_idle_moment_as_the_last_activity() -> None:
    """v2 kept no last activity: the moment ana last went idle (her order ready at
    07:01:20) stands in for it, and nobody has a missed clock-out yet."""
    config = TrackerConfig(zone_kinds={"a": ZONES, "b": ZONES}, alert_rules=RULES)
    resumed = OpsTracker.from_state(config, json.loads(SNAPSHOT_V2))
    expected = json.loads(SNAPSHOT_V2)
    expected["v"] = 3
    expected["shifts"] = [["a", "ana", "2026-11-02T07:00:00+00:00", "2026-11-02T07:01:20+00:00"]]
    expected["missed"] = []
    assert resumed.state() == expected
    assert tracker.store_time(json.loads(SNAPSHOT_V2), "a") == T0 + timedelta(seconds=150)


def test_the_tracker_still_exports_what_callers_import() -> None:
    assert set(tracker.__all__) == {
        "OpsEvent",
        "OpsTracker",
        "StoreClock",
        "TrackerConfig",
        "store_time",
    }
    assert tracker.StoreClock is eventtime.StoreClock
    assert tracker.store_time is inflight.store_time
    assert tracker.OpsEvent is shopfloor.OpsEvent
