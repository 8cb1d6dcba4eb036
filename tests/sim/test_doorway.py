"""Visits come in from the street and leave to it, and cameras only report what they see.

A door counter scores footfall against the truth's visits, and the vision pipeline is
scored against ``vision.track`` points, so both must be physically possible: every
visit starts and ends on the street side of the door line, crossing it once each way,
and every track point comes from a camera whose frame holds that spot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from storelens.core.camera import CameraView
from storelens.core.layout import CountLine, StoreLayout, load_layout
from storelens.sim import SimConfig, run_simulation

FPS = 5
STEP_MS = 200
HYSTERESIS_M = 0.3  # the vision door counter's neutral band either side of the line


@dataclass
class Day:
    layout: StoreLayout
    truth: dict[str, Any]
    events: list[dict[str, Any]]
    positions: pa.Table


def _ms(stamp: str) -> int:
    return round(datetime.fromisoformat(stamp).timestamp() * 1000)


@pytest.fixture(scope="module", params=["cafe.toml", "apparel.toml"])
def day(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Day:
    path = Path(str(files("storelens.samples").joinpath("layouts", request.param)))
    config = SimConfig(weekday_visits=90)  # a quiet Monday keeps the 5 fps file small
    out = tmp_path_factory.mktemp(f"doorway-{path.stem}")
    summary = run_simulation(path, 1, 5, out, positions_fps=FPS, config=config)
    assert summary.positions_path is not None
    events = [json.loads(line) for line in summary.events_path.open()]
    return Day(
        load_layout(path),
        json.loads(summary.truth_path.read_text()),
        events,
        pq.read_table(summary.positions_path),
    )


def _offsets(line: CountLine, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance from the line (positive on the street side) and share along it."""
    (ax, ay), (bx, by) = line.a, line.b
    dx, dy = bx - ax, by - ay
    length = np.hypot(dx, dy)
    offset = (dx * (y - ay) - dy * (x - ax)) / length
    along = ((x - ax) * dx + (y - ay) * dy) / length**2
    return offset, along


def _customer_rows(day: Day) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    table = day.positions.filter(pc.invert(day.positions.column("is_staff")))
    table = table.sort_by([("track_id", "ascending"), ("ts", "ascending")])
    ids = np.asarray(table.column("track_id").to_pylist())
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    x, y = table.column("x").to_numpy(), table.column("y").to_numpy()
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    return {str(ids[s]): (ts[s:e], x[s:e], y[s:e]) for s, e in zip(starts, ends, strict=True)}


def test_every_visit_starts_and_ends_outside_and_crosses_the_door_once_each_way(
    day: Day,
) -> None:
    door = day.layout.lines[0]
    rows = _customer_rows(day)
    visits = day.truth["visits"]
    assert len(visits) > 50 and set(rows) == {v["track_id"] for v in visits}
    for visit in visits:
        ts, x, y = rows[visit["track_id"]]
        enter, exit_ = _ms(visit["enter"]), _ms(visit["exit"])
        # The visit is exactly as long as the person is on the floor plan.
        assert ts[0] == -(-enter // STEP_MS) * STEP_MS and exit_ - STEP_MS <= ts[-1] < exit_
        offset, along = _offsets(door, x, y)
        assert offset[0] > HYSTERESIS_M and offset[-1] > HYSTERESIS_M, visit["track_id"]
        # Side changes, skipping samples exactly on the line, located by interpolation.
        off = offset != 0
        ts, offset, along = ts[off], offset[off], along[off]
        change = np.flatnonzero(np.sign(offset[1:]) != np.sign(offset[:-1]))
        share = offset[change] / (offset[change] - offset[change + 1])
        where = along[change] + share * (along[change + 1] - along[change])
        on_door = (where >= 0) & (where <= 1)
        assert on_door.sum() == 2, visit["track_id"]
        inward = offset[change[on_door]] > 0
        assert inward.tolist() == [True, False]
        # The truth's door times are when the person is on the line, to a few ms.
        when = ts[change] + share * (ts[change + 1] - ts[change])
        door_in, door_out = when[on_door]
        assert abs(door_in - _ms(visit["door_in"])) < 20
        assert abs(door_out - _ms(visit["door_out"])) < 20
        assert enter < _ms(visit["door_in"]) < _ms(visit["door_out"]) < exit_
        # Well clear of the counter's band on both sides: it settles before and after.
        assert offset.max() > HYSTERESIS_M and offset.min() < -HYSTERESIS_M


def test_staff_never_cross_the_door(day: Day) -> None:
    staff = day.positions.filter(day.positions.column("is_staff"))
    if day.layout.kind == "cafe":
        assert staff.num_rows > 0
    door = day.layout.lines[0]
    offset, _ = _offsets(door, staff.column("x").to_numpy(), staff.column("y").to_numpy())
    assert (offset < -HYSTERESIS_M).all()


def test_every_track_point_is_seen_by_its_camera_and_only_seen_points_are_sent(
    day: Day,
) -> None:
    views = {camera.id: CameraView.from_camera(camera) for camera in day.layout.cameras}
    tracks = [e for e in day.events if e["type"] == "vision.track"]
    assert len(tracks) > 1000
    by_camera: dict[str, list[tuple[float, float]]] = {}
    sent = set()
    for event in tracks:
        payload = event["payload"]
        by_camera.setdefault(payload["camera_id"], []).append((payload["x"], payload["y"]))
        sent.add((_ms(event["ts"]), payload["track_id"]))
    assert len(sent) == len(tracks)  # one point per person per instant
    for camera_id, points in by_camera.items():
        assert views[camera_id].sees(points).all(), camera_id
    # The 15 s grid of positions: a point goes out exactly where some camera sees it.
    table = day.positions
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    grid = ts % 15_000 == 0
    ids = np.asarray(table.column("track_id").to_pylist())[grid]
    points = np.column_stack([table.column("x").to_numpy(), table.column("y").to_numpy()])[grid]
    seen = np.zeros(len(points), dtype=bool)
    for view in views.values():
        seen |= view.sees(points)
    assert seen.sum() > 0  # the café's three cameras see its whole floor; apparel's do not
    expected = {(int(t), str(i)) for t, i, s in zip(ts[grid], ids, seen, strict=True) if s}
    assert sent == expected
