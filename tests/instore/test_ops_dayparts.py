"""The Operations report's dayparts are the store insights' dayparts.

The report counted 00:00-11:00 as morning and 17:00-24:00 as evening, while the Floor
page and the recommender call 06:00-11:00 morning, 17:00-22:00 evening and the rest
night: an order at 05:30 was "morning" on one page and "night" on the other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storelens.core.dayparts import DAYPARTS, OFF_HOURS
from storelens.instore.facts import OpsFacts, OrderFact
from storelens.instore.report import ops_report


def order(n: int, paid: datetime, seconds: float) -> OrderFact:
    done = paid + timedelta(seconds=seconds)
    return OrderFact("s", f"o{n}", "pos", "reg-1", paid, paid, done, done, "ana", 1, 1)


def dayparts(*paid_utc_hours: tuple[int, int]) -> dict[str, int]:
    day = datetime(2026, 11, 2, tzinfo=UTC)  # Berlin is UTC+01:00 that day
    orders = [
        order(i, day + timedelta(hours=h, minutes=m), 60) for i, (h, m) in enumerate(paid_utc_hours)
    ]
    report = ops_report(OpsFacts(orders=orders), store_id="s", timezone="Europe/Berlin")
    return {row["key"]: row["count"] for row in report["fulfillment"]["by_daypart"]}


def test_early_and_late_orders_are_night_as_on_the_floor_page() -> None:
    # 05:30 and 22:30 Berlin are night; 06:00 is morning; 21:59 is evening.
    got = dayparts((4, 30), (21, 30), (5, 0), (20, 59))
    assert got == {"morning": 1, "evening": 1, "night": 2}


def test_rows_come_in_the_day_s_order_with_night_last() -> None:
    got = dayparts((21, 30), (16, 0), (14, 0), (12, 0), (5, 0))
    assert list(got) == [*(name for name, _, _ in DAYPARTS), OFF_HOURS]


def test_orders_without_a_till_are_named_by_their_channel_not_none() -> None:
    """A manager read the register "none" (463 orders) as a till that had failed."""
    day = datetime(2026, 11, 2, 9, tzinfo=UTC)
    till = order(1, day, 60)
    app = OrderFact("s", "o2", "mobile", None, day, day, day, day + timedelta(seconds=90),
                    "ana", 1, 1)  # fmt: skip
    report = ops_report(OpsFacts(orders=[till, app]), store_id="s")
    rows = report["fulfillment"]["by_register"]
    assert [(r["key"], r["count"]) for r in rows] == [("mobile (no till)", 1), ("reg-1", 1)]
