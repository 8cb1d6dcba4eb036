"""Synthetic detections: the asked-for faults at the asked-for rates, and nothing else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import supervision as sv

from storelens.core.camera import CameraView, foot_points
from storelens.core.layout import StoreLayout, load_layout
from storelens.sim import detections as module
from storelens.sim.detections import DetectionNoise, IdSwitches, SyntheticDetections
from storelens.sim.positions import POSITION_SCHEMA
from storelens.sim.run import default_layout_path

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
STEP_MS = 200
# Three people cam-entrance sees, one at the bar it does not see.
SPOTS = {"p-a": (2.0, 5.0), "p-b": (3.0, 3.0), "p-c": (4.0, 6.0), "p-bar": (13.0, 1.0)}


@pytest.fixture(scope="module")
def layout() -> StoreLayout:
    return load_layout(default_layout_path())


def write_positions(path: Path, frames: int, spots: dict[str, tuple[float, float]]) -> Path:
    start = int(T0.timestamp() * 1000)
    rows: dict[str, list[object]] = {name: [] for name in POSITION_SCHEMA.names}
    for k in range(frames):
        for track_id, (x, y) in sorted(spots.items()):
            rows["ts"].append(start + k * STEP_MS)
            rows["track_id"].append(track_id)
            rows["x"].append(x + 0.01 * (k % 7))
            rows["y"].append(y)
            rows["zone_id"].append("seating")
            rows["is_staff"].append(False)
    columns = {name: rows[name] for name in POSITION_SCHEMA.names}
    columns["ts"] = pa.array(rows["ts"], pa.int64()).cast(POSITION_SCHEMA.field("ts").type)
    pq.write_table(pa.table(columns, schema=POSITION_SCHEMA), path)
    return path


@pytest.fixture(scope="module")
def positions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_positions(tmp_path_factory.mktemp("pos") / "positions.parquet", 2000, SPOTS)


def frames(source: SyntheticDetections) -> list[module.SyntheticFrame]:
    return list(source)


def test_miss_and_false_alarm_rates_are_as_asked(layout: StoreLayout, positions: Path) -> None:
    noise = DetectionNoise(miss_rate=0.1, false_positives_per_frame=0.5, seed=1)
    got = frames(SyntheticDetections(positions, layout, "cam-entrance", noise))
    assert len(got) == 2000
    real = sum(sum(i is not None for i in f.truth_ids) for f in got)
    fake = sum(sum(i is None for i in f.truth_ids) for f in got)
    assert abs(1 - real / (3 * 2000) - 0.1) < 0.015
    assert abs(fake / 2000 - 0.5) < 0.05


def test_default_false_alarm_rate(layout: StoreLayout, positions: Path) -> None:
    got = frames(SyntheticDetections(positions, layout, "cam-entrance", DetectionNoise(seed=2)))
    fake = sum(sum(i is None for i in f.truth_ids) for f in got)
    assert abs(fake / len(got) - 0.1) < 0.03


def test_only_people_in_view_appear_and_false_alarms_stand_in_view(
    layout: StoreLayout, positions: Path
) -> None:
    noise = DetectionNoise(miss_rate=0.0, false_positives_per_frame=1.0, jitter=0.0, seed=3)
    view = CameraView.from_camera(layout.camera("cam-entrance"))
    seen: set[str | None] = set()
    for frame in SyntheticDetections(positions, layout, "cam-entrance", noise):
        seen.update(frame.truth_ids)
        fake = np.array([i is None for i in frame.truth_ids])
        if fake.any():
            floor = view.boxes_to_floor(frame.detections.xyxy[fake])
            assert view.sees(floor, margin_px=-1.0).all()
        assert np.all(np.asarray(frame.detections.class_id) == 0)
        confidence = np.asarray(frame.detections.confidence)
        assert np.all((confidence > 0) & (confidence < 1))
    assert seen == {"p-a", "p-b", "p-c", None}


def test_jitter_is_bounded_by_box_size(layout: StoreLayout, positions: Path) -> None:
    noise = DetectionNoise(miss_rate=0.0, false_positives_per_frame=0.0, jitter=0.05, seed=4)
    view = CameraView.from_camera(layout.camera("cam-entrance"))
    shifts = []
    for frame in SyntheticDetections(positions, layout, "cam-entrance", noise):
        assert len(frame.truth_ids) == 3
        for box, track_id in zip(frame.detections.xyxy, frame.truth_ids, strict=True):
            x, _ = SPOTS[str(track_id)]
            assert track_id is not None
            k = (round(frame.ts.timestamp() * 1000) - round(T0.timestamp() * 1000)) // STEP_MS
            exact = view.person_boxes([(x + 0.01 * (k % 7), SPOTS[track_id][1])])[0]
            size = np.tile([exact[2] - exact[0], exact[3] - exact[1]], 2)
            shift = (box - np.clip(exact, 0, [1280, 720, 1280, 720])) / size
            shifts.append(shift)
    spread = np.array(shifts)
    assert np.abs(spread).max() <= 3 * 0.05 + 1e-9
    assert 0.045 < np.sqrt((spread**2).mean()) < 0.055  # really jittered, by the asked sigma


def test_no_noise_gives_the_exact_boxes(layout: StoreLayout, positions: Path) -> None:
    noise = DetectionNoise(miss_rate=0.0, false_positives_per_frame=0.0, jitter=0.0)
    view = CameraView.from_camera(layout.camera("cam-entrance"))
    first = next(iter(SyntheticDetections(positions, layout, "cam-entrance", noise)))
    assert first.ts == T0
    order = np.argsort(np.array(first.truth_ids, dtype=str))
    feet = view.to_floor(foot_points(first.detections.xyxy[order]))
    assert np.allclose(feet, [SPOTS["p-a"], SPOTS["p-b"], SPOTS["p-c"]], atol=1e-6)


def test_correlated_misses_keep_the_rate_but_come_in_runs(
    layout: StoreLayout, positions: Path
) -> None:
    noise = DetectionNoise(miss_rate=0.1, false_positives_per_frame=0.0, miss_persistence=0.8)
    got = frames(SyntheticDetections(positions, layout, "cam-entrance", noise))
    hidden = np.array([["p-a" not in f.truth_ids] for f in got]).ravel()
    assert abs(hidden.mean() - 0.1) < 0.04
    starts = np.flatnonzero(np.diff(np.r_[0, hidden.astype(int)]) == 1)
    mean_run = hidden.sum() / len(starts)
    assert 3.5 < mean_run < 7  # 1 / (1 - 0.8) = 5 frames; independent misses give ~1.1


def test_same_seed_same_frames_other_seed_other_frames(
    layout: StoreLayout, positions: Path
) -> None:
    def run(seed: int) -> list[tuple[datetime, bytes, tuple[str | None, ...]]]:
        source = SyntheticDetections(positions, layout, "cam-entrance", DetectionNoise(seed=seed))
        return [(f.ts, f.detections.xyxy.tobytes(), f.truth_ids) for f in source][:500]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_batches_do_not_change_the_frames(
    layout: StoreLayout, positions: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run() -> list[tuple[datetime, bytes, tuple[str | None, ...]]]:
        source = SyntheticDetections(positions, layout, "cam-entrance", DetectionNoise(seed=8))
        return [(f.ts, f.detections.xyxy.tobytes(), f.truth_ids) for f in source]

    whole = run()
    monkeypatch.setattr(module, "_BATCH_ROWS", 7)  # frames of 4 rows split across batches
    assert run() == whole


def test_window_and_frame_rate_fill_empty_frames(layout: StoreLayout, tmp_path: Path) -> None:
    path = write_positions(tmp_path / "p.parquet", 50, {"p-a": (2.0, 5.0)})
    start, end = T0 - timedelta(seconds=2), T0 + timedelta(seconds=20)
    noise = DetectionNoise(miss_rate=0.0, false_positives_per_frame=0.0)
    got = frames(
        SyntheticDetections(path, layout, "cam-entrance", noise, fps=2.5, start=start, end=end)
    )
    assert [f.ts for f in got] == [start + timedelta(milliseconds=400 * k) for k in range(55)]
    occupied = [len(f.detections) for f in got]
    assert occupied == [0] * 5 + [1] * 25 + [0] * 25  # 50 frames at 5 fps is 10 s of p-a


def test_window_skips_frames_outside(layout: StoreLayout, positions: Path) -> None:
    start, end = T0 + timedelta(seconds=10), T0 + timedelta(seconds=12)
    source = SyntheticDetections(positions, layout, "cam-entrance", start=start, end=end)
    assert [f.ts for f in source] == [start + timedelta(milliseconds=200 * k) for k in range(10)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"miss_rate": 1.0}, "miss_rate"),
        ({"miss_rate": -0.1}, "miss_rate"),
        ({"false_positives_per_frame": float("nan")}, "false_positives"),
        ({"jitter": -0.01}, "jitter"),
        ({"jitter": 0.9}, "jitter"),
        ({"miss_persistence": 1.0}, "miss_persistence"),
        ({"miss_rate": 0.8, "miss_persistence": 0.1}, "too low"),
    ],
)
def test_bad_noise_is_refused(fields: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DetectionNoise(**fields)  # type: ignore[arg-type]


def test_bad_sources_are_refused(layout: StoreLayout, positions: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no positions file"):
        SyntheticDetections(tmp_path / "none.parquet", layout, "cam-entrance")
    with pytest.raises(ValueError, match="no camera 'cam-x'"):
        SyntheticDetections(positions, layout, "cam-x")
    with pytest.raises(ValueError, match="time zone"):
        SyntheticDetections(positions, layout, "cam-entrance", start=datetime(2026, 11, 2))
    with pytest.raises(ValueError, match="before end"):
        SyntheticDetections(positions, layout, "cam-entrance", start=T0, end=T0)
    with pytest.raises(ValueError, match="fps"):
        SyntheticDetections(positions, layout, "cam-entrance", fps=0)
    with pytest.raises(ValueError, match="every 200 ms"):
        list(SyntheticDetections(positions, layout, "cam-entrance", fps=3))
    pq.write_table(pa.table({"ts": [1, 2]}), tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="lacks columns"):
        list(SyntheticDetections(tmp_path / "bad.parquet", layout, "cam-entrance"))


def tracked(ids: list[int]) -> sv.Detections:
    n = len(ids)
    boxes = np.tile([0.0, 0.0, 10.0, 20.0], (n, 1))
    return sv.Detections(xyxy=boxes, tracker_id=np.array(ids, dtype=int))


def test_id_switches_rename_a_track_for_good() -> None:
    switches = IdSwitches(rate_per_minute=6.0, seed=1)  # one every 10 s on average
    outputs = []
    for k in range(600):  # two minutes at 5 fps
        frame = tracked([1, 2, -1])
        out = switches(T0 + timedelta(milliseconds=200 * k), frame)
        assert np.asarray(frame.tracker_id).tolist() == [1, 2, -1]  # input untouched
        outputs.append(np.asarray(out.tracker_id).tolist())
    assert 4 <= len(switches.switches) <= 25
    assert all(out[2] == -1 for out in outputs)  # unconfirmed tracks are never switched
    for switch in switches.switches:
        assert switch.tracker_id in (1, 2)
        assert switch.after >= 1_000_000_000
        k = round((switch.ts - T0) / timedelta(milliseconds=200))
        column = [1, 2].index(switch.tracker_id)
        assert outputs[k][column] == switch.after
        assert k == 0 or outputs[k - 1][column] == switch.before
    final = {s.tracker_id: s.after for s in switches.switches}
    assert outputs[-1][:2] == [final.get(1, 1), final.get(2, 2)]


def test_id_switches_are_deterministic_and_zero_rate_is_identity() -> None:
    def run(rate: float, seed: int) -> list[list[int]]:
        switches = IdSwitches(rate, seed)
        times = (T0 + timedelta(seconds=k) for k in range(300))
        return [np.asarray(switches(t, tracked([3, 4])).tracker_id).tolist() for t in times]

    assert run(2.0, 9) == run(2.0, 9)
    assert run(2.0, 9) != run(2.0, 10)
    assert run(0.0, 9) == [[3, 4]] * 300


def test_id_switches_refuse_bad_input() -> None:
    with pytest.raises(ValueError, match="rate_per_minute"):
        IdSwitches(-1.0)
    switches = IdSwitches(1.0)
    untracked = sv.Detections(xyxy=np.zeros((1, 4)))
    assert switches(T0, untracked) is untracked
    with pytest.raises(ValueError, match="time order"):
        switches(T0 - timedelta(seconds=1), tracked([1]))
    with pytest.raises(ValueError, match="time zone"):
        switches(datetime(2026, 11, 2, 10), tracked([1]))
