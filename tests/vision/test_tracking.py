"""PersonTracker: ByteTrack from ``trackers`` behind anonymous, per-camera-day person ids.

Everything runs for real (trackers and supervision are installed); scenes are synthetic
boxes, so each test knows exactly who is where.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import supervision as sv

from storelens.vision.tracking import PERSON_ID_KEY, PersonTracker, TrackingConfig

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FPS = 5.0
BOX_W, BOX_H = 60.0, 150.0


def boxes(centres: Sequence[tuple[float, float]], conf: float = 0.9, cls: int = 0) -> sv.Detections:
    if not centres:
        return sv.Detections.empty()
    c = np.asarray(centres, dtype=np.float32)
    xyxy = np.c_[c[:, 0] - BOX_W / 2, c[:, 1] - BOX_H / 2, c[:, 0] + BOX_W / 2, c[:, 1] + BOX_H / 2]
    n = len(c)
    return sv.Detections(
        xyxy=xyxy.astype(np.float32),
        confidence=np.full(n, conf, dtype=np.float32),
        class_id=np.full(n, cls, dtype=int),
    )


def at(frame: int, fps: float = FPS) -> datetime:
    return T0 + timedelta(seconds=frame / fps)


def run(
    tracker: PersonTracker, frames: Sequence[Sequence[tuple[float, float]]]
) -> list[sv.Detections]:
    return [tracker.update(boxes(c), at(i, tracker.fps)) for i, c in enumerate(frames)]


def ids_of(result: sv.Detections) -> list[str]:
    return [str(p) for p in result.data.get(PERSON_ID_KEY, [])]


def test_config_defaults_express_the_lost_buffer_in_seconds() -> None:
    cfg = TrackingConfig()
    assert cfg.lost_track_buffer == round(cfg.lost_track_s * 30)
    assert TrackingConfig(lost_track_s=2.0).lost_track_buffer == 60
    assert TrackingConfig(lost_track_s=0).lost_track_buffer == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lost_track_s": -1.0},
        {"lost_track_s": float("nan")},
        {"activation_confidence": 1.5},
        {"high_confidence": -0.1},
        {"min_overlap": 2.0},
        {"min_consecutive_frames": 0},
        {"overlap_buffer": -0.2},
        {"overlap_buffer": float("inf")},
    ],
)
def test_config_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TrackingConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("camera_id", "fps"), [("", 5.0), ("cam a", 5.0), (" cam", 5.0), ("cam", 0.0), ("cam", -5.0)]
)
def test_tracker_rejects_bad_camera_or_rate(camera_id: str, fps: float) -> None:
    with pytest.raises(ValueError):
        PersonTracker(camera_id, fps)


def test_two_walkers_get_two_stable_ids_and_only_confirmed_tracks_leave() -> None:
    tracker = PersonTracker("cam-entrance", FPS, rng=random.Random(7))
    frames = [[(200 + 25 * i, 300), (900 - 25 * i, 420)] for i in range(15)]
    results = run(tracker, frames)
    assert len(results[0]) == 0, "a one-frame track must not be confirmed yet"
    for r in results:
        assert r.tracker_id is not None
        assert np.all(r.tracker_id >= 0)
        assert len(ids_of(r)) == len(r)
    seen = {p for r in results[1:] for p in ids_of(r)}
    assert len(seen) == 2
    for r in results[1:]:
        assert len(r) == 2
        # Each person id stays with the box that walks left to right (or right to left).
        left_to_right = ids_of(r)[int(np.argmin(r.xyxy[:, 1]))]
        assert left_to_right == ids_of(results[1])[int(np.argmin(results[1].xyxy[:, 1]))]
    pattern = re.compile(r"^cam-entrance:[0-9a-f]{12}$")
    assert all(pattern.match(p) for p in seen)


def test_seeded_ids_repeat_and_different_seeds_differ() -> None:
    frames = [[(300 + 20 * i, 300)] for i in range(6)]
    a = {p for r in run(PersonTracker("cam", FPS, rng=random.Random(1)), frames) for p in ids_of(r)}
    b = {p for r in run(PersonTracker("cam", FPS, rng=random.Random(1)), frames) for p in ids_of(r)}
    c = {p for r in run(PersonTracker("cam", FPS, rng=random.Random(2)), frames) for p in ids_of(r)}
    d = {p for r in run(PersonTracker("cam", FPS), frames) for p in ids_of(r)}
    assert a == b
    assert len(a) == 1
    assert a != c
    assert len(d) == 1
    assert a != d


def test_a_new_day_starts_a_new_token_space() -> None:
    berlin = timezone(timedelta(hours=1))
    tracker = PersonTracker("cam", FPS, rng=random.Random(3), day_tz=berlin)
    # 22:59:58 UTC is 23:59:58 in Berlin: the walk crosses the store's midnight.
    start = datetime(2026, 3, 2, 22, 59, 58, tzinfo=UTC)
    before: set[str] = set()
    after: set[str] = set()
    for i in range(20):
        ts = start + timedelta(seconds=i / FPS)
        result = tracker.update(boxes([(300 + 10 * i, 300)]), ts)
        (before if ts.astimezone(berlin).day == 2 else after).update(ids_of(result))
        assert tracker.day == ts.astimezone(berlin).date()
    assert len(before) == 1
    assert len(after) == 1
    assert before != after


def test_other_classes_are_ignored() -> None:
    tracker = PersonTracker("cam", FPS, rng=random.Random(4))
    for i in range(5):
        dets = sv.Detections.merge([boxes([(300, 300)]), boxes([(800, 300)], cls=3)])
        result = tracker.update(dets, at(i))
    assert len(result) == 1
    assert result.xyxy[0, 0] == pytest.approx(300 - BOX_W / 2)


def test_occlusion_shorter_than_the_lost_buffer_keeps_the_person() -> None:
    # One second unseen at 5 fps is five frames: ByteTrack's 30 fps defaults would scale
    # that wrongly if the real rate and capture times were not passed through.
    walk = [[(300 + 20 * i, 300)] if not 6 <= i < 11 else [] for i in range(16)]
    kept = {
        p for r in run(PersonTracker("cam", FPS, rng=random.Random(5)), walk) for p in ids_of(r)
    }
    assert len(kept) == 1
    short = PersonTracker("cam", FPS, TrackingConfig(lost_track_s=0.4), rng=random.Random(5))
    lost = {p for r in run(short, walk) for p in ids_of(r)}
    assert len(lost) == 2


def test_a_brisk_walk_at_five_fps_keeps_one_id() -> None:
    # 50 px a frame on a 60 px wide box: plain IoU of consecutive boxes is 0.09.
    walk = [[(150 + 50 * i, 300)] for i in range(20)]
    buffered = {
        p for r in run(PersonTracker("cam", FPS, rng=random.Random(6)), walk) for p in ids_of(r)
    }
    assert len(buffered) == 1
    plain = PersonTracker("cam", FPS, TrackingConfig(overlap_buffer=0.0), rng=random.Random(6))
    plain_ids = [ids_of(r) for r in run(plain, walk)]
    assert sum(len(i) for i in plain_ids) < len(walk) - 1, "plain IoU should lose this walker"


def test_empty_frames_return_an_empty_but_well_formed_result() -> None:
    tracker = PersonTracker("cam", FPS)
    result = tracker.update(sv.Detections.empty(), T0)
    assert len(result) == 0
    assert result.tracker_id is not None
    assert len(result.tracker_id) == 0
    assert ids_of(result) == []


def test_bad_input_is_refused() -> None:
    tracker = PersonTracker("cam", FPS)
    with pytest.raises(ValueError, match="timezone-aware"):
        tracker.update(boxes([(1, 1)]), datetime(2026, 3, 2, 9, 0))
    tracker.update(boxes([(300, 300)]), at(5))
    with pytest.raises(ValueError, match="increase"):
        tracker.update(boxes([(300, 300)]), at(4))
    with pytest.raises(ValueError, match="increase"):
        tracker.update(boxes([(300, 300)]), at(5))
    nan_box = boxes([(300, 300)])
    nan_box.xyxy[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        tracker.update(nan_box, at(6))
    bad_conf = boxes([(300, 300)])
    assert bad_conf.confidence is not None
    bad_conf.confidence[0] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        tracker.update(bad_conf, at(7))
    with pytest.raises(TypeError):
        tracker.update(np.zeros((1, 4)), at(8))  # type: ignore[arg-type]


@pytest.mark.parametrize("people", [20, 100])
def test_per_frame_cost_in_a_crowd(people: int) -> None:
    """Prints the per-frame cost (see it with ``pytest -s``); speed is asserted nowhere."""
    rng = np.random.default_rng(people)
    grid = np.stack(np.meshgrid(np.arange(10) * 120 + 80, np.arange(10) * 70 + 40), -1)
    start = grid.reshape(-1, 2)[:people].astype(float)
    heading = rng.uniform(-1, 1, size=(people, 2)) * 4
    tracker = PersonTracker("cam", FPS, rng=random.Random(0))
    frames = 30
    spent = 0.0
    for i in range(frames):
        centres = start + heading * i + rng.normal(0, 1.0, size=start.shape)
        dets = boxes([(float(x), float(y)) for x, y in centres])
        began = time.perf_counter()
        result = tracker.update(dets, at(i))
        spent += time.perf_counter() - began
    print(f"\nPersonTracker: {people} people, {1000 * spent / frames:.2f} ms/frame")
    assert len(result) == people
    assert len(set(ids_of(result))) == people
