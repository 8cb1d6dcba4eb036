"""The slow-orders alert is about customers waiting at the counter.

A newcomer's demo week raised it 84 times (twelve a day) though in-store orders were
served within the limit: app orders, handed off when their customer turns up, took 9.5
min at p90 from payment, and their times were pooled with the counter's. Its message
also read "orders take 6.0 min ...; limit 6.0 min" at 361 s."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from storelens.instore.alerts import DEFAULT_RULES
from storelens.instore.processor import FileEvent
from storelens.instore.tracker import OpsTracker, TrackerConfig

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
LATTE = [{"product_id": "latte", "qty": 1, "unit_price": 3.0, "category": "coffee"}]


def ev(sec: float, type_: str, **payload: Any) -> FileEvent:
    return FileEvent(type_, T0 + timedelta(seconds=sec), "s", None, payload)


def orders(channel: str, seconds: float, first: int, n: int = 8) -> list[FileEvent]:
    out = []
    for i in range(first, first + n):
        paid = i * 60.0
        oid = f"{channel}-{i}"
        out.append(ev(paid, "pos.order_paid", order_id=oid, lines=LATTE, channel=channel))
        out.append(ev(paid + seconds, "order.handed_off", order_id=oid, staff_id="ana"))
    return out


def alerts(events: list[FileEvent]) -> list[Any]:
    tracker = OpsTracker(TrackerConfig(zone_kinds={}, alert_rules=DEFAULT_RULES))
    ticks = [ev(3600 + 60 * k, "sensor.espresso_shot", machine_id="m") for k in range(10)]
    tracker.apply_all(sorted([*events, *ticks], key=lambda e: e.ts))
    return [a for a in tracker.alerts if a.rule_id == "slow-orders"]


def test_app_orders_collected_late_do_not_make_the_bar_slow() -> None:
    quick_counter = orders("in_store", 120, first=0)
    late_pickups = orders("mobile", 570, first=0)  # 9.5 min: the customer was on the way
    assert alerts([*quick_counter, *late_pickups]) == []


def test_slow_counter_orders_still_raise_it_and_say_by_how_much() -> None:
    raised = alerts(orders("in_store", 421, first=0))
    assert raised and raised[0].state == "raised"
    assert "in-store orders take 7 min 01 s" in raised[0].message
    assert "limit 6 min 00 s" in raised[0].message


def test_a_p90_just_over_the_limit_does_not_read_as_equal_to_it() -> None:
    """A new user's review: "take 6 min 00 s ...; limit 6 min 00 s" on the Today page."""
    raised = alerts(orders("in_store", 360.4, first=0))
    assert raised and "in-store orders take just over 6 min 00 s" in raised[0].message
