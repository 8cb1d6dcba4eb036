"""A shift with no clock-out ends once it is older than ``shift_max_s`` by its store's clock.

A till that missed one clock-out (a power cut, a forgotten tap) used to leave the
barista on shift for good: idle-barista alerts kept firing for someone long gone,
on-shift hours grew without end (drinks per barista-hour sank with them), the Today
page counted them on shift and a quiet store holding the shift was never forgotten.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storelens import stores
from storelens.core.events import event_adapter
from storelens.instore.alerts import AlertRule
from storelens.instore.facts import OpsFacts, ShiftFact
from storelens.instore.processor import FileEvent, OpsProcessor, batch_facts, report_from_db
from storelens.instore.report import ops_report
from storelens.instore.store import list_alerts
from storelens.instore.tracker import OpsTracker, TrackerConfig
from storelens.sim import default_layout_path
from storelens.storage.eventlog import EventLog
from storelens.web.today import today_view

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
HOUR = 3600.0
ZONES = {"entrance": "entrance", "queue": "queue", "counter": "counter", "bar": "staff_only"}
KINDS = {"s": ZONES, "b": ZONES}
RULES = (AlertRule("idle", "idle_barista", threshold=120, queue_min=2, raise_after_min=1),)
LINE = [{"product_id": "latte", "qty": 2, "unit_price": 3.0, "category": "coffee"}]


def ev(sec: float, type_: str, store: str = "s", **payload: Any) -> FileEvent:
    return FileEvent(type_, T0 + timedelta(seconds=sec), store, None, payload)


def forgotten_clock_out() -> list[FileEvent]:
    """Ana clocks in, makes one order (last touched at 620 s) and never clocks out; 17 h
    later by the store's clock two people queue and nobody is behind the bar."""
    return [
        ev(0, "staff.clock_in", staff_id="ana"),
        ev(100, "pos.order_paid", order_id="o1", lines=LINE),
        ev(120, "order.started", order_id="o1", staff_id="ana"),
        ev(600, "order.ready", order_id="o1", staff_id="ana"),
        ev(620, "order.handed_off", order_id="o1", staff_id="ana"),
        ev(17 * HOUR, "vision.zone_enter", zone_id="queue", track_id="q0"),
        ev(17 * HOUR + 1, "vision.zone_enter", zone_id="queue", track_id="q1"),
        *[ev(17 * HOUR + 60 * k, "sensor.espresso_shot", machine_id="m") for k in range(1, 6)],
    ]


def config(**kw: Any) -> TrackerConfig:
    return TrackerConfig(zone_kinds=KINDS, alert_rules=RULES, **kw)


def feed(tracker: OpsTracker, events: list[FileEvent]) -> OpsFacts:
    facts = OpsFacts()
    facts.add(tracker.apply_all(events))
    return facts


def test_idle_alert_no_longer_fires_for_a_barista_whose_shift_expired() -> None:
    tracker = OpsTracker(config())
    feed(tracker, forgotten_clock_out())
    assert [c for c in tracker.alerts if c.rule_id == "idle"] == []
    assert ("s", "ana") not in tracker.shifts and ("s", "ana") not in tracker.free_since


def test_the_idle_alert_still_fires_while_the_shift_is_within_the_bound() -> None:
    """The same store with the bound at 18 h: ana is still on shift, so she is idle."""
    tracker = OpsTracker(config(shift_max_s=18 * HOUR))
    feed(tracker, forgotten_clock_out())
    assert [(c.rule_id, c.state) for c in tracker.alerts] == [("idle", "raised")]


def test_an_expired_shift_counts_only_up_to_its_last_recorded_activity() -> None:
    tracker = OpsTracker(config())
    facts = feed(tracker, forgotten_clock_out())
    assert facts.shifts == [ShiftFact("s", "ana", T0, T0 + timedelta(seconds=620))]
    (ana,) = ops_report(facts, store_id="s")["baristas"]
    assert ana["on_shift_h"] == round(620 / HOUR, 4)  # not 17 h and counting
    assert ana["drinks_per_hour"] == round(2 / (620 / HOUR), 3)


def test_an_expired_shift_raises_a_missed_clock_out_until_the_barista_clocks_again() -> None:
    tracker = OpsTracker(config())
    events = forgotten_clock_out()
    facts = feed(tracker, events)
    (raised,) = [c for c in tracker.alerts if c.rule_id == "missed-clock-out"]
    # 16 h to the minute is not older than the bound; the minute after is.
    assert (raised.state, raised.at) == ("raised", T0 + timedelta(hours=16, minutes=1))
    assert "ana" in raised.message and raised.value == round(620 / HOUR, 3)
    # The clock-out that turns up at 18 h closes nothing twice and clears the alert.
    tracker.alerts.clear()
    facts.add(tracker.apply_all([ev(18 * HOUR, "staff.clock_out", staff_id="ana")]))
    assert len(facts.shifts) == 1
    assert [(c.rule_id, c.state, c.at) for c in tracker.alerts] == [
        ("missed-clock-out", "cleared", T0 + timedelta(hours=18))
    ]


def test_only_the_stores_own_clock_expires_its_shifts() -> None:
    """Another store 17 h ahead moves nothing here: s's own clock is still at 620 s."""
    tracker = OpsTracker(config())
    events = forgotten_clock_out()[:5]
    events.append(ev(17 * HOUR, "sensor.espresso_shot", store="b", machine_id="m"))
    facts = feed(tracker, events)
    assert ("s", "ana") in tracker.shifts and facts.shifts == []


def test_a_restart_before_or_after_the_expiry_changes_nothing() -> None:
    events = forgotten_clock_out()
    whole = OpsTracker(config())
    whole_facts = feed(whole, events)
    for cut in range(1, len(events)):
        first = OpsTracker(config())
        facts = feed(first, events[:cut])
        resumed = OpsTracker.from_state(config(), first.state())
        facts.add(resumed.apply_all(events[cut:]))
        assert facts.as_dict() == whole_facts.as_dict()
        assert first.alerts + resumed.alerts == whole.alerts
        assert resumed.state() == whole.state()


def test_a_shift_that_clocks_out_in_time_is_not_touched() -> None:
    tracker = OpsTracker(config())
    facts = feed(
        tracker,
        [
            ev(0, "staff.clock_in", staff_id="ana"),
            ev(8 * HOUR, "staff.clock_out", staff_id="ana"),
            ev(17 * HOUR, "sensor.espresso_shot", machine_id="m"),
        ],
    )
    assert facts.shifts == [ShiftFact("s", "ana", T0, T0 + timedelta(hours=8))]
    assert tracker.alerts == []


# -- what the Today page and the stored report show -------------------------------------------

# 06:00 in Berlin (cafe-01's zone): 17 h on it is still the same day there.
DAY0 = datetime(2026, 11, 2, 5, 0, tzinfo=UTC)


def _raw(minutes: float, type_: str, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": (DAY0 + timedelta(minutes=minutes)).isoformat(),
        "source": "test",
        "store_id": "cafe-01",
        "payload": payload,
    }


def test_the_today_page_and_report_agree_on_an_expired_shift(engine: Engine) -> None:
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    raws = [
        _raw(0, "staff.clock_in", staff_id="ana", role="barista"),
        _raw(1, "pos.order_paid", order_id="o1", lines=LINE),
        _raw(2, "order.started", order_id="o1", staff_id="ana"),
        _raw(8, "order.ready", order_id="o1", staff_id="ana"),
        _raw(10, "order.handed_off", order_id="o1", staff_id="ana"),
        _raw(17 * 60, "sensor.espresso_shot", machine_id="m"),
    ]
    log = EventLog(engine)
    log.append([event_adapter.validate_python(r) for r in raws])
    pushed: list[dict[str, Any]] = []
    OpsProcessor(on_alerts=pushed.extend).run(log, batch=2)
    view = today_view(engine, "cafe-01")
    assert view.as_of == DAY0 + timedelta(hours=17)
    assert view.staff_on_shift == 0
    assert view.barista_hours == round(10 / 60, 3)  # clock-in to her last hand-off
    assert view.drinks == 2 and view.drinks_per_barista_hour == 12.0
    assert [a.rule_id for a in view.open_alerts] == ["missed-clock-out"]
    rows = list_alerts(engine, "cafe-01")
    assert [(r["rule_id"], r["state"]) for r in rows] == [("missed-clock-out", "raised")]
    assert [m["rule_id"] for m in pushed] == ["missed-clock-out"]


def test_a_batch_report_counts_a_shift_still_open_at_the_end_of_the_file() -> None:
    """A file cut at 11:00 while Ana is still on shift: her four hours count up to her
    store's last event (as the live view counts them), not zero; the other store's later
    clock does not stretch them."""
    events = [
        ev(0, "staff.clock_in", staff_id="ana"),
        ev(100, "pos.order_paid", order_id="o1", lines=LINE),
        ev(120, "order.started", order_id="o1", staff_id="ana"),
        ev(600, "order.ready", order_id="o1", staff_id="ana"),
        ev(620, "order.handed_off", order_id="o1", staff_id="ana"),
        ev(4 * HOUR, "sensor.espresso_shot", machine_id="m"),
        ev(5 * HOUR, "staff.clock_in", store="b", staff_id="ben"),
        ev(9 * HOUR, "sensor.espresso_shot", store="b", machine_id="m"),
    ]
    facts, _ = batch_facts(events, [])
    assert sorted(facts.shifts, key=lambda f: f.store_id) == [
        ShiftFact("b", "ben", T0 + timedelta(hours=5), T0 + timedelta(hours=9)),
        ShiftFact("s", "ana", T0, T0 + timedelta(hours=4)),
    ]
    own = OpsFacts(orders=facts.orders, shifts=[f for f in facts.shifts if f.store_id == "s"])
    (ana,) = ops_report(own, store_id="s")["baristas"]
    assert (ana["on_shift_h"], ana["drinks_per_hour"]) == (4.0, 0.5)


def test_an_open_shift_is_only_in_the_periods_it_overlaps(engine: Engine) -> None:
    """Ana is on shift today: today's report counts her hours so far; last week's report
    and a period ending before she clocked in have no row for her at all."""
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    raws = [
        _raw(0, "staff.clock_in", staff_id="ana", role="barista"),
        _raw(120, "sensor.espresso_shot", machine_id="m"),  # minutes
    ]
    log = EventLog(engine)
    log.append([event_adapter.validate_python(r) for r in raws])
    OpsProcessor().run(log, batch=10)

    def hours(since: datetime, until: datetime) -> list[tuple[str, float]]:
        report = report_from_db(engine, "cafe-01", since=since, until=until)
        return [(b["staff_id"], b["on_shift_h"]) for b in report["baristas"]]

    assert hours(DAY0, DAY0 + timedelta(days=1)) == [("ana", 2.0)]
    assert hours(DAY0 - timedelta(days=7), DAY0) == []
    assert hours(DAY0 - timedelta(hours=1), DAY0) == []
