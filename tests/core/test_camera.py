"""Homography fitting, the image↔floor round trip and the person-size model."""

from __future__ import annotations

import numpy as np
import pytest

from storelens.core.camera import CameraView, fit_homography, foot_points, project
from storelens.core.layout import load_layout
from storelens.sim.run import default_layout_path


@pytest.fixture(scope="module")
def cafe_views() -> dict[str, CameraView]:
    layout = load_layout(default_layout_path())
    return {camera.id: CameraView.from_camera(camera) for camera in layout.cameras}


def test_four_pairs_fit_exactly(cafe_views: dict[str, CameraView]) -> None:
    layout = load_layout(default_layout_path())
    for camera in layout.cameras:
        view = cafe_views[camera.id]
        calibration = camera.calibration
        assert view.reprojection_error_px(calibration.image_points, calibration.floor_points) < 1e-6
        floor = view.to_floor(calibration.image_points)
        assert np.allclose(floor, calibration.floor_points, atol=1e-9)


def test_round_trip_over_the_visible_floor(cafe_views: dict[str, CameraView]) -> None:
    rng = np.random.default_rng(3)
    for view in cafe_views.values():
        pixels = rng.uniform([0, 200], [1280, 720], size=(500, 2))
        back = view.to_image(view.to_floor(pixels))
        assert np.abs(back - pixels).max() < 1e-6


def test_least_squares_with_noisy_extra_points() -> None:
    truth = np.array([[0.02, 0.001, -1.0], [0.0005, 0.03, -2.0], [0.00001, 0.0004, 1.0]])
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 1000, size=(12, 2))
    floor, _ = project(truth, pixels)
    noisy = floor + rng.normal(0, 0.005, floor.shape)
    fitted = fit_homography(pixels, noisy)
    estimate, _ = project(fitted, pixels)
    assert np.abs(estimate - floor).max() < 0.05  # metres, well inside clicking error


def test_person_boxes_stand_on_their_floor_point(cafe_views: dict[str, CameraView]) -> None:
    view = cafe_views["cam-entrance"]
    floor = np.array([[1.0, 4.5], [3.0, 4.0], [4.5, 6.5]])
    boxes = view.person_boxes(floor)
    assert np.allclose(view.to_floor(foot_points(boxes)), floor, atol=1e-9)
    heights = boxes[:, 3] - boxes[:, 1]
    widths = boxes[:, 2] - boxes[:, 0]
    assert (heights > widths).all() and (widths > 0).all()
    # Nearer the camera (x = 5 is under it; the door at x = 0 is far) people look bigger.
    near, far = view.person_boxes([[4.5, 5.0], [0.5, 5.0]])
    assert near[3] - near[1] > far[3] - far[1]


def test_sees_only_points_in_the_frame(cafe_views: dict[str, CameraView]) -> None:
    view = cafe_views["cam-entrance"]
    seen = view.sees([[1.0, 4.5], [13.0, 1.0], [-50.0, 4.5]])
    assert seen.tolist() == [True, False, False]


def test_points_behind_the_camera_are_nan(cafe_views: dict[str, CameraView]) -> None:
    view = cafe_views["cam-entrance"]
    # The horizon of this tilted view lies above the image; far up is behind the floor plane.
    horizon_y = -view.image_to_floor[2, 2] / view.image_to_floor[2, 1]
    floor = view.to_floor([[640, horizon_y - 50], [640, 600]])
    assert np.isnan(floor[0]).all() and np.isfinite(floor[1]).all()


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        ([[0, 0], [1, 0], [0, 1]], [[0, 0], [1, 0], [0, 1]], "at least 4"),
        ([[0, 0], [1, 0], [0, 1], [1, 1]], [[0, 0], [1, 0], [0, 1]], "4 source points for 3"),
        ([[0, 0], [1, 0], [2, 0], [3, 0]], [[0, 0], [1, 0], [0, 1], [1, 1]], "degenerate"),
        ([[0, 0], [1, 0], [0, 1], [np.nan, 1]], [[0, 0], [1, 0], [0, 1], [1, 1]], "NaN"),
        ([0, 1, 2, 3], [[0, 0], [1, 0], [0, 1], [1, 1]], "shape"),
    ],
)
def test_bad_calibrations_are_refused(source: object, target: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_homography(source, target)  # type: ignore[arg-type]


def test_sees_needs_a_resolution() -> None:
    view = CameraView.from_points(
        "c", [[0, 0], [10, 0], [10, 10], [0, 10]], [[0, 0], [1, 0], [1, 1], [0, 1]]
    )
    with pytest.raises(ValueError, match="no resolution"):
        view.sees([[0.5, 0.5]])
