from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from storelens.catalogue import DRINK_CATEGORIES

if TYPE_CHECKING:
    from conftest import SimRun

BARISTAS = ("barista-ana", "barista-ben", "barista-chloe")


def _segments(run: SimRun) -> dict[str, list[tuple[int, int]]]:
    """Clock-in to clock-out segments per barista, from the events alone."""
    segments: dict[str, list[tuple[int, int]]] = defaultdict(list)
    open_at: dict[str, int] = {}
    for event in run.events:
        if event["type"] not in ("staff.clock_in", "staff.clock_out"):
            continue
        payload = event["payload"]
        assert event["source"] == "pos" and payload["role"] == "barista"
        staff = payload["staff_id"]
        if event["type"] == "staff.clock_in":
            assert staff not in open_at, f"{staff} clocked in twice"
            open_at[staff] = event["ms"]
        else:
            segments[staff].append((open_at.pop(staff), event["ms"]))
    assert not open_at, "someone never clocked out"
    return dict(segments)


def _order_windows(run: SimRun) -> dict[str, list[tuple[int, int, str]]]:
    ready = {e["payload"]["order_id"]: e["ms"] for e in run.of("order.ready")}
    windows: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for event in run.of("order.started"):
        order_id = event["payload"]["order_id"]
        windows[event["payload"]["staff_id"]].append((event["ms"], ready[order_id], order_id))
    return windows


def test_baristas_make_one_order_at_a_time_while_clocked_in(week: SimRun) -> None:
    segments = _segments(week)
    assert set(segments) == set(BARISTAS)
    for staff, orders in _order_windows(week).items():
        orders.sort()
        for (_, ready, _), (start, _, order_id) in itertools.pairwise(orders):
            assert start > ready, order_id
        for start, ready, order_id in orders:
            assert any(i <= start and ready <= o for i, o in segments[staff]), order_id


def test_each_shift_has_one_break_of_thirty_minutes(week: SimRun) -> None:
    for staff, segments in _segments(week).items():
        assert len(segments) == 14, staff  # 7 days, a break splits each shift in two
        for (_, out), (back, _) in zip(segments[::2], segments[1::2], strict=True):
            assert back - out == 30 * 60_000


def test_two_baristas_on_shift_during_the_rushes(week: SimRun) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    segments = [s for spans in _segments(week).values() for s in spans]
    for offset in range(7):
        day = date(2026, 11, 2) + timedelta(days=offset)
        for hh, mm in ((7, 30), (8, 30), (9, 25), (12, 0), (13, 25)):
            at = datetime.combine(day, time(hh, mm), tzinfo=berlin).timestamp() * 1000
            assert sum(1 for i, o in segments if i <= at < o) >= 2, (day, hh, mm)
        for hh, mm in ((7, 0), (15, 0), (18, 59)):
            at = datetime.combine(day, time(hh, mm), tzinfo=berlin).timestamp() * 1000
            assert sum(1 for i, o in segments if i <= at < o) >= 1, (day, hh, mm)


def test_barista_truth_recomputes_from_events(week: SimRun) -> None:
    """drinks_per_hour from order.ready staff + line categories + clock in/out events."""
    categories: dict[str, int] = {}
    for event in week.of("pos.order_paid"):
        lines = event["payload"]["lines"]
        drinks = sum(line["qty"] for line in lines if line["category"] in DRINK_CATEGORIES)
        categories[event["payload"]["order_id"]] = drinks
    drinks_by: dict[str, int] = defaultdict(int)
    orders_by: dict[str, int] = defaultdict(int)
    for event in week.of("order.ready"):
        drinks_by[event["payload"]["staff_id"]] += categories[event["payload"]["order_id"]]
        orders_by[event["payload"]["staff_id"]] += 1
    busy_by = {
        staff: sum(ready - start for start, ready, _ in spans)
        for staff, spans in _order_windows(week).items()
    }
    segments = _segments(week)
    truth = {b["staff_id"]: b for b in week.truth["baristas"]}
    assert list(truth) == list(BARISTAS)
    for staff, record in truth.items():
        on_shift_s = round(sum(o - i for i, o in segments[staff]) / 1000, 3)
        assert record["on_shift_s"] == on_shift_s
        assert [[week.ms(a), week.ms(b)] for a, b in record["shifts"]] == [
            list(s) for s in segments[staff]
        ]
        assert (record["drinks"], record["orders"]) == (drinks_by[staff], orders_by[staff])
        assert record["busy_s"] == round(busy_by[staff] / 1000, 3)
        assert record["drinks_per_hour"] == round(drinks_by[staff] / (on_shift_s / 3600), 3)
        assert record["utilisation"] == round(record["busy_s"] / on_shift_s, 4)
        assert 0.1 < record["utilisation"] < 0.95


def test_staff_tracks_start_and_end_in_the_bar_with_the_clock(week: SimRun) -> None:
    staff_tracks = set(week.truth["staff_tracks"])
    assert staff_tracks.isdisjoint(v["track_id"] for v in week.truth["visits"])
    crossings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in week.of("vision.zone_enter") + week.of("vision.zone_exit"):
        if event["payload"]["track_id"] in staff_tracks:
            crossings[event["payload"]["track_id"]].append(event)
    assert set(crossings) == staff_tracks
    clock_ins = sorted(e["ms"] for e in week.of("staff.clock_in"))
    clock_outs = sorted(e["ms"] for e in week.of("staff.clock_out"))
    firsts, lasts, walks = [], [], 0
    for events in crossings.values():
        events.sort(key=lambda e: (e["ms"], e["type"] == "vision.zone_enter"))
        first, last = events[0], events[-1]
        assert first["type"] == "vision.zone_enter" and first["payload"]["zone_id"] == "bar"
        assert last["type"] == "vision.zone_exit" and last["payload"]["zone_id"] == "bar"
        firsts.append(first["ms"])
        lasts.append(last["ms"])
        zones = [e["payload"]["zone_id"] for e in events if e["type"] == "vision.zone_enter"]
        assert zones[0] == "bar"
        for k, zone in enumerate(zones):
            if zone == "queue" and zones[k + 1] == "seating":  # clearing tables and back
                assert zones[k - 1 : k + 4] == ["bar", "queue", "seating", "queue", "bar"]
                walks += 1
    assert sorted(firsts) == clock_ins and sorted(lasts) == clock_outs
    assert walks >= 7  # a few table rounds a day


def test_staff_tracks_are_sampled_like_customers(week: SimRun) -> None:
    staff_tracks = set(week.truth["staff_tracks"])
    points = [e for e in week.of("vision.track") if e["payload"]["track_id"] in staff_tracks]
    # Three baristas, ~8 h each a day, one point per 15 s.
    assert 7 * 3 * 7 * 240 < len(points) < 7 * 3 * 9 * 240
