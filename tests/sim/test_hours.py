from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from conftest import SimRun

BERLIN = ZoneInfo("Europe/Berlin")
STAFF_TYPES = {"staff.clock_in", "staff.clock_out"}


def _local(offset: int, at: time) -> int:
    day = date(2026, 11, 2) + timedelta(days=offset)
    return round(datetime.combine(day, at, tzinfo=BERLIN).timestamp() * 1000)


HOURS = [(_local(k, time(7)), _local(k, time(19))) for k in range(7)]


def _hours(offset: int) -> tuple[int, int]:
    return HOURS[offset]


def _day_of(ms: int) -> int:
    """Days are far apart: anything from 06:00 to 21:00 local belongs to that day."""
    return next(k for k, (o, c) in enumerate(HOURS) if o - 3_600_000 <= ms < c + 7_200_000)


def test_only_staff_before_opening_and_only_the_drain_after_closing(week: SimRun) -> None:
    staff_tracks = set(week.truth["staff_tracks"])
    arrived_in_time = {
        v["track_id"]
        for v in week.truth["visits"]
        if week.ms(v["enter"]) < _hours(_day_of(week.ms(v["enter"])))[1]
    }
    for event in week.events:
        opens, closes = _hours(_day_of(event["ms"]))
        if opens <= event["ms"] <= closes:
            continue
        track = event["payload"].get("track_id")
        if event["ms"] < opens:  # baristas clock in at 06:45 and appear in the bar
            assert event["type"] in STAFF_TYPES or track in staff_tracks, event
        elif track is not None:
            assert track in staff_tracks or track in arrived_in_time, event
        else:
            kinds = STAFF_TYPES | {"pos.order_paid", "sensor.espresso_shot"}
            assert event["type"] in kinds or event["type"].startswith("order."), event
    # Mobile orders stop with the arrivals, in-store ones only come from people already in.
    for order in week.truth["orders"]:
        if order["channel"] == "mobile":
            assert week.ms(order["paid_at"]) < _hours(_day_of(week.ms(order["paid_at"])))[1]


def test_no_one_arrives_after_closing_and_seats_empty_by_closing(week: SimRun) -> None:
    for visit in week.truth["visits"]:
        _, closes = _hours(_day_of(week.ms(visit["enter"])))
        assert week.ms(visit["enter"]) < closes
        for zone in visit["zones"]:
            if zone["zone_id"] in ("seating", "window-seats"):
                assert week.ms(zone["exit"]) <= closes


def test_the_drain_is_short(week: SimRun) -> None:
    """Stopping arrivals at 19:00 lets the café empty well before the last shift ends."""
    staff_tracks = set(week.truth["staff_tracks"])
    last_customer = [0] * 7
    last_any = [0] * 7
    for event in week.events:
        day = _day_of(event["ms"])
        last_any[day] = max(last_any[day], event["ms"])
        if (
            event["type"] not in STAFF_TYPES
            and event["payload"].get("track_id") not in staff_tracks
        ):
            last_customer[day] = max(last_customer[day], event["ms"])
    for offset, (_, closes) in enumerate(HOURS):
        assert last_customer[offset] - closes < 30 * 60_000
        # The last shift ends 19:15; it may overrun by one order, or wait out the drain.
        assert last_any[offset] - closes <= 15 * 60_000 + 10 * 60_000


def test_crm_sync_at_the_first_opening_only(week: SimRun) -> None:
    opens, _ = _hours(0)
    upserts = week.of("customer.upserted")
    consents = week.of("consent.changed")
    assert {e["ms"] for e in upserts} == {opens}
    assert {e["ms"] for e in consents} == {opens + 1000}
    for event in upserts:
        payload = event["payload"]
        assert event["source"] == payload["source_system"] == "crm"
        assert event["subject"] == payload["loyalty_id"] and event["store_id"] is None
        assert payload["email"].endswith("@example.com")
    members = {e["subject"] for e in upserts}
    assert len(members) == len(upserts) == 600  # 1500 people, 40% members
    consenting = {e["subject"] for e in consents}
    assert consenting <= members
    assert 0.22 < len(consenting) / len(members) < 0.38
    granted = Counter(e["payload"]["granted"] for e in consents)
    assert granted[True] > 2 * granted[False]
