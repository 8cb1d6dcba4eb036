"""Store visits chained door to door across track breaks: a mid-floor start continues the
right mid-floor end, and never one that is still alive, too far, too old, or at a door."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storelens.core.layout import parse_layout
from storelens.vision.doors import Crossing
from storelens.vision.visits import StoreVisit, StoreVisits, VisitConfig

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
US0 = (T0 - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
LOST_US = 2_000_000
# A door line at x = 5 from y = 2 to y = 6; "in" is to the east (x > 5).
LINES = parse_layout(
    {
        "store": {"id": "test-01", "name": "Test"},
        "floor": {"width_m": 20.0, "height_m": 10.0},
        "zones": [
            {
                "id": "shop",
                "name": "Shop",
                "kind": "aisle",
                "polygon": [[5, 0], [20, 0], [20, 10], [5, 10]],
            }
        ],
        "lines": [{"id": "door", "name": "Door", "a": [5, 2], "b": [5, 6]}],
    }
).lines


def us(seconds: float) -> int:
    return US0 + round(seconds * 1e6)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class Floor:
    """Drives `StoreVisits` the way `FloorActivity` does, one event at a time."""

    def __init__(self, **config: float) -> None:
        self.visits = StoreVisits(LINES, VisitConfig(**config), LOST_US)
        self.closed: list[StoreVisit] = []

    def born(self, pid: str, seconds: float, xy: tuple[float, float]) -> None:
        self.visits.born(pid, us(seconds), xy)

    def walk_in(self, pid: str, seconds: float) -> None:
        """Born on the street side, crossing the door at ``seconds``."""
        self.born(pid, seconds - 1, (4.0, 4.0))
        self.visits.crossed(Crossing(at(seconds), pid, "door", "in"))

    def walk_out(self, pid: str, seconds: float) -> None:
        self.visits.crossed(Crossing(at(seconds), pid, "door", "out"))
        self.lost(pid, seconds + 1, (4.0, 4.0))

    def lost(self, pid: str, last_seen: float, xy: tuple[float, float]) -> None:
        """Last seen at ``last_seen``; declared lost two seconds later, as FloorActivity does."""
        self.settle(last_seen + 2)
        self.visits.ended(pid, us(last_seen), xy)
        self.settle(last_seen + 2)

    def settle(self, seconds: float) -> list[StoreVisit]:
        done = self.visits.settle(us(seconds))
        self.closed += done
        return done

    def close(self, seconds: float) -> list[StoreVisit]:
        self.closed += self.visits.close(us(seconds))
        return self.closed


def test_a_track_break_mid_floor_is_one_visit_door_to_door() -> None:
    floor = Floor()
    floor.walk_in("a", 10)
    floor.lost("a", 100, (12.0, 7.0))  # a seated customer, missed
    floor.born("b", 100.4, (12.2, 7.1))  # ...and found again under a new id
    floor.walk_out("b", 300)
    [visit] = floor.close(400)
    assert (visit.start, visit.end) == (at(10), at(300))
    assert (visit.entered_by, visit.left_by, visit.tracks) == ("door", "door", 2)
    assert visit.visit_id.startswith("a/")


def test_a_visit_that_walks_out_closes_at_once() -> None:
    floor = Floor()
    floor.walk_in("a", 10)
    floor.walk_out("a", 50)
    assert [(v.start, v.end, v.tracks) for v in floor.closed] == [(at(10), at(50), 1)]


def test_a_newcomer_at_the_door_is_a_new_visit_even_beside_a_lost_track() -> None:
    floor = Floor()
    floor.walk_in("a", 10)
    floor.lost("a", 20, (6.0, 4.0))  # lost a metre inside the door
    floor.walk_in("b", 21)  # someone walks in right there
    floor.walk_out("b", 60)
    visits = floor.close(100)
    assert sorted(v.tracks for v in visits) == [1, 1]
    assert {v.visit_id.split("/")[0] for v in visits} == {"a", "b"}


@pytest.mark.parametrize(
    ("born_s", "xy", "joined"),
    [
        (20.5, (12.5, 7.0), True),  # half a metre away, half a second later
        (20.5, (16.0, 7.0), False),  # 4 m in half a second: someone else
        (35.0, (16.0, 7.0), True),  # 4 m in 15 s: could be them
        (81.0, (12.0, 7.0), False),  # past relink_s (60 s)
        (19.0, (12.0, 7.0), False),  # born while the lost track was still seen
    ],
)
def test_a_mid_floor_start_continues_only_a_plausible_end(
    born_s: float, xy: tuple[float, float], joined: bool
) -> None:
    floor = Floor()
    floor.walk_in("a", 10)
    floor.born("b", born_s, xy)
    floor.lost("a", 20, (12.0, 7.0))
    floor.walk_out("b", 200)
    visits = floor.close(300)
    assert sorted(v.tracks for v in visits) == ([2] if joined else [1, 1])


def test_two_breaks_at_once_are_joined_nearest_first() -> None:
    floor = Floor()
    floor.walk_in("a", 10)
    floor.walk_in("b", 12)
    floor.settle(20)
    floor.visits.ended("a", us(30), (8.0, 3.0))
    floor.visits.ended("b", us(30), (12.0, 8.0))
    floor.born("c", 30.4, (12.1, 8.0))  # where b was
    floor.born("d", 30.6, (8.2, 3.1))  # where a was
    floor.settle(33)
    floor.walk_out("c", 100)
    floor.walk_out("d", 120)
    visits = {v.visit_id.split("/")[0]: v for v in floor.close(200)}
    assert set(visits) == {"a", "b"}
    assert visits["a"].end == at(120) and visits["b"].end == at(100)


def test_an_end_nobody_continues_closes_at_its_last_sighting_after_relink_s() -> None:
    floor = Floor(relink_s=30)
    floor.walk_in("a", 10)
    floor.lost("a", 40, (12.0, 7.0))
    assert floor.settle(69) == []
    [visit] = floor.settle(70)
    assert (visit.start, visit.end, visit.left_by, visit.at_door) == (at(10), at(40), None, True)


def test_relink_zero_keeps_one_visit_per_track() -> None:
    floor = Floor(relink_s=0)
    floor.walk_in("a", 10)
    floor.lost("a", 100, (12.0, 7.0))
    floor.born("b", 100.4, (12.2, 7.1))
    floor.walk_out("b", 300)
    visits = floor.close(400)
    assert [(v.start, v.end, v.entered_by, v.left_by) for v in visits] == [
        (at(10), at(100), "door", None),
        (at(100.4), at(300), None, "door"),
    ]
    assert not StoreVisit("x", at(0), at(1)).at_door


def test_a_staff_shift_behind_the_bar_is_no_door_visit() -> None:
    floor = Floor()
    floor.born("s", 0, (15.0, 1.0))
    floor.lost("s", 3600, (15.0, 1.5))
    [shift] = floor.close(4000)
    assert not shift.at_door and shift.dwell_s == 3600


@pytest.mark.parametrize("name", ["relink_s", "door_radius_m", "walk_mps", "max_jump_m"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_bad_config_is_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        VisitConfig(**{name: value})
