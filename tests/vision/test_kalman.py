"""ScalarXYXYEstimator: ByteTrack's Kalman filter on floats gives ByteTrack's results.

Each test runs `trackers.ByteTrackTracker` twice on the same frames, once with the
stock numpy `XYXYStateEstimator` and once with the scalar one, and requires the same
tracker output frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import supervision as sv
from trackers import BIoU, ByteTrackTracker
from trackers.utils.state_representations import XYXYStateEstimator

from storelens.vision.kalman import ScalarXYXYEstimator
from storelens.vision.tracking import TrackingConfig


def bytetrack(estimator: type[XYXYStateEstimator]) -> ByteTrackTracker:
    cfg = TrackingConfig()
    return ByteTrackTracker(
        lost_track_buffer=cfg.lost_track_buffer,
        frame_rate=5.0,
        track_activation_threshold=cfg.activation_confidence,
        minimum_consecutive_frames=cfg.min_consecutive_frames,
        minimum_iou_threshold=cfg.min_overlap,
        high_conf_det_threshold=cfg.high_confidence,
        iou=BIoU(buffer_ratio=cfg.overlap_buffer),
        state_estimator_class=estimator,
    )


def noisy_crowd(people: int, frames: int, seed: int) -> Iterator[tuple[float, sv.Detections]]:
    """Walkers with box jitter, misses, low scores, false alarms and uneven frame gaps
    (clock jitter inside ByteTrack's near-nominal band, and real gaps outside it)."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform([50, 150], [1200, 650], (people, 2))
    heading = rng.normal(0, 8, (people, 2))
    t = 0.0
    for _ in range(frames):
        t += rng.choice([0.2, 0.2, 0.2, 0.201, 0.199, 0.4, 0.8])
        xy = xy + heading
        heading[(xy[:, 0] < 40) | (xy[:, 0] > 1240)] *= [-1, 1]
        heading[(xy[:, 1] < 150) | (xy[:, 1] > 700)] *= [1, -1]
        seen = rng.random(people) > 0.1
        feet_to_head = np.array([30.0, 150.0])
        boxes = np.c_[xy - feet_to_head, xy + feet_to_head * [1, 0]][seen]
        boxes += rng.normal(0, 2, boxes.shape)
        scores = rng.uniform(0.2, 1.0, seen.sum())
        alarms = rng.poisson(0.3)
        corner = rng.uniform([0, 0], [1200, 600], (alarms, 2))
        boxes = np.r_[boxes, np.c_[corner, corner + np.array([50.0, 140.0])]]
        scores = np.r_[scores, rng.uniform(0.2, 0.9, alarms)]
        yield t, sv.Detections(xyxy=boxes, confidence=scores)


@pytest.mark.parametrize(("people", "seed"), [(3, 0), (20, 1), (60, 2)])
def test_tracker_output_is_the_stock_filters(people: int, seed: int) -> None:
    stock, scalar = bytetrack(XYXYStateEstimator), bytetrack(ScalarXYXYEstimator)
    confirmed: set[int] = set()
    for t, found in noisy_crowd(people, 300, seed):
        want, got = stock.update(found, timestamp=t), scalar.update(found, timestamp=t)
        confirmed.update(int(i) for i in got.tracker_id if i >= 0)
        np.testing.assert_array_equal(got.tracker_id, want.tracker_id)
        np.testing.assert_array_equal(got.xyxy, want.xyxy)
        assert len(scalar.tracks) == len(stock.tracks)
        for a, b in zip(stock.tracks, scalar.tracks, strict=True):
            # every track ByteTrack has stepped runs on floats (new ones start next frame)
            assert b.state_estimator.scalar or b.age == 0
            np.testing.assert_allclose(b.get_state_bbox(), a.get_state_bbox(), rtol=0, atol=1e-6)
    assert len(confirmed) >= people  # the scene did make (and lose) tracks


def test_a_filter_not_in_block_form_runs_the_stock_code() -> None:
    box = np.array([10.0, 20.0, 50.0, 120.0])
    stock, scalar = XYXYStateEstimator(box), ScalarXYXYEstimator(box)
    uneven = np.diag([1.0, 2.0, 3.0, 4.0])  # per-coordinate measurement noise
    for estimator in (stock, scalar):
        estimator.set_kf_covariances(measurement_noise=uneven)
    for step in range(10):
        observed = box + step * np.array([3.0, 1.0, 3.0, 1.0])
        for estimator in (stock, scalar):
            estimator.predict(1.0, 5.0)
            estimator.update(observed)
    assert not scalar.scalar
    np.testing.assert_array_equal(scalar.state_to_bbox(), stock.state_to_bbox())


def test_state_snapshots_see_the_current_state_and_restore_it() -> None:
    box = np.array([10.0, 20.0, 50.0, 120.0])
    stock, scalar = XYXYStateEstimator(box), ScalarXYXYEstimator(box)
    for estimator in (stock, scalar):
        estimator.set_kf_covariances(
            measurement_noise=np.eye(4) * 0.1, process_noise=np.eye(8) * 0.01
        )

    def walk(estimator: XYXYStateEstimator, steps: range) -> None:
        for step in steps:
            estimator.predict(1.0 + (step % 3 == 0), 5.0)
            estimator.update(box + step * np.array([4.0, 2.0, 4.0, 2.0]))

    walk(stock, range(8))
    walk(scalar, range(8))
    assert scalar.scalar
    saved, want = scalar.get_state(), stock.get_state()
    np.testing.assert_allclose(saved["state"], want["state"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(
        saved["state_covariance"], want["state_covariance"], rtol=1e-12, atol=1e-12
    )
    walk(scalar, range(8, 12))
    scalar.set_state(saved)
    walk(scalar, range(8, 12))
    walk(stock, range(8, 12))
    assert scalar.scalar
    np.testing.assert_allclose(scalar.state_to_bbox(), stock.state_to_bbox(), atol=1e-9)
