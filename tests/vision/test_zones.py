"""Floor activity: zone membership, door counts, visits, occupancy and bad frames."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from storelens.core.layout import StoreLayout, Zone, load_layout, parse_layout
from storelens.sim.run import default_layout_path
from storelens.vision.zones import (
    Crossing,
    FloorActivity,
    FloorConfig,
    FloorUpdates,
    VisitConfig,
    ZoneMap,
    line_offsets,
)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def store(zones: list[dict[str, Any]], lines: Sequence[dict[str, Any]] = ()) -> StoreLayout:
    return parse_layout(
        {
            "store": {"id": "test-01", "name": "Test"},
            "floor": {"width_m": 20.0, "height_m": 10.0},
            "zones": zones,
            "lines": list(lines),
        }
    )


def box(zone_id: str, x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {
        "id": zone_id,
        "name": zone_id.title(),
        "kind": "aisle",
        "polygon": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]],
    }


# A door line at x = 5 from y = 2 to y = 6; walking down it, "in" is to the east (x > 5).
DOOR = {"id": "door", "name": "Door", "a": [5, 2], "b": [5, 6]}
SHOP = store([box("shop", 5, 0, 20, 10), box("shelf", 10, 2, 12, 4)], [DOOR])


def walk(activity: FloorActivity, path: Sequence[tuple[float, float] | None], *,
         person: str = "p1", start: float = 0.0, step: float = 0.2) -> FloorUpdates:  # fmt: skip
    """One person along ``path``, one frame per point; None is a frame without them."""
    out = FloorUpdates()
    for k, point in enumerate(path):
        ids, xy = ([person], [point]) if point is not None else ([], np.zeros((0, 2)))
        out.extend(activity.update(at(start + k * step), ids, xy))
    return out


def crossings(xs: Sequence[float], y: float = 4.0, **config: Any) -> list[Crossing]:
    activity = FloorActivity(SHOP, FloorConfig(**config))
    return walk(activity, [(x, y) for x in xs]).crossings


# -- zone membership -------------------------------------------------------------------------

L_SHAPE = {
    "id": "ell",
    "name": "Ell",
    "kind": "aisle",
    "polygon": [[0, 0], [4, 0], [4, 1], [1, 1], [1, 4], [0, 4]],
}


def test_zone_map_agrees_with_zone_contains_on_edges_vertices_and_concave_notch() -> None:
    zone = Zone.model_validate(L_SHAPE)
    probes = [
        (0, 0), (4, 0), (4, 1), (1, 1), (0, 4), (1, 4),  # every vertex
        (2, 0), (4, 0.5), (2.5, 1), (1, 2.5), (0.5, 4), (0, 2),  # every edge
        (0.5, 0.5), (3, 0.5), (0.5, 3),  # inside both arms
        (2, 2), (3.9, 3.9), (1.0001, 1.0001),  # in the notch of the L: outside
        (-0.0001, 2), (4.0001, 0.5), (2, -1e-6), (0.5, 4.0001), (5, 5),  # just outside
    ]  # fmt: skip
    xy = np.array(probes, dtype=np.float64)
    got = ZoneMap([zone]).inside(xy)[:, 0]
    assert got.tolist() == [zone.contains(p) for p in probes]
    assert got[:15].all()
    assert not got[15:].any()


def test_zone_map_checks_many_zones_at_once_including_shared_edges() -> None:
    zones = [Zone.model_validate(box("a", 0, 0, 2, 2)), Zone.model_validate(box("b", 2, 0, 4, 2))]
    xy = np.array([[1, 1], [2, 1], [3, 1], [5, 1]], dtype=np.float64)
    assert ZoneMap(zones).inside(xy).tolist() == [
        [True, False],
        [True, True],  # on the shared wall: in both, as Zone.contains says
        [False, True],
        [False, False],
    ]
    assert ZoneMap(zones).inside(np.zeros((0, 2))).shape == (0, 2)


def test_zone_map_matches_zone_contains_on_random_points_in_the_sample_cafe() -> None:
    layout = load_layout(default_layout_path())
    rng = np.random.default_rng(4)
    xy = rng.uniform([-1, -1], [15, 10], size=(400, 2)).round(1)  # rounding hits edges often
    got = ZoneMap(layout.zones).inside(xy)
    want = [[zone.contains((x, y)) for zone in layout.zones] for x, y in xy.tolist()]
    assert got.tolist() == want
    assert got.any(axis=0).all()  # every zone got some points, so the check has teeth


def test_line_offsets_sign_follows_count_line_side() -> None:
    line = SHOP.lines[0]
    xy = np.array([[6, 4], [4, 4], [5, 4], [5, 8]], dtype=np.float64)
    offset, along = line_offsets(SHOP.lines, xy)
    assert [line.side(tuple(p)) for p in xy.tolist()] == ["in", "out", "on", "on"]
    assert offset[:, 0].tolist() == [-1.0, 1.0, 0.0, 0.0]
    assert along[:, 0].tolist() == [0.5, 0.5, 0.5, 1.5]


# -- door counts -----------------------------------------------------------------------------


def test_walking_in_and_later_out_counts_in_then_out_at_the_line_itself() -> None:
    found = crossings([3, 4, 4.8, 5.2, 6, 7, 7, 6, 5.4, 4.6, 4, 3])
    assert [c.direction for c in found] == ["in", "out"]
    # On the line halfway between the frames at x = 4.8 (0.4 s) and 5.2 (0.6 s).
    assert found[0].ts == at(0.5)
    assert found[1].ts == at(1.7)  # between x = 5.4 (1.6 s) and 4.6 (1.8 s)
    assert {c.line_id for c in found} == {"door"}


def test_one_frame_flicker_across_the_line_is_not_a_crossing() -> None:
    # supervision#2598: a single bad detection on the far side must not count.
    assert crossings([3, 3, 7, 3, 3, 3]) == []
    assert crossings([7, 7, 3, 7, 7]) == []


def test_jitter_inside_the_neutral_band_never_counts() -> None:
    jitter = [4.8, 5.2, 4.9, 5.1, 4.75, 5.25, 5.0, 4.8, 5.29, 4.71] * 3
    assert crossings([3, 3, *jitter, 3, 3]) == []
    assert crossings([7, 7, *jitter, 7, 7]) == []


def test_clear_crossing_needs_min_frames_on_the_new_side() -> None:
    assert crossings([3, 3, 7]) == []  # one frame over: not yet
    assert len(crossings([3, 3, 7, 7])) == 1
    assert crossings([3, 3, 3, 7, 7], line_min_frames=3) == []
    assert len(crossings([3, 3, 3, 7, 7, 7], line_min_frames=3)) == 1
    assert crossings([3, 3, 7, 7, 7], line_min_frames=3) == []  # the start was never settled


def test_slow_crossing_through_the_band_over_many_frames_counts_once() -> None:
    slow = list(np.round(np.arange(4.0, 6.01, 0.05), 2))  # 40 frames from x = 4 to 6
    found = crossings(slow)
    assert [c.direction for c in found] == ["in"]
    assert found[0].ts == at(20 * 0.2)  # x = 5.0 is the 21st frame


def test_dawdling_back_inside_the_band_before_going_in_counts_once() -> None:
    assert [c.direction for c in crossings([3, 3, 4.8, 5.2, 4.9, 5.1, 6, 6])] == ["in"]


def test_walking_past_the_end_of_the_door_line_does_not_count() -> None:
    below = crossings([3, 3, 4, 6, 7, 7], y=8.0)  # the line ends at y = 6
    above = crossings([7, 7, 6, 4, 3, 3], y=1.0)
    assert below == [] and above == []


def test_going_round_the_end_of_the_line_then_through_the_door_counts_only_the_door() -> None:
    path = [(3, 8), (4, 8), (6, 8), (7, 8), (7, 4), (7, 4), (4, 4), (3, 4), (3, 4)]
    found = walk(FloorActivity(SHOP), path).crossings
    assert [c.direction for c in found] == ["out"]


def test_cutting_the_corner_past_the_end_of_the_line_and_out_of_the_door_is_an_exit() -> None:
    # Leaving from a shelf beside the door: over the line's extension above its end
    # (x = 5 at y = 1.5, 0.5 s), then down into the doorway strip behind it (y = 2, 0.7 s).
    path = [(7, 1), (7, 1), (6, 1.25), (4, 1.75), (3.5, 2.25), (3, 3), (2, 4), (1, 4)]
    found = walk(FloorActivity(SHOP), path).crossings
    assert [c.direction for c in found] == ["out"]
    assert found[0].ts == at(0.6 + 0.2 * (2 - 1.75) / 0.5)  # stepped into the strip


def test_a_seat_beside_the_door_is_not_out_and_leaving_from_it_is_one_exit() -> None:
    seat = [(4, 8)] * 50  # beyond the line's extension, below its end: still in the shop
    path = [(7, 4), (7, 4), (6, 7), *seat, (4, 6.5), (4, 5), (3, 4), (2, 4)]
    found = walk(FloorActivity(SHOP), path).crossings
    assert [c.direction for c in found] == ["out"]
    assert found[0].ts == at(0.2 * (2 + 1 + 50) + 0.2 * (6.5 - 6) / 1.5)  # y = 6, not sitting down


def test_a_customer_seated_by_the_door_when_the_camera_starts_is_in_and_leaving_counts() -> None:
    path = [(4, 8)] * 10 + [(4, 6.5), (4, 5), (3, 4), (2, 4)]  # first seen at the seat
    found = walk(FloorActivity(SHOP), path).crossings
    assert [c.direction for c in found] == ["out"]


def test_the_pavement_beside_the_door_off_the_plan_is_neither_in_nor_out() -> None:
    path = [(-1, 8), (-1, 8), (-1, 7), (-1, 4), (-1, 4), (3, 4), (7, 4), (7, 4)]
    found = walk(FloorActivity(SHOP), path).crossings
    assert [c.direction for c in found] == ["in"]  # a passer-by, then through the door
    assert walk(FloorActivity(SHOP), path[:5]).crossings == []


def test_person_first_seen_on_the_line_is_not_counted_until_their_side_is_known() -> None:
    assert crossings([5.0, 5.1, 6, 6, 4, 4]) == [Crossing(at(0.7), "p1", "door", "out")]


def test_a_person_lost_and_found_again_starts_with_no_side() -> None:
    activity = FloorActivity(SHOP)
    path: list[tuple[float, float] | None] = [(3, 4), (3, 4), *[None] * 15, (7, 4), (7, 4)]
    assert walk(activity, path).crossings == []


# -- zone visits -----------------------------------------------------------------------------


def zone_events(out: FloorUpdates, zone_id: str) -> list[tuple[str, datetime]]:
    return [(c.kind, c.ts) for c in out.zone_changes if c.zone_id == zone_id]


def test_short_exit_is_merged_into_one_visit_with_one_enter_and_one_exit() -> None:
    activity = FloorActivity(SHOP)
    path = [(11, 3)] * 5 + [(14, 3)] * 10 + [(11, 3)] * 5 + [(14, 3)] * 30  # out 2 s, then 6 s
    out = walk(activity, path)
    assert zone_events(out, "shelf") == [("enter", at(0)), ("exit", at(3.8))]
    (visit,) = [v for v in out.zone_visits if v.zone_id == "shelf"]
    assert (visit.start, visit.end) == (at(0), at(3.8))
    assert visit.dwell_s == pytest.approx(3.8)
    exit_change = out.zone_changes[-1]
    assert exit_change.kind == "exit" and exit_change.dwell_s == pytest.approx(3.8)


def test_exit_longer_than_the_merge_gap_splits_the_visit() -> None:
    activity = FloorActivity(SHOP)
    path = [(11, 3)] * 5 + [(14, 3)] * 30 + [(11, 3)] * 5  # out for 6 s
    out = walk(activity, path)
    out.extend(activity.close())
    assert zone_events(out, "shelf") == [
        ("enter", at(0)),
        ("exit", at(0.8)),
        ("enter", at(7.0)),
        ("exit", at(7.8)),
    ]
    assert [v.dwell_s for v in out.zone_visits if v.zone_id == "shelf"] == [
        pytest.approx(0.8),
        pytest.approx(0.8),
    ]


def test_exit_is_only_final_once_the_merge_gap_has_passed() -> None:
    activity = FloorActivity(SHOP, FloorConfig(merge_gap_s=5.0))
    walk(activity, [(11, 3)] * 5 + [(14, 3)] * 20)  # left at 0.8 s, seen out until 4.8 s
    assert activity.update(at(5.6), ["p1"], [[14, 3]]).zone_changes == []  # 4.8 s out
    later = activity.update(at(5.8), ["p1"], [[14, 3]])  # 5.0 s out: now it is an exit
    assert [(c.zone_id, c.kind, c.ts) for c in later.zone_changes] == [("shelf", "exit", at(0.8))]


def test_lost_person_closes_every_visit_at_their_last_sighting() -> None:
    no_relink = FloorConfig(lost_after_s=2.0, zone_relink_s=0, visits=VisitConfig(relink_s=0))
    activity = FloorActivity(SHOP, no_relink)
    out = walk(activity, [(11, 3)] * 5 + [None] * 9)  # last seen 0.8 s; 1.8 s is not lost yet
    assert [c.kind for c in out.zone_changes] == ["enter", "enter"]
    gone = activity.update(at(2.8), [], np.zeros((0, 2)))
    assert sorted((c.zone_id, c.kind, c.ts) for c in gone.zone_changes) == [
        ("shelf", "exit", at(0.8)),
        ("shop", "exit", at(0.8)),
    ]
    assert [(v.visit_id, v.start, v.end) for v in gone.store_visits] == [("p1/1", at(0), at(0.8))]


def test_a_store_visit_lost_mid_floor_waits_for_its_continuation() -> None:
    activity = FloorActivity(SHOP, FloorConfig(visits=VisitConfig(relink_s=30)))
    out = walk(activity, [(11, 3)] * 5 + [None] * 20)
    assert out.store_visits == []  # lost mid-floor: whoever appears there next may be them
    out = activity.update(at(30.8), [], np.zeros((0, 2)))
    assert [(v.start, v.end, v.tracks) for v in out.store_visits] == [(at(0), at(0.8), 1)]


def test_person_back_where_they_were_lost_is_the_same_store_visit() -> None:
    path = [(11, 3)] * 3 + [None] * 15 + [(11, 3)] * 3
    chained = FloorActivity(SHOP)
    out = walk(chained, path)
    out.extend(chained.close())
    assert [(v.start, v.end, v.tracks) for v in out.store_visits] == [(at(0), at(4.0), 2)]
    # the zone visit belongs to the person too: one visit across the loss
    shelf = [(v.start, v.end) for v in out.zone_visits if v.zone_id == "shelf"]
    assert shelf == [(at(0), at(4.0))]
    per_track = FloorActivity(SHOP, FloorConfig(visits=VisitConfig(relink_s=0)))
    out = walk(per_track, path)
    out.extend(per_track.close())
    assert [(v.start, v.end) for v in out.store_visits] == [(at(0), at(0.4)), (at(3.6), at(4.0))]


def test_store_visit_runs_from_the_first_in_to_the_last_out() -> None:
    activity = FloorActivity(SHOP)
    path = [(-1, 4)] * 5 + [(8, 4)] * 5 + [(-1, 4)] * 5 + [(8, 4)] * 5 + [(-1, 4)] * 40
    out = walk(activity, path)
    out.extend(activity.close())
    # the door line (x = 5) is crossed two thirds of the way from x = -1 to x = 8
    first_in, last_out = at(0.8 + 0.2 * 6 / 9), at(3.8 + 0.2 * 3 / 9)
    [visit] = out.store_visits
    assert visit.start == first_in and visit.end == last_out
    assert (visit.entered_by, visit.left_by, visit.at_door) == ("door", "door", True)


def test_close_flushes_open_and_pending_visits_and_resets() -> None:
    activity = FloorActivity(SHOP)
    out = walk(activity, [(11, 3)] * 5 + [(14, 3)] * 5)
    assert not out.zone_visits
    closed = activity.close(at(10))
    assert sorted((v.zone_id, v.end) for v in closed.zone_visits) == [
        ("shelf", at(0.8)),
        ("shop", at(1.8)),
    ]
    assert activity.close().zone_visits == []
    again = activity.update(at(0), ["p1"], [[11, 3]])  # a fresh start may go back in time
    assert [c.kind for c in again.zone_changes] == ["enter", "enter"]


def test_two_people_are_tracked_independently() -> None:
    activity = FloorActivity(SHOP)
    out = FloorUpdates()
    for k in range(10):
        xy = [[11, 3], [14, 3]] if k < 5 else [[14, 3], [11, 3]]
        out.extend(activity.update(at(k * 0.2), ["a", "b"], xy))
    out.extend(activity.close())
    shelf = sorted((v.person_id, v.start, v.end) for v in out.zone_visits if v.zone_id == "shelf")
    assert shelf == [("a", at(0), at(0.8)), ("b", at(1.0), at(1.8))]


# -- occupancy -------------------------------------------------------------------------------


def test_occupancy_is_sampled_on_event_time_grid_with_last_known_counts() -> None:
    activity = FloorActivity(SHOP, FloorConfig(occupancy_every_s=5.0))
    out = FloorUpdates()
    for k in range(40):  # frames at 0.3 s steps from 1.0 s: none lands on the 5 s ticks
        ids = ["a", "b"] if k < 20 else ["a"]
        out.extend(activity.update(at(1.0 + 0.3 * k), ids, [[11, 3], [15, 8]][: len(ids)]))
    samples = [(s.ts, s.zone_id, s.count) for s in out.occupancy]
    assert samples == [
        (at(5), "shop", 2), (at(5), "shelf", 1),
        (at(10), "shop", 1), (at(10), "shelf", 1),
    ]  # fmt: skip


def test_occupancy_does_not_depend_on_frame_rate_or_call_batching() -> None:
    def run(fps: int, batch: int) -> list[tuple[datetime, str, int]]:
        activity = FloorActivity(SHOP)
        frames = []
        for k in range(fps * 30):
            t = k / fps
            inside = 3 <= t < 17
            frames.append((at(t), ["p"], [[11, 3] if inside else [16, 8]]))
        out = FloorUpdates()
        for i in range(0, len(frames), batch):
            out.extend(activity.update_many(frames[i : i + batch]))
        return [(s.ts, s.zone_id, s.count) for s in out.occupancy if s.zone_id == "shelf"]

    want = [(at(t), "shelf", 1 if t in (5, 10, 15) else 0) for t in (0, 5, 10, 15, 20, 25)]
    assert run(5, 1) == want
    assert run(10, 7) == want
    assert run(2, 1000) == want


def test_no_occupancy_samples_are_invented_inside_a_gap_in_the_video() -> None:
    activity = FloorActivity(SHOP)
    activity.update(at(1), ["p"], [[11, 3]])
    out = activity.update(at(3601), ["p"], [[11, 3]])  # the camera was off for an hour
    assert out.occupancy == []
    assert [c.kind for c in out.zone_changes] == ["exit", "exit", "enter", "enter"]


def test_results_do_not_depend_on_how_frames_are_batched() -> None:
    rng = np.random.default_rng(11)
    positions = rng.uniform([2, 0], [16, 10], size=(150, 4, 2))
    frames = [(at(k * 0.2), ["a", "b", "c", "d"], positions[k]) for k in range(150)]

    def run(batch: int) -> FloorUpdates:
        activity = FloorActivity(SHOP)
        out = FloorUpdates()
        for i in range(0, len(frames), batch):
            out.extend(activity.update_many(frames[i : i + batch]))
        out.extend(activity.close())
        return out

    one, many = run(1), run(37)
    assert one == many
    assert one.zone_changes and one.crossings and one.occupancy  # the walk exercised them


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ids", "xy", "message"),
    [
        (["a", "b"], [[1.0, 1.0]], "2 person ids for 1 positions"),
        (["a"], [[np.nan, 1.0]], "finite"),
        (["a"], [[1.0, np.inf]], "finite"),
        (["a", "a"], [[1.0, 1.0], [2.0, 2.0]], "twice"),
        ([""], [[1.0, 1.0]], "non-empty strings"),
        (["a"], [1.0, 1.0], r"shape \(N, 2\)"),
        (["a"], [[1.0, 1.0, 1.0]], r"shape \(N, 2\)"),
    ],
)
def test_bad_frames_raise_clear_errors(ids: list[str], xy: Any, message: str) -> None:
    activity = FloorActivity(SHOP)
    with pytest.raises(ValueError, match=message):
        activity.update(at(0), ids, xy)
    assert activity.update(at(0), ["a"], [[11, 3]]).zone_changes  # state was left untouched


def test_frames_out_of_time_order_are_refused() -> None:
    activity = FloorActivity(SHOP)
    activity.update(at(1), ["a"], [[11, 3]])
    with pytest.raises(ValueError, match="not after the previous frame"):
        activity.update(at(0.5), ["a"], [[11, 3]])
    with pytest.raises(ValueError, match="not after the previous frame"):
        activity.update(at(1), ["a"], [[11, 3]])
    with pytest.raises(ValueError, match="before the last frame"):
        activity.close(at(0))


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        FloorActivity(SHOP).update(datetime(2026, 11, 2, 9), ["a"], [[1, 1]])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merge_gap_s", 0.0),
        ("lost_after_s", -1.0),
        ("occupancy_every_s", float("nan")),
        ("line_hysteresis_m", -0.1),
        ("line_min_frames", 0),
    ],
)
def test_config_refuses_nonsense(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        FloorConfig(**{field: value})
