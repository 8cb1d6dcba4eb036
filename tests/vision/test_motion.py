"""The motion detector on frames rendered from simulated walkers, scored on the floor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest
from scipy.optimize import linear_sum_assignment

from storelens.core.camera import CameraView
from storelens.core.layout import StoreLayout, load_layout
from storelens.sim.positions import POSITION_SCHEMA
from storelens.sim.render import CameraScene, render_camera
from storelens.sim.run import default_layout_path
from storelens.vision.detectors.motion import MotionDetector, split_wide_blob
from storelens.vision.frames import PERSON_CLASS_ID, Detector

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
WARMUP = 10


@pytest.fixture(scope="module")
def cafe() -> StoreLayout:
    return load_layout(default_layout_path())


@pytest.fixture(scope="module")
def counter(cafe: StoreLayout) -> CameraView:
    return CameraView.from_camera(cafe.camera("cam-counter"))


def walk(seconds: float, step_ms: int = 200) -> Iterator[tuple[int, str, float, float]]:
    """Four people at café pace, coming in after the camera has watched the empty shop for
    the warm-up: along the queue, the seating edge, the bar, and one slowly coming towards
    the camera from the pickup counter."""
    for ms in range(WARMUP * step_ms, round(seconds * 1000), step_ms):
        t = ms / 1000 - WARMUP * step_ms / 1000
        yield ms, "v-queue", 2.5 + 0.5 * t, 3.0
        yield ms, "v-seats", 12.5 - 0.5 * t, 4.4
        yield ms, "s-bar", 8.0 + 0.35 * t, 1.2
        yield ms, "v-pickup", 11.0, 2.4 + 0.15 * t


def walkers_table(seconds: float) -> pa.Table:
    rows = list(walk(seconds))
    base = round(T0.timestamp() * 1000)
    return pa.Table.from_pydict(
        {
            "ts": pa.array([base + r[0] for r in rows]).cast(pa.timestamp("ms", "UTC")),
            "track_id": [r[1] for r in rows],
            "x": [r[2] for r in rows],
            "y": [r[3] for r in rows],
            "zone_id": [None] * len(rows),
            "is_staff": [r[1].startswith("s-") for r in rows],
        },
        schema=POSITION_SCHEMA,
    )


def match(truth: np.ndarray, found: np.ndarray, within_m: float) -> np.ndarray:
    """Distances of a one-to-one floor matching, keeping pairs within ``within_m``."""
    if not len(truth) or not len(found):
        return np.zeros(0)
    cost = np.linalg.norm(truth[:, None, :] - found[None, :, :], axis=2)
    cost = np.where(np.isfinite(cost), cost, 1e6)
    rows, cols = linear_sum_assignment(cost)
    distances = cost[rows, cols]
    return np.asarray(distances[distances <= within_m], np.float64)


def test_finds_rendered_walkers_on_the_floor(cafe: StoreLayout, counter: CameraView) -> None:
    detector: Detector = MotionDetector(warmup_frames=WARMUP, view=counter)
    table = walkers_table(10.0)
    truth_by_ms: dict[int, np.ndarray] = {}
    for ms, _, x, y in walk(10.0):
        truth_by_ms.setdefault(ms, np.zeros((0, 2)))
        truth_by_ms[ms] = np.vstack([truth_by_ms[ms], [x, y]])
    seen = matched = found_total = 0
    errors: list[float] = []
    for frame in render_camera(table, cafe, "cam-counter", seed=1, start=T0):
        detections = detector.detect(frame.image)
        if frame.index < WARMUP:
            assert len(detections) == 0
            continue
        truth = truth_by_ms.get(round((frame.ts - T0).total_seconds() * 1000), np.zeros((0, 2)))
        truth = truth[counter.sees(truth)]
        found = counter.boxes_to_floor(detections.xyxy)
        hits = match(truth, found, within_m=0.5)
        seen, matched, found_total = (
            seen + len(truth),
            matched + len(hits),
            found_total + len(found),
        )
        errors.extend(hits.tolist())
        assert detections.class_id is not None and detections.confidence is not None
        assert set(detections.class_id.tolist()) <= {PERSON_CLASS_ID}
        assert np.all((detections.confidence > 0) & (detections.confidence <= 1))
    assert seen >= 4 * 35
    assert matched / seen >= 0.9, f"recall {matched / seen:.2f}"
    assert matched / found_total >= 0.9, f"precision {matched / found_total:.2f}"
    assert float(np.median(errors)) < 0.25


def test_two_people_side_by_side_are_split_with_a_view(counter: CameraView) -> None:
    scene = CameraScene(counter, seed=2)
    pair = [[6.6, 3.5], [7.15, 3.5]]
    for with_view, expected in ((True, 2), (False, 1)):
        detector = MotionDetector(warmup_frames=5, view=counter if with_view else None)
        for number in range(8):
            detector.detect(scene.draw([], None, number))
        detections = detector.detect(scene.draw(pair, ["a", "b"], 9))
        assert len(detections) == expected
        if with_view:
            feet = counter.boxes_to_floor(detections.xyxy)
            assert len(match(np.array(pair), feet, within_m=0.3)) == 2


def test_warm_up_and_a_still_empty_shop_give_nothing(counter: CameraView) -> None:
    scene = CameraScene(counter, seed=4)
    detector = MotionDetector(warmup_frames=5)
    assert len(detector.detect(scene.draw([[7.0, 3.0]], ["v"], 0))) == 0  # still learning
    found = [len(detector.detect(scene.draw([], None, n))) for n in range(1, 30)]
    assert sum(found[10:]) == 0  # sensor noise alone is not a person


def test_split_wide_blob_cuts_at_the_valley() -> None:
    one = np.full(30, 50)
    assert split_wide_blob(one, person_width=25) == [(0, 30)]
    two = np.r_[np.full(24, 60), np.full(3, 5), np.full(25, 60)]
    parts = split_wide_blob(two, person_width=25)
    assert len(parts) == 2 and 24 <= parts[0][1] <= 27 and parts[1] == (parts[0][1], 52)
    assert len(split_wide_blob(np.full(100, 40), person_width=25)) == 4
    assert len(split_wide_blob(np.full(1000, 40), person_width=25, max_people=6)) == 6
    assert split_wide_blob(one, person_width=0) == [(0, 30)]


def test_bad_frames_and_settings_are_refused() -> None:
    detector = MotionDetector()
    with pytest.raises(ValueError, match="BGR uint8"):
        detector.detect(np.zeros((48, 64), np.uint8))
    with pytest.raises(ValueError, match="BGR uint8"):
        detector.detect(np.zeros((48, 64, 3), np.float32))
    detector.detect(np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="frame size changed"):
        detector.detect(np.zeros((96, 128, 3), np.uint8))
    with pytest.raises(ValueError, match="history"):
        MotionDetector(history=0)
    with pytest.raises(ValueError, match="scale"):
        MotionDetector(scale=1.5)


class CountingModel:
    """A background model that counts its passes and the pixels it was asked to learn."""

    def __init__(self, model: object) -> None:
        self.model, self.passes, self.learnt = model, 0, []

    def apply(self, image: np.ndarray, learningRate: float) -> np.ndarray:  # noqa: N803
        self.passes += 1
        if learningRate != 0:
            self.learnt.append(image.copy())
        return self.model.apply(image, learningRate=learningRate)  # type: ignore[attr-defined]

    def getBackgroundImage(self) -> np.ndarray:  # noqa: N802
        return self.model.getBackgroundImage()  # type: ignore[attr-defined]


@pytest.mark.parametrize("held", [False, True])
def test_holding_people_costs_one_pass_per_learning_frame(held: bool) -> None:
    """Holding tracked people adds one background pass per learning frame, not per frame,
    and what is learnt under a held box is the background, not the person there."""
    from storelens.vision.detectors import motion

    shop = np.full((120, 160, 3), 90, np.uint8)
    person = shop.copy()
    person[40:100, 60:80] = (20, 20, 220)
    detector = MotionDetector(background=shop, min_area_px=10)
    counting = CountingModel(detector._model)
    detector._model = counting
    frames = 4 * motion._LEARN_EVERY
    for _ in range(frames):
        detector.detect(person)
        detector.hold([[60, 40, 80, 100]] if held else np.zeros((0, 4)))
    learning = frames // motion._LEARN_EVERY
    assert counting.passes == frames + (learning if held else 0)
    assert len(counting.learnt) == learning
    under = [image[20:50, 30:40] for image in counting.learnt]  # analysis scale 0.5
    if held:  # every learning frame comes after the first hold: the floor, not the person
        assert all(np.abs(u.astype(int) - 90).max() <= 2 for u in under)
    else:
        assert all((u == (20, 20, 220)).all() for u in under)
