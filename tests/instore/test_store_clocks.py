"""One event-time clock per store: another store's events never move a store's "now".

The tracker once kept a single watermark for the whole chain, so store B's events,
up to five minutes ahead (the accepted skew) or a mis-set device far ahead, ran store
A's minutes early: A's alerts fired before A's own time got there, A's open orders
and tracks were swept on B's time, and A's dashboard "now" was B's.
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
ZONES = {"entrance": "entrance", "queue": "queue", "counter": "counter", "bar": "staff_only"}
KINDS = {"a": ZONES, "b": ZONES, "q": ZONES}
RULES = (
    AlertRule("queue", "queue_length", threshold=1, raise_after_min=2, clear_after_min=3),
    AlertRule("idle", "idle_barista", threshold=120, queue_min=2, raise_after_min=1),
    AlertRule("slow", "fulfillment_p90", threshold=200, window_min=10, min_orders=1),
)
LINE = [{"product_id": "latte", "qty": 1, "unit_price": 3.0, "category": "coffee"}]


def ev(store: str, sec: float, type_: str, rx: float | None = None, **payload: Any) -> FileEvent:
    received = None if rx is None else T0 + timedelta(seconds=rx)
    return FileEvent(type_, T0 + timedelta(seconds=sec), store, None, payload, received)


def shot(store: str, sec: float, rx: float | None = None) -> FileEvent:
    return ev(store, sec, "sensor.espresso_shot", rx, machine_id="m")


def config(**kw: Any) -> TrackerConfig:
    return TrackerConfig(zone_kinds=KINDS, alert_rules=RULES, **kw)


def feed(tracker: OpsTracker, events: list[FileEvent]) -> OpsFacts:
    facts = OpsFacts()
    facts.add(tracker.apply_all(events))
    return facts


def of(store: str, facts: OpsFacts) -> dict[str, Any]:
    return {k: [r for r in rows if r["store_id"] == store] for k, rows in facts.as_dict().items()}


def busy_a() -> list[FileEvent]:
    """Store a: a barista on shift, three people queueing, 100 s of its own time."""
    out = [ev("a", 0, "staff.clock_in", staff_id="ana")]
    out += [
        ev("a", 10 + i, "vision.zone_enter", zone_id="queue", track_id=f"q{i}") for i in range(3)
    ]
    out += [ev("a", 20, "pos.order_paid", order_id="o1", lines=LINE)]
    out += [shot("a", s) for s in range(30, 101, 10)]
    return out


def test_another_stores_skewed_events_do_not_move_this_stores_alerts() -> None:
    alone = OpsTracker(config())
    alone_facts = feed(alone, busy_a())
    events = busy_a()
    # Store b's device runs five minutes ahead (what ingest accepts), logged amid a's.
    mixed_events = [*events[:6], shot("b", 300), *events[6:]]
    mixed = OpsTracker(config())
    mixed_facts = feed(mixed, mixed_events)
    assert alone.alerts == []  # a's own time reached 100 s: nothing has held two minutes
    assert [c for c in mixed.alerts if c.store_id == "a"] == alone.alerts
    assert of("a", mixed_facts) == of("a", alone_facts)
    assert mixed.clock("a") == alone.clock("a") == T0 + timedelta(seconds=100)
    assert mixed.clock("b") == T0 + timedelta(seconds=300)
    live_a = mixed.live("a")
    assert live_a is not None and live_a.at == T0 + timedelta(seconds=100)
    assert live_a.idle_s == {"ana": 100.0}  # idle on a's clock, not b's 300 s


def test_a_confirmed_far_jump_in_one_store_sweeps_only_that_store() -> None:
    """b's clock is set two days ahead and two events confirm it: b's open order is
    swept, a's open order and queue are still a's, on a's time."""
    far = 2 * 86400
    events = [*busy_a(), ev("b", 5, "pos.order_paid", order_id="ob", lines=LINE)]
    events += [shot("b", far), shot("b", far + 5), shot("a", 110)]
    tracker = OpsTracker(config())
    facts = feed(tracker, sorted(events, key=lambda e: e.store_id or ""))
    assert ("a", "o1") in tracker.orders and ("b", "ob") not in tracker.orders
    assert [o.order_id for o in facts.orders] == ["ob"]  # closed incomplete, on b's time
    assert tracker.clock("a") == T0 + timedelta(seconds=110)
    assert tracker.clock("b") == T0 + timedelta(seconds=far + 5)
    assert [c for c in tracker.alerts if c.store_id == "a"] == []


def test_unconfirmed_far_event_is_held_for_its_store_only() -> None:
    stray = ev("b", 30 * 86400, "pos.order_paid", order_id="x", lines=LINE)
    events = [shot("b", 0), *busy_a()[:5], stray, *busy_a()[5:], shot("b", 60)]
    tracker = OpsTracker(config())
    feed(tracker, events)
    assert tracker.clock("a") == T0 + timedelta(seconds=100)
    assert tracker.clock("b") == T0 + timedelta(seconds=60)
    assert [(e.store_id, e.payload["order_id"]) for e in tracker.skipped] == [("b", "x")]
    assert ("b", "x") not in tracker.orders


def test_unknown_store_gets_its_own_clock_and_moves_nobody_else() -> None:
    """A store with no layout and no rules (a typo'd id, a store not set up yet) is
    tracked like any other, on its own clock."""
    events = busy_a()
    mixed = [*events[:4], ev("nowhere", 240, "pos.order_paid", order_id="n1", lines=LINE)]
    mixed += events[4:]
    alone, tracker = OpsTracker(config()), OpsTracker(config())
    alone_facts, facts = feed(alone, events), feed(tracker, mixed)
    assert of("a", facts) == of("a", alone_facts)
    assert tracker.alerts == alone.alerts == []
    assert tracker.clock("nowhere") == T0 + timedelta(seconds=240)
    assert tracker.clock("a") == T0 + timedelta(seconds=100)
    assert tracker.clock("never-seen") is None and tracker.live("never-seen") is None


def two_stores(seed: int) -> list[FileEvent]:
    """Two stores' days interleaved in log order, b's device clock up to 5 min ahead."""
    rng = random.Random(seed)
    out: list[FileEvent] = []
    for store, skew in (("a", 0.0), ("b", 290.0)):
        t = 0.0
        out.append(ev(store, skew, "staff.clock_in", staff_id="ana"))
        for i in range(30):
            t += rng.choice([5, 30, 90, 400, 2000, 9000])
            s = t + skew
            if rng.random() < 0.5:
                out.append(ev(store, s, "pos.order_paid", order_id=f"o{i}", lines=LINE))
                out.append(ev(store, s + 20, "order.started", order_id=f"o{i}", staff_id="ana"))
                done = s + rng.uniform(100, 500)
                out.append(ev(store, done, "order.handed_off", order_id=f"o{i}", staff_id="ana"))
            else:
                for k in range(rng.randint(1, 4)):
                    track = f"t{i}-{k}"
                    out.append(
                        ev(store, s + k, "vision.zone_enter", zone_id="queue", track_id=track)
                    )
                    if rng.random() < 0.6:
                        left = s + rng.uniform(60, 400)
                        out.append(
                            ev(store, left, "vision.zone_exit", zone_id="queue", track_id=track)
                        )
    # Log order: by arrival (event time less the device's skew), not by the stamped time.
    return sorted(out, key=lambda e: e.ts - timedelta(seconds=290 if e.store_id == "b" else 0))


class PerMinute(OpsTracker):
    """Every minute of a store's event time evaluated: the reference for the jumps."""

    def _after(self, store: str, at: datetime, ts: datetime) -> datetime:
        return at + MINUTE


@pytest.mark.parametrize("seed", range(6))
def test_each_store_alone_equals_the_store_in_the_chain(seed: int) -> None:
    events = two_stores(seed)
    chain = OpsTracker(config())
    chain_facts = feed(chain, events)
    for store in ("a", "b"):
        alone = OpsTracker(config())
        alone_facts = feed(alone, [e for e in events if e.store_id == store])
        assert of(store, chain_facts) == of(store, alone_facts)
        assert [c for c in chain.alerts if c.store_id == store] == alone.alerts
        assert chain.clock(store) == alone.clock(store)
    reference = PerMinute(config())
    assert feed(reference, events).as_dict() == chain_facts.as_dict()
    assert reference.alerts == chain.alerts and reference.state() == chain.state()


@pytest.mark.parametrize("seed", range(3))
def test_restart_from_state_anywhere_equals_one_pass(seed: int) -> None:
    events = two_stores(seed)
    whole = OpsTracker(config())
    whole_facts = feed(whole, events)
    for cut in range(0, len(events), max(1, len(events) // 9)):
        first = OpsTracker(config())
        facts = feed(first, events[:cut])
        resumed = OpsTracker.from_state(config(), first.state())
        facts.add(resumed.apply_all(events[cut:]))
        assert facts.as_dict() == whole_facts.as_dict()
        assert first.alerts + resumed.alerts == whole.alerts
        assert resumed.state() == whole.state()


# -- a store that goes quiet ----------------------------------------------------------------


def quiet_store_events() -> list[FileEvent]:
    """Store q opens an order and sees two people queue, then sends nothing more; an id
    no store has (a typo) sends one order; store a goes on for two days of server time
    (``rx`` is when the server received each event)."""
    out = [
        ev("q", 0, "pos.order_paid", rx=0, order_id="lost", lines=LINE),
        ev("typo", 2, "pos.order_paid", rx=2, order_id="t1", lines=LINE),
        ev("q", 4, "vision.zone_enter", rx=4, zone_id="queue", track_id="p"),
        ev("q", 5, "vision.zone_enter", rx=5, zone_id="queue", track_id="r"),
    ]
    out += [shot("a", h * 3600, rx=h * 3600) for h in range(0, 49)]
    return out


def test_a_store_quiet_for_a_day_of_server_time_is_closed_and_forgotten() -> None:
    tracker = OpsTracker(config())
    facts = feed(tracker, quiet_store_events())
    # Nothing of q or of the typo is left in memory or in the snapshot.
    assert tracker.clock("q") is None and tracker.clock("typo") is None
    assert list(tracker.state()["clocks"]) == ["a"]
    assert tracker.orders == {} and tracker.tracks == {} and tracker.firing == {}
    assert sorted(tracker.retired) == ["q", "typo"]
    assert [(o.order_id, o.handed_off_at) for o in facts.orders] == [("lost", None), ("t1", None)]
    assert sorted((v.track_id, v.closed_by) for v in facts.visits) == [
        ("p", "timeout"),
        ("r", "timeout"),
    ]
    # q's queue alert was raised and cleared on q's own time, never on a's.
    assert [(c.store_id, c.state) for c in tracker.alerts] == [("q", "raised"), ("q", "cleared")]
    assert all(c.at < T0 + timedelta(days=1) for c in tracker.alerts)
    assert tracker.clock("a") == T0 + timedelta(hours=48)


def test_quiet_store_retirement_is_the_same_after_a_restart() -> None:
    events = quiet_store_events()
    whole = OpsTracker(config())
    whole_facts = feed(whole, events)
    for cut in (1, 3, 10, 28, 29, 30, 40):
        first = OpsTracker(config())
        facts = feed(first, events[:cut])
        resumed = OpsTracker.from_state(config(), first.state())
        facts.add(resumed.apply_all(events[cut:]))
        assert facts.as_dict() == whole_facts.as_dict()
        assert resumed.state() == whole.state()


def test_a_store_that_speaks_again_before_a_day_is_not_retired() -> None:
    events = quiet_store_events()
    events.insert(21, ev("q", 3600, "sensor.espresso_shot", rx=17 * 3600, machine_id="m"))
    tracker = OpsTracker(config())
    feed(tracker, events[:31])  # server time 25 h: q was last heard 8 h ago
    assert tracker.clock("q") == T0 + timedelta(seconds=3600)
    assert ("q", "lost") in tracker.orders


def test_events_without_a_receive_time_never_retire_a_store() -> None:
    """A batch report from a file has no server receive times: nothing retires early,
    and ``finish`` closes what is left at the end of the period."""
    events = [
        FileEvent(e.type, e.ts, e.store_id, e.subject, e.payload) for e in quiet_store_events()
    ]
    tracker = OpsTracker(config())
    feed(tracker, events)
    assert tracker.clock("q") == T0 + timedelta(seconds=5)
    assert ("q", "lost") in tracker.orders and ("typo", "t1") in tracker.orders


def test_a_quiet_store_with_a_shift_never_clocked_out_is_closed_and_forgotten() -> None:
    """A shift used to end only by clocking out, so one lost clock-out kept a quiet store
    (its clock, its shift, every snapshot) for good. Run on to the quiet horizon, the
    shift expires at ana's last activity and the store is forgotten."""
    events = [
        ev("q", 0, "staff.clock_in", rx=0, staff_id="ana"),
        ev("q", 10, "pos.order_paid", rx=10, order_id="lost", lines=LINE),
        ev("q", 30, "order.started", rx=30, order_id="lost", staff_id="ana"),
        *[shot("a", h * 3600, rx=h * 3600) for h in range(0, 30)],
    ]
    tracker = OpsTracker(config())
    facts = feed(tracker, events)
    assert [o.order_id for o in facts.orders] == ["lost"]
    assert [(s.store_id, s.start, s.end) for s in facts.shifts] == [
        ("q", T0, T0 + timedelta(seconds=30))
    ]
    assert ("q", "ana") not in tracker.shifts and tracker.missed == {}
    assert tracker.clock("q") is None and tracker.retired == ["q"]
    assert [(c.rule_id, c.state) for c in tracker.alerts if c.store_id == "q"] == [
        ("missed-clock-out", "raised"),
        ("missed-clock-out", "cleared"),
    ]
    assert list(tracker.state()["clocks"]) == ["a"]


def test_a_snapshot_from_before_per_store_clocks_still_resumes() -> None:
    """A v1 snapshot had one clock: stores with something in flight start from it, the
    others from their own next event."""
    mark = T0 + timedelta(seconds=300)  # the chain's clock, b's device ahead of a
    v1 = {
        "v": 1,
        "watermark": mark.isoformat(),
        "next_tick": (T0 + timedelta(minutes=6)).isoformat(),
        "provisional": False,
        "held": None,
        "orders": [],
        "tracks": [],
        "shifts": [["a", "ana", T0.isoformat()]],
        "free_since": [["a", "ana", T0.isoformat()]],
        "recent": {},
        "firing": [],
    }
    tracker = OpsTracker.from_state(config(), v1)
    assert tracker.clock("a") == mark and tracker.clock("c") is None
    tracker.apply_all([shot("a", 400), shot("c", 20)])
    assert tracker.clock("a") == T0 + timedelta(seconds=400)
    assert tracker.clock("c") == T0 + timedelta(seconds=20)  # not dragged to a's 400 s
    assert OpsTracker.from_state(config(), tracker.state()).state() == tracker.state()


def test_a_v1_stores_open_order_still_closes_if_the_store_never_speaks_again() -> None:
    """The old chain clock swept every store's open orders; a store's clock carried over
    from a v1 snapshot had no receive time, so it never counted as quiet: a store (or a
    typo'd id) that sent nothing after the upgrade kept its open order, and its clock,
    for good. It is now quiet a day after the snapshot's time, like any other."""
    v1 = {
        "v": 1,
        "watermark": (T0 + timedelta(seconds=300)).isoformat(),
        "next_tick": (T0 + timedelta(minutes=6)).isoformat(),
        "provisional": False,
        "held": None,
        "orders": [["typo", "t1", "in_store", None, T0.isoformat(), None, None, None, 1, 1,
                    T0.isoformat()]],
        "tracks": [],
        "shifts": [],
        "free_since": [],
        "recent": {},
        "firing": [],
    }  # fmt: skip
    tracker = OpsTracker.from_state(config(), v1)
    facts = feed(tracker, [shot("a", h * 3600, rx=h * 3600) for h in range(0, 49)])
    assert [(o.order_id, o.handed_off_at) for o in facts.orders] == [("t1", None)]
    assert tracker.orders == {} and tracker.clock("typo") is None
    assert tracker.retired == ["typo"]
