from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from storelens.core.layout import load_layout
from storelens.sim import default_layout_path

if TYPE_CHECKING:
    from conftest import SimRun

CUSTOMER_SEATS = {"seating", "window-seats"}


def _crossings(run: SimRun) -> dict[str, list[dict[str, Any]]]:
    """Zone enter/exit events per track, in file order."""
    tracks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in run.events:
        if event["type"] in ("vision.zone_enter", "vision.zone_exit"):
            tracks[event["payload"]["track_id"]].append(event)
    return tracks


def test_crossings_rebuild_the_truth_zones(week: SimRun) -> None:
    crossings = _crossings(week)
    for visit in week.truth["visits"]:
        events = crossings[visit["track_id"]]
        assert len(events) == 2 * len(visit["zones"])
        for k, zone in enumerate(visit["zones"]):
            enter, leave = events[2 * k], events[2 * k + 1]
            assert enter["type"] == "vision.zone_enter" and leave["type"] == "vision.zone_exit"
            assert enter["payload"]["zone_id"] == leave["payload"]["zone_id"] == zone["zone_id"]
            assert (enter["ms"], leave["ms"]) == (week.ms(zone["enter"]), week.ms(zone["exit"]))
        # Zone changes are instantaneous: each exit shares its timestamp with the next enter.
        for before, after in zip(visit["zones"], visit["zones"][1:], strict=False):
            assert before["exit"] == after["enter"]
        first, last = visit["zones"][0], visit["zones"][-1]
        assert (visit["enter"], visit["exit"]) == (first["enter"], last["exit"])
        dwell = (week.ms(visit["exit"]) - week.ms(visit["enter"])) / 1000
        assert round(dwell, 3) == visit["dwell_s"]


def test_zone_sequences_follow_the_customer_journey(week: SimRun) -> None:
    seated = 0
    for visit in week.truth["visits"]:
        zones = [z["zone_id"] for z in visit["zones"]]
        head = ["entrance", "queue", "counter", "pickup"]
        if visit["channel"] == "mobile":
            head = ["entrance", "pickup"]
        assert zones[: len(head)] == head
        assert zones[-1] == "entrance"
        middle = zones[len(head) : -1]
        assert middle in ([], ["seating"], ["window-seats"])
        if middle:
            seated += 1
            stay = visit["zones"][len(head)]
            minutes = (week.ms(stay["exit"]) - week.ms(stay["enter"])) / 60_000
            assert minutes <= 45
        for zone in (visit["zones"][0], visit["zones"][-1]):
            assert 2 <= (week.ms(zone["exit"]) - week.ms(zone["enter"])) / 1000 <= 6
    assert 0.35 < seated / len(week.truth["visits"]) < 0.55


def test_queue_exit_is_counter_enter_and_matches_truth(week: SimRun) -> None:
    queue = {q["track_id"]: q for q in week.truth["queue"]}
    in_store = [v for v in week.truth["visits"] if v["channel"] == "in_store"]
    assert set(queue) == {v["track_id"] for v in in_store}
    for visit in in_store:
        line, counter = visit["zones"][1], visit["zones"][2]
        assert line["exit"] == counter["enter"]
        truth = queue[visit["track_id"]]
        assert (truth["queue_enter"], truth["counter_enter"]) == (line["enter"], counter["enter"])
        wait = week.ms(truth["counter_enter"]) - week.ms(truth["queue_enter"])
        assert round(wait / 1000, 3) == truth["wait_s"] >= 3.0  # the walk up an empty queue


def test_queue_is_first_in_first_out_each_day(week: SimRun) -> None:
    days: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for q in week.truth["queue"]:
        days[q["queue_enter"][:10]].append((week.ms(q["queue_enter"]), week.ms(q["counter_enter"])))
    assert len(days) == 7
    for entries in days.values():
        entries.sort(key=lambda pair: pair[0])  # stable: ties keep truth's (service) order
        counters = [counter for _, counter in entries]
        assert counters == sorted(counters)


def test_at_most_two_customers_at_the_registers(week: SimRun) -> None:
    """Counter service (counter enter to payment) never overlaps on more than 2 registers."""
    paid = sorted(e["ms"] for e in week.of("pos.order_paid") if e["payload"]["register_id"])
    starts = sorted(week.ms(q["counter_enter"]) for q in week.truth["queue"])
    assert len(paid) == len(starts)
    points = sorted([(t, 1) for t in starts] + [(t, -1) for t in paid], key=lambda p: (p[0], p[1]))
    busy = peak = 0
    for _, step in points:
        busy += step
        peak = max(peak, busy)
    assert peak == 2


def test_crossing_cameras_cover_their_zone(week: SimRun) -> None:
    layout = load_layout(default_layout_path())
    for event in week.of("vision.zone_enter") + week.of("vision.zone_exit"):
        payload = event["payload"]
        covering = [c.id for c in layout.cameras if payload["zone_id"] in c.covers]
        assert payload["camera_id"] == (covering[0] if covering else None)


def test_track_points_sit_in_the_zone_the_track_is_in(week: SimRun) -> None:
    """Samples every 15 s on a shared grid; away from walks a point lies inside its zone."""
    layout = load_layout(default_layout_path())
    zones = {zone.id: zone for zone in layout.zones}
    stays: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for visit in week.truth["visits"]:
        for z in visit["zones"]:
            stays[visit["track_id"]].append((week.ms(z["enter"]), week.ms(z["exit"]), z["zone_id"]))
    checked = 0
    for event in week.of("vision.track"):
        payload = event["payload"]
        assert event["ms"] % 15_000 == 0
        assert layout.floor.contains((payload["x"], payload["y"]))
        track = stays.get(payload["track_id"])
        if track is None:
            continue  # staff, see test_staff
        zone = next(z for enter, leave, z in track if enter <= event["ms"] < leave)
        enter, leave = next((e, x) for e, x, z in track if e <= event["ms"] < x)
        if event["ms"] - enter > 10_000 and leave - event["ms"] > 10_000:
            assert zones[zone].contains((payload["x"], payload["y"])), event
            checked += 1
    assert checked > 10_000
