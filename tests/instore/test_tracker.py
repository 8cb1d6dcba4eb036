"""The ops tracker on hand-built event sequences: edge cases first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storelens.instore.alerts import AlertRule
from storelens.instore.facts import OpsFacts
from storelens.instore.processor import FileEvent
from storelens.instore.report import ops_report, percentile
from storelens.instore.tracker import OpsTracker, TrackerConfig

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
KINDS = {
    "s": {
        "entrance": "entrance",
        "queue": "queue",
        "counter": "counter",
        "pickup": "pickup",
        "bar": "staff_only",
        "seating": "seating",
    }
}


def ev(type_: str, sec: float, **payload: Any) -> FileEvent:
    return FileEvent(type_, T0 + timedelta(seconds=sec), "s", None, payload)


def paid(sec: float, order: str, drinks: int = 1, food: int = 0, **kw: Any) -> FileEvent:
    lines = [{"product_id": "latte", "qty": drinks, "unit_price": 3.5, "category": "coffee"}]
    if food:
        lines.append({"product_id": "bun", "qty": food, "unit_price": 2.0, "category": "bakery"})
    return ev("pos.order_paid", sec, order_id=order, lines=lines, **kw)


def walk(track: str, path: list[tuple[str, float, float]]) -> list[FileEvent]:
    out = []
    for zone, enter, exit_ in path:
        out.append(ev("vision.zone_enter", enter, zone_id=zone, track_id=track))
        out.append(ev("vision.zone_exit", exit_, zone_id=zone, track_id=track))
    return sorted(out, key=lambda e: (e.ts, e.type == "vision.zone_enter"))


def run(events: list[FileEvent], **cfg: Any) -> tuple[OpsFacts, OpsTracker]:
    tracker = OpsTracker(TrackerConfig(zone_kinds=KINDS, **cfg))
    facts = OpsFacts()
    facts.add(tracker.apply_all(sorted(events, key=lambda e: e.ts)))
    return facts, tracker


def test_order_lifecycle_and_drinks() -> None:
    facts, _ = run(
        [
            ev("staff.clock_in", 0, staff_id="ana"),
            paid(10, "o1", drinks=2, food=1, register_id="reg-1"),
            ev("order.started", 20, order_id="o1", staff_id="ana"),
            ev("order.ready", 140, order_id="o1", staff_id="ana"),
            ev("order.handed_off", 150.5, order_id="o1", staff_id="ana"),
            ev("staff.clock_out", 3600, staff_id="ana"),
        ]
    )
    (order,) = facts.orders
    assert order.fulfillment_s == 140.5
    assert (order.drinks, order.items, order.barista) == (2, 3, "ana")
    report = ops_report(facts, store_id="s")
    (ana,) = report["baristas"]
    assert ana["drinks_per_hour"] == 2.0  # 2 drinks in a 1-hour shift
    assert ana["utilisation"] == round(120 / 3600, 4)


def test_missing_events_are_incomplete_not_zero() -> None:
    tracker = OpsTracker(TrackerConfig(zone_kinds=KINDS, order_timeout_s=600))
    facts = OpsFacts()
    facts.add(
        tracker.apply_all(
            [
                paid(0, "never-handed"),
                ev("order.handed_off", 30, order_id="never-paid", staff_id="ana"),
                paid(40, "ok"),
                ev("order.handed_off", 100, order_id="ok", staff_id="ana"),
                ev("sensor.espresso_shot", 1200, machine_id="m"),  # time passes: the sweep runs
            ]
        )
    )
    report = ops_report(facts, store_id="s")["fulfillment"]
    assert (report["complete"], report["incomplete"]) == (1, 2)
    assert report["p50_s"] == 60.0
    missing = {o["order_id"]: o["missing"] for o in report["incomplete_orders"]}
    assert missing == {"never-paid": ["paid"], "never-handed": ["handed_off"]}


def test_orders_of_a_day_without_any_hand_off_are_untracked_not_incomplete() -> None:
    """A till history imported without order screens (the demo's 26 weeks) read as
    29,191 incomplete orders (a new user's review). A day with no hand-off at all did
    not track fulfillment; a day with hand-offs keeps its unfinished orders incomplete."""
    day = 24 * 3600
    tracker = OpsTracker(TrackerConfig(zone_kinds=KINDS, order_timeout_s=600))
    facts = OpsFacts()
    facts.add(
        tracker.apply_all(
            [
                paid(0, "history-1"),  # day 1: tills only
                paid(60, "history-2"),
                paid(day, "lost"),  # day 2: screens in use, one order never handed off
                paid(day + 40, "ok"),
                ev("order.handed_off", day + 100, order_id="ok", staff_id="ana"),
                ev("sensor.espresso_shot", day + 1200, machine_id="m"),  # the sweep runs
            ]
        )
    )
    report = ops_report(facts, store_id="s")["fulfillment"]
    assert (report["orders"], report["complete"]) == (4, 1)
    assert (report["incomplete"], report["untracked"]) == (1, 2)
    assert [o["order_id"] for o in report["incomplete_orders"]] == ["lost"]
    # An hour of the tracked day holding only the lost order: still tracked, since the
    # day is (a second review), so the hours add up to the day.
    hour = ops_report(
        facts, store_id="s", since=T0 + timedelta(seconds=day - 60),
        until=T0 + timedelta(seconds=day + 30),
    )["fulfillment"]  # fmt: skip
    assert (hour["orders"], hour["incomplete"], hour["untracked"]) == (1, 1, 0)


def test_an_order_handed_off_after_midnight_marks_the_day_it_was_paid() -> None:
    tracker = OpsTracker(TrackerConfig(zone_kinds=KINDS, order_timeout_s=600))
    facts = OpsFacts()
    late = 17 * 3600 - 120  # T0 is 07:00 UTC: 23:58, handed off at 00:03
    facts.add(
        tracker.apply_all(
            [
                paid(late - 60, "walked-out"),
                paid(late, "late"),
                ev("order.handed_off", late + 300, order_id="late", staff_id="ana"),
                ev("sensor.espresso_shot", late + 1200, machine_id="m"),
            ]
        )
    )
    report = ops_report(facts, store_id="s")["fulfillment"]
    assert (report["complete"], report["incomplete"], report["untracked"]) == (1, 1, 0)


def test_queue_wait_excludes_staff_and_dwell_per_visit() -> None:
    customer = walk(
        "c1",
        [
            ("entrance", 0, 4),
            ("queue", 4, 64),
            ("counter", 64, 120),
            ("pickup", 120, 300),
            ("entrance", 300, 305),
        ],
    )
    staff = walk(
        "st",
        [
            ("bar", 0, 50),
            ("queue", 50, 70),
            ("seating", 70, 90),
            ("queue", 90, 95),
            ("counter", 95, 97),
            ("bar", 97, 400),
        ],
    )
    facts, _ = run(customer + staff)
    assert [(q.track_id, q.wait_s) for q in facts.queue_waits] == [("c1", 60.0)]
    assert [(v.track_id, v.dwell_s, v.closed_by) for v in facts.visits] == [("c1", 305.0, "left")]
    report = ops_report(facts, store_id="s", queue_zones=["queue"], bucket_minutes=1)
    assert report["queue"]["wait_p50_s"] == 60.0
    assert max(b["max"] for b in report["queue"]["length"]) == 1  # the barista never counts
    zone = {z["zone_id"]: z for z in report["dwell"]["by_zone"]}
    assert zone["pickup"]["p50_s"] == 180.0 and "bar" not in zone


def test_walk_by_times_out_and_is_no_visit() -> None:
    """A look through the door ends at the visit timeout as a walk-by: counted on its own,
    never in the store's visits or dwell (it was a 5 s "visit" that pulled dwell down)."""
    facts, tracker = run(
        [
            *walk("w", [("entrance", 0, 5)]),
            *walk("c", [("entrance", 10, 12), ("counter", 12, 200), ("entrance", 200, 203)]),
            ev("sensor.espresso_shot", 2000, machine_id="m"),
        ],
        visit_timeout_s=600,
    )
    assert [(v.track_id, v.closed_by, v.dwell_s) for v in facts.visits] == [
        ("c", "left", 193.0),
        ("w", "walk_by", 5.0),
    ]
    assert tracker.tracks == {}
    dwell = ops_report(facts, store_id="s")["dwell"]
    assert (dwell["count"], dwell["walk_bys"], dwell["p50_s"]) == (1, 1, 193.0)
    assert {z["zone_id"] for z in dwell["by_zone"]} == {"entrance", "counter"}


def test_a_track_lost_after_coming_in_is_a_visit_not_a_walk_by() -> None:
    lost = walk("c", [("entrance", 0, 2), ("counter", 2, 100), ("seating", 100, 150)])
    facts, _ = run([*lost, ev("sensor.espresso_shot", 2000, machine_id="m")], visit_timeout_s=600)
    assert [(v.track_id, v.closed_by) for v in facts.visits] == [("c", "timeout")]
    assert ops_report(facts, store_id="s")["dwell"]["walk_bys"] == 0


def test_state_round_trip_gives_identical_facts() -> None:
    path = [
        ("entrance", 0, 3),
        ("queue", 3, 90),
        ("counter", 90, 150),
        ("pickup", 150, 400),
        ("entrance", 400, 404),
    ]
    order = [
        ev("staff.clock_in", 0, staff_id="ana"),
        paid(150, "o1"),
        ev("order.started", 160, order_id="o1", staff_id="ana"),
        ev("order.ready", 380, order_id="o1", staff_id="ana"),
        ev("order.handed_off", 390, order_id="o1", staff_id="ana"),
        ev("staff.clock_out", 4000, staff_id="ana"),
    ]
    events = sorted([*walk("a", path), *order], key=lambda e: e.ts)
    whole, _ = run(events)
    for cut in range(1, len(events)):
        config = TrackerConfig(zone_kinds=KINDS)
        first = OpsTracker(config)
        parts = OpsFacts()
        parts.add(first.apply_all(events[:cut]))
        resumed = OpsTracker.from_state(config, first.state())
        parts.add(resumed.apply_all(events[cut:]))
        assert parts.as_dict() == whole.as_dict(), f"diverged when cut at {cut}"


def test_alerts_fire_once_per_episode() -> None:
    rule = AlertRule(
        "long-queue", "queue_length", threshold=2, raise_after_min=2, clear_after_min=3
    )
    people = []
    for i in range(4):  # four people queue from minute 1 to minute 10
        people += walk(f"p{i}", [("entrance", 50, 60 + i), ("queue", 60 + i, 600)])
    people.append(ev("sensor.espresso_shot", 1000, machine_id="m"))
    _, tracker = run(people, alert_rules=(rule,))
    assert [(a.rule_id, a.state) for a in tracker.alerts] == [
        ("long-queue", "raised"),
        ("long-queue", "cleared"),
    ]
    raised, cleared = tracker.alerts
    assert raised.value == 4
    assert raised.at == T0 + timedelta(minutes=3)  # held at minutes 2 and 3
    assert cleared.at == T0 + timedelta(minutes=13)  # gone at minutes 11, 12 and 13


def test_alert_hovering_at_threshold_does_not_flap() -> None:
    """4 people queue (minutes 1-3), then the queue hovers at the limit: 3 and 2 in
    alternate minutes (4-13), then it empties. One alert: raised once the condition
    held 2 minutes, kept through the hovering, cleared 3 minutes after it last held."""
    rule = AlertRule(
        "long-queue", "queue_length", threshold=2, raise_after_min=2, clear_after_min=3
    )
    people = walk("a", [("queue", 30, 13 * 60 + 30)]) + walk("b", [("queue", 30, 13 * 60 + 30)])
    people += walk("c", [("queue", 30, 3 * 60 + 30)]) + walk("d", [("queue", 30, 3 * 60 + 30)])
    for minute in range(4, 14, 2):  # a third person at minutes 4, 6, 8, 10 and 12
        people += walk(f"x{minute}", [("queue", 60 * minute - 30, 60 * minute + 30)])
    people.append(ev("sensor.espresso_shot", 20 * 60, machine_id="m"))
    _, tracker = run(people, alert_rules=(rule,))
    assert [(a.state, a.at, a.value) for a in tracker.alerts] == [
        ("raised", T0 + timedelta(minutes=2), 4.0),  # 4 queue at minutes 1 and 2
        ("cleared", T0 + timedelta(minutes=15), 0.0),  # at the limit 13, empty 14 and 15
    ]


def test_percentile_matches_linear_interpolation() -> None:
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9) == 91.0
    assert percentile([], 0.5) is None


def test_a_barista_through_the_front_door_becomes_staff_behind_the_bar() -> None:
    """Ana walks in through the door, crosses the queue and works the bar for an hour: a
    minute behind the bar makes her staff (she was a customer all shift: one more in
    the store, a one-hour visit, one more in the queue). Cid's track strays over the
    bar's edge for 5 s at the pickup: he stays a customer and his visit counts."""
    ana = walk("ana", [("entrance", 0, 3), ("queue", 3, 8), ("bar", 8, 3600)])
    stray = [("entrance", 10, 12), ("pickup", 12, 100), ("bar", 100, 105)]
    cid = walk("cid", [*stray, ("pickup", 105, 200), ("entrance", 200, 202)])
    clock = [ev("sensor.espresso_shot", 60.0 * m, machine_id="m") for m in range(1, 4)]
    tracker = OpsTracker(TrackerConfig(zone_kinds=KINDS))
    facts = OpsFacts()
    early = sorted(ana + cid + clock, key=lambda e: e.ts)
    facts.add(tracker.apply_all([e for e in early if e.ts <= T0 + timedelta(seconds=180)]))
    assert tracker.tracks[("s", "ana")].is_staff  # behind the bar since 8 s: staff by now
    assert not tracker.tracks[("s", "cid")].is_staff
    live = tracker.live("s")
    assert live is not None and live.queue_length == 0
    facts.add(tracker.apply_all([e for e in early if e.ts > T0 + timedelta(seconds=180)]))
    facts.add(tracker.apply_all([ev("sensor.espresso_shot", 9000, machine_id="m")]))
    assert [(v.track_id, v.closed_by) for v in facts.visits] == [("cid", "left")]
    report = ops_report(facts, store_id="s", queue_zones=["queue"])
    bar = {z["zone_id"]: z for z in report["dwell"]["by_zone"]}["bar"]
    assert report["dwell"]["count"] == 1 and (bar["count"], bar["max_s"]) == (1, 5.0)  # Cid's


def test_the_minute_behind_the_bar_counts_when_the_track_steps_out() -> None:
    """Between clock ticks, stepping out of the bar after 70 s decides it just the same."""
    ana = walk("ana", [("entrance", 0, 2), ("bar", 2, 72), ("pickup", 72, 80)])
    facts, tracker = run(ana)
    assert tracker.tracks[("s", "ana")].is_staff
    assert [z.is_staff for z in facts.zone_visits] == [False, True, True]


def test_a_long_stay_seen_only_at_the_entrance_is_a_visit_not_a_walk_by() -> None:
    """Where no zone covers the floor, twenty minutes in the store can show only the
    entrance on the way in and out: that is a visit, not a look through the door."""
    stay = [ev("vision.track", 60.0 * m, track_id="t", x=1.0, y=1.0) for m in range(1, 20)]
    came, went = walk("t", [("entrance", 0, 2)]), walk("t", [("entrance", 1200, 1203)])
    clock = ev("sensor.espresso_shot", 5000, machine_id="m")
    facts, _ = run([*came, *stay, *went, clock], visit_timeout_s=600)
    assert [(v.track_id, v.closed_by, v.dwell_s) for v in facts.visits] == [
        ("t", "timeout", 1203.0)
    ]
    assert ops_report(facts, store_id="s")["dwell"]["walk_bys"] == 0


def test_whole_days_widen_a_window_to_local_midnights() -> None:
    """report_from_db reads whole local days to decide which tracked fulfillment; on the
    day the clocks go back (Berlin, 2026-10-25) a day has 25 hours."""
    from zoneinfo import ZoneInfo

    from storelens.instore.processor import _whole_days

    berlin = ZoneInfo("Europe/Berlin")
    ten = datetime(2026, 10, 25, 10, 0, tzinfo=berlin)
    assert _whole_days(ten, berlin) == datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
    assert _whole_days(ten, berlin, end=True) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)
    midnight = datetime(2026, 10, 26, 0, 0, tzinfo=berlin)
    assert _whole_days(midnight, berlin, end=True) == midnight  # already whole
    assert _whole_days(None, berlin) is None
