"""Time-driven ops work grows with events, not with minutes of event time.

The reference is minute-by-minute stepping (the old behaviour, kept here as a
subclass): jumping to deadlines must give the same facts, alerts and state.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from storelens.instore.alerts import AlertRule
from storelens.instore.eventtime import MINUTE
from storelens.instore.facts import OpsFacts
from storelens.instore.processor import FileEvent
from storelens.instore.tracker import OpsTracker, TrackerConfig

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
FAR = datetime(2099, 1, 1, tzinfo=UTC)
KINDS = {"s": {"entrance": "entrance", "queue": "queue", "counter": "counter", "bar": "staff_only"}}
RULES = (
    AlertRule("slow", "fulfillment_p90", threshold=200, window_min=10, min_orders=2),
    AlertRule("queue", "queue_length", threshold=2, raise_after_min=2, clear_after_min=3),
    AlertRule("idle", "idle_barista", threshold=300, queue_min=1, raise_after_min=1),
)


class PerMinute(OpsTracker):
    """The old tracker: every minute of event time is evaluated."""

    def _after(self, store: str, at: datetime, ts: datetime) -> datetime:
        return at + MINUTE


def ev(sec: float, type_: str, **payload: Any) -> FileEvent:
    return FileEvent(type_, T0 + timedelta(seconds=sec), "s", None, payload)


def at(ts: datetime, type_: str = "sensor.espresso_shot", **payload: Any) -> FileEvent:
    return FileEvent(type_, ts, "s", None, payload or {"machine_id": "m"})


def scenario(seed: int) -> list[FileEvent]:
    """Orders, queues and a barista, in bursts separated by gaps of minutes to hours."""
    rng = random.Random(seed)
    out = [ev(0, "staff.clock_in", staff_id="ana")]
    t = 10.0
    line = [{"product_id": "latte", "qty": 1, "unit_price": 3.0, "category": "coffee"}]
    for i in range(40):
        t += rng.choice([5, 30, 90, 400, 2000, 9000, 20000])
        kind = rng.random()
        if kind < 0.5:
            out.append(ev(t, "pos.order_paid", order_id=f"o{i}", lines=line))
            if rng.random() < 0.8:
                out.append(ev(t + 20, "order.started", order_id=f"o{i}", staff_id="ana"))
                out.append(ev(t + rng.uniform(60, 400), "order.ready", order_id=f"o{i}"))
                done = t + rng.uniform(400, 700)
                out.append(ev(done, "order.handed_off", order_id=f"o{i}", staff_id="ana"))
        else:
            for k in range(rng.randint(1, 5)):
                track = f"t{i}-{k}"
                out.append(ev(t + k, "vision.zone_enter", zone_id="queue", track_id=track))
                if rng.random() < 0.7:
                    left = t + rng.uniform(60, 500)
                    out.append(ev(left, "vision.zone_exit", zone_id="queue", track_id=track))
    out.append(ev(t + 30000, "staff.clock_out", staff_id="ana"))
    return sorted(out, key=lambda e: e.ts)


def feed(tracker: OpsTracker, events: list[FileEvent]) -> OpsFacts:
    facts = OpsFacts()
    facts.add(tracker.apply_all(events))
    return facts


def config(**kw: Any) -> TrackerConfig:
    return TrackerConfig(zone_kinds=KINDS, alert_rules=RULES, **kw)


@pytest.mark.parametrize("seed", range(12))
def test_deadline_jumps_equal_minute_stepping(seed: int) -> None:
    events = scenario(seed)
    reference, jumping = PerMinute(config()), OpsTracker(config())
    ref_facts, facts = feed(reference, events), feed(jumping, events)
    assert facts.as_dict() == ref_facts.as_dict()
    assert jumping.alerts == reference.alerts
    assert jumping.state() == reference.state()
    assert jumping.ticks < reference.ticks  # the gaps were skipped, not stepped through


def test_one_far_future_event_costs_nothing_and_changes_nothing() -> None:
    events = scenario(3)
    plain = OpsTracker(config())
    plain_facts = feed(plain, events)
    poisoned = OpsTracker(config())
    middle = len(events) // 2
    stray = at(FAR, "pos.order_paid", order_id="x", lines=[])
    facts = feed(poisoned, [*events[:middle], stray, *events[middle:]])
    assert facts.as_dict() == plain_facts.as_dict()
    assert poisoned.alerts == plain.alerts
    assert poisoned.ticks == plain.ticks  # not a single extra minute
    assert poisoned.clock("s") == plain.clock("s")  # time was not moved to 2099
    assert [(e.type, e.ts) for e in poisoned.skipped] == [("pos.order_paid", FAR)]
    assert ("s", "x") not in poisoned.orders


def test_a_confirmed_jump_of_decades_is_bounded_work() -> None:
    """A store closed for 70 years reopens: two events agree, time moves, and the
    minutes in between cost nothing once the open orders and tracks have timed out."""
    tracker = OpsTracker(config())
    opening = scenario(5)[:20]
    last = (opening[-1].ts - T0).total_seconds()
    feed(tracker, [*opening, ev(last, "pos.order_paid", order_id="open", lines=[])])
    open_orders = {oid for _, oid in tracker.orders}
    before = tracker.ticks
    facts = feed(tracker, [at(FAR), at(FAR + timedelta(seconds=5))])
    assert tracker.clock("s") == FAR + timedelta(seconds=5)
    assert tracker.ticks - before <= 40  # a few deadlines, not 38 million minutes
    assert tracker.orders == {} and tracker.tracks == {}
    assert {o.order_id for o in facts.orders if o.handed_off_at is None} == open_orders


def test_jump_confirmed_after_a_restart_from_state() -> None:
    events = [ev(0, "pos.order_paid", order_id="o1", lines=[]), at(FAR), at(FAR + MINUTE)]
    whole = OpsTracker(config())
    whole_facts = feed(whole, events)
    first = OpsTracker(config())
    parts = feed(first, events[:2])  # the far event is held in the snapshot
    resumed = OpsTracker.from_state(config(), first.state())
    parts.add(resumed.apply_all(events[2:]))
    assert parts.as_dict() == whole_facts.as_dict()
    assert resumed.clock("s") == whole.clock("s") == FAR + MINUTE


def test_a_far_future_first_event_does_not_freeze_time() -> None:
    tracker = OpsTracker(config(visit_timeout_s=600))
    facts = feed(
        tracker,
        [
            at(FAR),
            ev(0, "vision.zone_enter", zone_id="entrance", track_id="w"),
            ev(5, "vision.zone_exit", zone_id="entrance", track_id="w"),
            ev(2000, "sensor.espresso_shot", machine_id="m"),
        ],
    )
    assert tracker.clock("s") == T0 + timedelta(seconds=2000)
    assert [(v.track_id, v.closed_by) for v in facts.visits] == [("w", "walk_by")]


def test_unconfirmed_far_event_at_the_end_of_a_batch_report_is_skipped() -> None:
    tracker = OpsTracker(config())
    feed(tracker, [ev(0, "pos.order_paid", order_id="o1", lines=[]), at(FAR)])
    closed = tracker.finish()
    assert [o.order_id for o in closed if hasattr(o, "order_id")] == ["o1"]
    assert [e.ts for e in tracker.skipped] == [FAR]
