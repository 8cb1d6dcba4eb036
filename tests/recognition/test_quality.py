"""The quality gates on landmark coordinates and pixels: no dlib needed."""

from __future__ import annotations

import numpy as np
import pytest

from storelens.recognition.quality import FaceGates, judge, pose_of, sharpness

GATES = FaceGates(min_face_px=60, min_sharpness=20.0, max_yaw=0.35, max_roll_deg=25.0)
# eye corners (outer, inner) x2 and the nose base, for a face looking at the camera
FRONTAL = np.array([[100, 100], [80, 100], [20, 100], [40, 100], [60, 140]], dtype=float)


def _rotate(points: np.ndarray, degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (points - 60) @ r.T + 60


def test_a_frontal_face_has_no_yaw_or_roll() -> None:
    pose = pose_of(FRONTAL)
    assert pose.yaw == pytest.approx(0.0)
    assert pose.roll_deg == pytest.approx(0.0)


def test_a_turned_head_moves_the_nose_towards_one_eye() -> None:
    turned = FRONTAL.copy()
    turned[4, 0] += 40  # nose 40 px towards one eye; eye centres 60 px apart
    assert pose_of(turned).yaw == pytest.approx(40 / 60)
    verdict = judge(100, np.random.default_rng(0).integers(0, 255, (150, 150)), turned, GATES)
    assert not verdict.usable
    assert any("turned away" in r for r in verdict.reasons)


def test_a_tilted_head_is_roll_whatever_order_the_eyes_come_in() -> None:
    tilted = _rotate(FRONTAL, 30)
    assert pose_of(tilted).roll_deg == pytest.approx(30.0, abs=1e-6)
    assert pose_of(tilted[[2, 3, 0, 1, 4]]).roll_deg == pytest.approx(30.0, abs=1e-6)
    assert pose_of(tilted).yaw == pytest.approx(0.0, abs=1e-9)


def test_eyes_on_one_point_is_never_usable() -> None:
    degenerate = np.zeros((5, 2))
    verdict = judge(100, np.full((150, 150), 128), degenerate, GATES)
    assert not verdict.usable


def test_blur_lowers_sharpness_below_the_gate() -> None:
    rng = np.random.default_rng(1)
    crisp = rng.integers(0, 255, (150, 150)).astype(float)
    blurred = crisp.copy()
    for _ in range(8):  # a box blur, repeated
        blurred = (
            blurred
            + np.roll(blurred, 1, 0)
            + np.roll(blurred, -1, 0)
            + np.roll(blurred, 1, 1)
            + np.roll(blurred, -1, 1)
        ) / 5
    assert sharpness(crisp) > 100 * sharpness(blurred)
    verdict = judge(100, np.full((150, 150), 100.0), FRONTAL, GATES)  # a flat patch
    assert verdict.reasons == ("face too blurred (sharpness 0, at least 20)",)


def test_every_failing_gate_is_reported_together() -> None:
    turned = _rotate(FRONTAL, 40)
    turned[4, 0] += 50
    verdict = judge(30, np.full((150, 150), 100.0), turned, GATES)
    assert len(verdict.reasons) == 4
    assert verdict.face_px == 30


def test_sharpness_of_tiny_or_colour_images() -> None:
    assert sharpness(np.zeros((2, 2))) == 0.0
    rgb = np.random.default_rng(2).integers(0, 255, (20, 20, 3)).astype(np.uint8)
    assert sharpness(rgb) > 0
