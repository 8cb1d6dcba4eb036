from __future__ import annotations

import itertools
from math import hypot

import pytest

from storelens.core.layout import load_layout
from storelens.sim import default_layout_path
from storelens.sim.paths import FloorPlan, Stay


@pytest.fixture(scope="module")
def floor() -> FloorPlan:
    return FloorPlan(load_layout(default_layout_path()), salt="7|cafe-01")


def test_spots_lie_inside_their_zone_and_are_reproducible(floor: FloorPlan) -> None:
    for zone in floor.layout.zones:
        spots = {floor.spot(f"t-{k:010x}", zone.id, 0) for k in range(200)}
        assert all(zone.contains(spot) for spot in spots)
        assert len(spots) > 150  # people spread out rather than stack on one point
    assert floor.spot("t-1", "queue", 0) == floor.spot("t-1", "queue", 0)
    assert floor.spot("t-1", "queue", 0) != floor.spot("t-1", "queue", 1)
    other = FloorPlan(floor.layout, salt="8|cafe-01")
    assert other.spot("t-1", "queue", 0) != floor.spot("t-1", "queue", 0)


def test_samples_stand_still_in_a_stay_and_walk_between_stays(floor: FloorPlan) -> None:
    stays = [
        Stay("entrance", 10_000, 14_000),
        Stay("queue", 14_000, 60_000),
        Stay("counter", 60_000, 120_000),
    ]
    samples = list(floor.sample("t-abc", stays, 200))
    assert samples[0][0] == 10_000 and samples[-1][0] == 119_800  # gone at the last exit
    assert [t for t, *_ in samples] == list(range(10_000, 120_000, 200))
    queue_spot = floor.spot("t-abc", "queue", 1)
    middle = [(x, y) for t, x, y, zone in samples if 30_000 <= t <= 45_000]
    assert set(middle) == {queue_spot}
    for t, _, _, zone in samples:
        expected = next(s.zone_id for s in stays if s.enter <= t < s.exit)
        assert zone == expected
    # Walking is continuous: no jump bigger than a brisk step per 200 ms frame.
    for (_, x0, y0, _), (_, x1, y1, _) in itertools.pairwise(samples):
        assert hypot(x1 - x0, y1 - y0) <= 0.6


def test_cameras_per_zone(floor: FloorPlan) -> None:
    assert floor.camera_for("entrance") == "cam-entrance"
    assert floor.camera_for("bar") == "cam-counter"
    assert floor.camera_for("seating") == "cam-seating"


def test_track_cameras_follow_the_calibration(floor: FloorPlan) -> None:
    # Outside the door, in the bar, deep in the seating, and two spots two cameras see:
    # (3, 3) lies nearer cam-entrance's image centre, (4.5, 4) cam-counter's; a spot off
    # the floor plan no camera sees.
    points = [(0.2, 4.5), (10.0, 1.0), (12.0, 8.0), (3.0, 3.0), (4.5, 4.0), (30.0, 30.0)]
    assert floor.track_cameras(points) == [
        "cam-entrance", "cam-counter", "cam-seating", "cam-entrance", "cam-counter", None,
    ]  # fmt: skip
    assert floor.track_cameras([]) == []
    assert floor.is_staff_only("bar") and not floor.is_staff_only("queue")
