"""Camera pixels ↔ floor-plan metres, through each camera's calibrated homography.

A person's position is the foot point of their box (bottom centre): the feet touch the
floor plane the homography describes, while the head does not. Zones, lines and heatmaps
all live in floor coordinates, so two cameras looking at one spot agree on where it is.

The inverse direction (floor → image) is what the simulator uses to render people and to
make synthetic detections, with `CameraView.person_boxes` as the one model of how big a
standing person looks at a given spot, so rendering and scoring share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from storelens.core.layout import Camera

__all__ = ["CameraView", "FloatArray", "fit_homography", "foot_points", "project"]

FloatArray = npt.NDArray[np.float64]

_PERSON_HEIGHT_M = 1.7
_PERSON_WIDTH_M = 0.5


def _as_points(points: npt.ArrayLike, name: str = "points") -> FloatArray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"{name} must have shape (n, 2), got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _normaliser(points: FloatArray) -> FloatArray:
    """Hartley normalisation: centre on the mean, mean distance √2, so the SVD is stable."""
    centre = points.mean(axis=0)
    spread = np.sqrt(((points - centre) ** 2).sum(axis=1)).mean()
    scale = np.sqrt(2.0) / spread if spread > 0 else 1.0
    return np.array(
        [[scale, 0.0, -scale * centre[0]], [0.0, scale, -scale * centre[1]], [0.0, 0.0, 1.0]]
    )


def fit_homography(source: npt.ArrayLike, target: npt.ArrayLike) -> FloatArray:
    """Least-squares homography mapping ``source`` points onto ``target`` (normalised DLT).

    Four pairs fit exactly; more pairs average out clicking errors in the calibration.
    """
    src, dst = _as_points(source, "source"), _as_points(target, "target")
    if len(src) != len(dst):
        raise ValueError(f"{len(src)} source points for {len(dst)} target points")
    if len(src) < 4:
        raise ValueError(f"a homography needs at least 4 point pairs, got {len(src)}")
    t_src, t_dst = _normaliser(src), _normaliser(dst)
    a = np.c_[src, np.ones(len(src))] @ t_src.T
    b = np.c_[dst, np.ones(len(dst))] @ t_dst.T
    rows = []
    for (x, y, _), (u, v, _) in zip(a, b, strict=True):
        rows.append([-x, -y, -1.0, 0.0, 0.0, 0.0, u * x, u * y, u])
        rows.append([0.0, 0.0, 0.0, -x, -y, -1.0, v * x, v * y, v])
    _, singular, vt = np.linalg.svd(np.asarray(rows))
    if singular[-2] < 1e-12:
        raise ValueError("the point pairs are degenerate (three or more on one line)")
    h = vt[-1].reshape(3, 3)
    h = np.linalg.inv(t_dst) @ h @ t_src
    return np.asarray(h / h[2, 2], dtype=np.float64)


def project(h: FloatArray, points: npt.ArrayLike) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Apply a homography; also say which points land in front of the camera (w > 0)."""
    array = _as_points(points)
    w = array @ h[2, :2] + h[2, 2]
    front = w > 1e-12
    safe = np.where(front, w, 1.0)
    out = np.empty_like(array)
    out[:, 0] = (array @ h[0, :2] + h[0, 2]) / safe
    out[:, 1] = (array @ h[1, :2] + h[1, 2]) / safe
    return out, front


def _inverse(h: FloatArray) -> FloatArray:
    return np.asarray(np.linalg.inv(h), dtype=np.float64)


def foot_points(xyxy: npt.ArrayLike) -> FloatArray:
    """Bottom centre of each box: where the person stands."""
    boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, boxes[:, 3]])


@dataclass(frozen=True)
class CameraView:
    """One calibrated camera: its homographies both ways and its frame size."""

    camera_id: str
    image_to_floor: FloatArray
    floor_to_image: FloatArray
    resolution: tuple[int, int] | None = None

    @classmethod
    def from_camera(cls, camera: Camera) -> CameraView:
        calibration = camera.calibration
        h = fit_homography(calibration.image_points, calibration.floor_points)
        return cls(camera.id, h, _inverse(h), camera.resolution)

    @classmethod
    def from_points(
        cls,
        camera_id: str,
        image_points: Sequence[Sequence[float]],
        floor_points: Sequence[Sequence[float]],
        resolution: tuple[int, int] | None = None,
    ) -> CameraView:
        h = fit_homography(image_points, floor_points)
        return cls(camera_id, h, _inverse(h), resolution)

    def to_floor(self, pixels: npt.ArrayLike) -> FloatArray:
        """Pixel positions (foot points) to floor metres; points above the horizon are NaN."""
        floor, front = project(self.image_to_floor, pixels)
        floor[~front] = np.nan
        return floor

    def to_image(self, floor: npt.ArrayLike) -> FloatArray:
        """Floor metres to pixels; points behind the camera are NaN."""
        pixels, front = project(self.floor_to_image, floor)
        pixels[~front] = np.nan
        return pixels

    def boxes_to_floor(self, xyxy: npt.ArrayLike) -> FloatArray:
        return self.to_floor(foot_points(xyxy))

    def reprojection_error_px(
        self, image_points: npt.ArrayLike, floor_points: npt.ArrayLike
    ) -> float:
        """Largest pixel distance between marked points and their floor points mapped back."""
        back = self.to_image(floor_points)
        return float(np.nanmax(np.linalg.norm(back - _as_points(image_points), axis=1)))

    def pixels_per_metre(self, floor: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Local scale of the floor→image map at each point (square root of the Jacobian)."""
        points = _as_points(floor)
        step = 0.05
        centre = self.to_image(points)
        dx = self.to_image(points + np.array([step, 0.0])) - centre
        dy = self.to_image(points + np.array([0.0, step])) - centre
        det = np.abs(dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0])
        return np.asarray(np.sqrt(det) / step, dtype=np.float64)

    def person_boxes(
        self,
        floor: npt.ArrayLike,
        height_m: float = _PERSON_HEIGHT_M,
        width_m: float = _PERSON_WIDTH_M,
    ) -> FloatArray:
        """Boxes a standing person at each floor point fills, with the feet at the bottom centre.

        A homography knows only the floor plane, so a person's pixel size is the local floor
        scale times their size in metres: right for the tilted ceiling views the layouts
        describe, and exact in the one thing that matters, `foot_points(boxes)` mapping back
        to the same floor points.
        """
        feet = self.to_image(floor)
        scale = self.pixels_per_metre(floor)
        half_width = width_m * scale / 2.0
        height = height_m * scale
        return np.column_stack(
            [feet[:, 0] - half_width, feet[:, 1] - height, feet[:, 0] + half_width, feet[:, 1]]
        )

    def sees(self, floor: npt.ArrayLike, margin_px: float = 0.0) -> npt.NDArray[np.bool_]:
        """Which floor points this camera sees: in front of it and with the feet in the frame."""
        if self.resolution is None:
            raise ValueError(f"camera {self.camera_id!r} has no resolution in the layout")
        width, height = self.resolution
        pixels = self.to_image(floor)
        with np.errstate(invalid="ignore"):
            inside = (
                (pixels[:, 0] >= margin_px)
                & (pixels[:, 0] <= width - margin_px)
                & (pixels[:, 1] >= margin_px)
                & (pixels[:, 1] <= height - margin_px)
            )
        return np.asarray(inside & np.isfinite(pixels).all(axis=1))
