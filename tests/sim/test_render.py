"""Rendering simulated people into one camera's frames, where the geometry says they stand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storelens.core.camera import CameraView
from storelens.core.layout import StoreLayout, load_layout
from storelens.sim import render
from storelens.sim.positions import POSITION_SCHEMA
from storelens.sim.render import CameraScene, render_camera, synthetic_frame
from storelens.sim.run import default_layout_path

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cafe() -> StoreLayout:
    return load_layout(default_layout_path())


@pytest.fixture(scope="module")
def counter(cafe: StoreLayout) -> CameraView:
    return CameraView.from_camera(cafe.camera("cam-counter"))


def positions(rows: list[tuple[int, str, float, float]]) -> pa.Table:
    """(ms after T0, id, x, y) rows as positions.parquet holds them."""
    base = round(T0.timestamp() * 1000)
    columns = {
        "ts": pa.array([base + r[0] for r in rows], pa.int64()).cast(pa.timestamp("ms", "UTC")),
        "track_id": [r[1] for r in rows],
        "x": [r[2] for r in rows],
        "y": [r[3] for r in rows],
        "zone_id": [None] * len(rows),
        "is_staff": [False] * len(rows),
    }
    return pa.Table.from_pydict(columns, schema=POSITION_SCHEMA)


def walkers(seconds: float = 4.0, step_ms: int = 200) -> pa.Table:
    rows = []
    for t in range(0, round(seconds * 1000), step_ms):
        rows.append((t, "v-a", 4.0 + t / 1000, 3.0))
        rows.append((t, "v-b", 11.0 - t / 1000, 4.0))
    return positions(rows)


def test_person_is_drawn_where_the_geometry_says(counter: CameraView) -> None:
    scene = CameraScene(counter, seed=3)
    spot = [[7.0, 3.0]]
    empty, one = scene.draw([]), scene.draw(spot, ["v-1"])
    changed = np.abs(one.astype(int) - empty.astype(int)).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    box = counter.person_boxes(spot)[0]
    assert abs(xs.min() - box[0]) <= 2 and abs(xs.max() - box[2]) <= 2
    assert abs(ys.min() - box[1]) <= 2 and abs(ys.max() - box[3]) <= 2
    foot_x, foot_y = counter.to_image(spot)[0]
    assert changed[round(foot_y) - 3, round(foot_x)]  # the legs reach the foot point
    assert not changed[: int(box[1]) - 3].any()  # nothing drawn above the head


def test_people_the_camera_cannot_see_are_not_drawn(counter: CameraView) -> None:
    scene = CameraScene(counter)
    out_of_view = [[0.5, 8.5], [13.9, 8.9]]  # window seats: the entrance camera's side
    assert not counter.sees(out_of_view).any()
    assert np.array_equal(scene.draw(out_of_view, ["a", "b"]), scene.draw([]))


def test_near_people_occlude_far_ones(counter: CameraView) -> None:
    near, far = [7.0, 4.6], [7.0, 4.0]
    boxes = counter.person_boxes([near, far])
    assert boxes[0, 1] < boxes[1, 3]  # the boxes overlap in the image
    scene = CameraScene(counter)
    for order in (["near", "far"], ["far", "near"]):
        points = [near, far] if order[0] == "near" else [far, near]
        image = scene.draw(points, order)
        shirt = np.array(render._palette("near", 0)[0])
        torso = (
            round((boxes[0, 0] + boxes[0, 2]) / 2),
            round(boxes[0, 1] + 0.37 * (boxes[0, 3] - boxes[0, 1])),
        )
        assert np.abs(image[torso[1], torso[0]].astype(int) - shirt).max() <= 8


def test_frames_in_time_order_at_the_requested_fps(cafe: StoreLayout) -> None:
    frames = list(render_camera(walkers(), cafe, "cam-counter", fps=2.5))
    # positions run 0..3.8 s; the frame at 4.0 s still shows the last ones (3.8 s)
    assert [f.index for f in frames] == list(range(11))
    assert [f.ts for f in frames] == [T0 + timedelta(milliseconds=400 * i) for i in range(11)]
    assert frames[0].image.shape == (720, 1280, 3) and frames[0].image.dtype == np.uint8
    camera_fps = list(render_camera(walkers(), cafe, "cam-counter"))  # the layout's 5 fps
    assert len(camera_fps) == 20


def test_empty_stretches_become_empty_frames(cafe: StoreLayout, counter: CameraView) -> None:
    table = positions([(0, "v-a", 7.0, 3.0), (200, "v-a", 7.1, 3.0), (1000, "v-a", 7.2, 3.0)])
    frames = list(
        render_camera(table, cafe, "cam-counter", start=T0, end=T0 + timedelta(seconds=2))
    )
    assert len(frames) == 10
    empty = CameraScene(counter, layout=cafe).draw([], None, 2)
    assert np.array_equal(frames[2].image, empty)
    assert not np.array_equal(frames[5].image, CameraScene(counter, layout=cafe).draw([], None, 5))


def test_deterministic_for_a_seed(cafe: StoreLayout) -> None:
    def run(seed: int) -> list[np.ndarray]:
        return [f.image for f in render_camera(walkers(1.0), cafe, "cam-counter", seed=seed)]

    first, again, other = run(5), run(5), run(6)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_parquet_read_in_small_batches_matches_the_table(
    cafe: StoreLayout, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = walkers(3.0)
    path = tmp_path / "positions.parquet"
    pq.write_table(table, path, row_group_size=9)  # moments split across groups and batches
    monkeypatch.setattr(render, "_BATCH_ROWS", 5)
    start, end = T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)
    from_file = list(
        render_camera(path, default_layout_path(), "cam-counter", start=start, end=end)
    )
    from_table = list(render_camera(table, cafe, "cam-counter", start=start, end=end))
    assert [f.ts for f in from_file] == [
        T0 + timedelta(milliseconds=1000 + 200 * i) for i in range(5)
    ]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(from_file, from_table, strict=True))


def test_photos_paste_real_people_into_the_box(counter: CameraView) -> None:
    scene = CameraScene(counter, mode="photos")
    spot = [[7.0, 4.0]]
    image, empty = scene.draw(spot, ["v-1"]), scene.draw([])
    changed = np.abs(image.astype(int) - empty.astype(int)).sum(axis=2) > 30
    x1, y1, x2, y2 = counter.person_boxes(spot)[0]
    inside = changed[int(y1) : int(y2), int(x1) : int(x2)]
    assert inside.mean() > 0.3
    assert changed.sum() <= 1.5 * (x2 - x1) * (y2 - y1)  # nothing far outside the box
    picture = synthetic_frame(counter, spot, person_ids=["v-1"], mode="photos")
    assert np.array_equal(picture, image)


def test_bad_input_is_refused(cafe: StoreLayout, counter: CameraView) -> None:
    unsorted = positions([(200, "a", 7.0, 3.0), (0, "a", 7.0, 3.0)])
    with pytest.raises(ValueError, match="sorted by time"):
        list(render_camera(unsorted, cafe, "cam-counter"))
    sparse = positions([(0, "a", 7.0, 3.0), (1000, "a", 7.0, 3.0), (2000, "a", 7.0, 3.0)])
    with pytest.raises(ValueError, match="positions-fps"):
        list(render_camera(sparse, cafe, "cam-counter", fps=5))
    with pytest.raises(KeyError, match="cam-roof"):
        render_camera(walkers(), cafe, "cam-roof")
    with pytest.raises(ValueError, match="mode"):
        render_camera(walkers(), cafe, "cam-counter", mode="cartoon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone-aware"):
        render_camera(walkers(), cafe, "cam-counter", start=datetime(2026, 11, 2))
    with pytest.raises(ValueError, match="end must be after start"):
        render_camera(walkers(), cafe, "cam-counter", start=T0, end=T0)
    with pytest.raises(ValueError, match="fps must be positive"):
        render_camera(walkers(), cafe, "cam-counter", fps=0)
    with pytest.raises(ValueError, match="2 person ids for 1 floor points"):
        CameraScene(counter).draw([[7.0, 3.0]], ["a", "b"])
    with pytest.raises(ValueError, match="BGR image"):
        CameraScene(counter, background=np.zeros((720, 1280), np.uint8))
    blind = CameraView(counter.camera_id, counter.image_to_floor, counter.floor_to_image)
    with pytest.raises(ValueError, match="no resolution"):
        CameraScene(blind)


def test_a_given_background_is_used_and_resized(counter: CameraView) -> None:
    shop = np.full((360, 640, 3), 90, np.uint8)
    scene = CameraScene(counter, background=shop)
    assert scene.background.shape == (720, 1280, 3)
    frame = scene.draw([])
    assert abs(float(frame.mean()) - 90) < 1.0  # only the sensor noise on top
