"""Quality gates a face must pass before it is enrolled or compared.

A small, blurred or turned face gives an embedding far from the person's usual one:
at the entrance that is a missed member, at enrollment a poor reference for every
later visit. So both refuse such faces, for reasons a person can act on ("face too
small", "turned away") rather than a silent bad match. Pure numpy: the gates are
tested without dlib, on landmark coordinates and pixel arrays.

The 5 landmarks are dlib's ``shape_predictor_5_face_landmarks`` order: two corners of
one eye (0, 1), two of the other (2, 3), and the base of the nose (4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FaceGates", "Pose", "Verdict", "judge", "pose_of", "sharpness"]


@dataclass(frozen=True, slots=True)
class FaceGates:
    """Thresholds, from the settings (``faces_min_*``, ``faces_max_*``)."""

    min_face_px: int
    min_sharpness: float
    max_yaw: float
    max_roll_deg: float


@dataclass(frozen=True, slots=True)
class Pose:
    """Head pose read off the 5 landmarks.

    ``yaw`` is how far the nose sits off the eyes' midpoint along the eye line, as a
    share of the eye distance (0 facing the camera, about ±0.5 in full profile);
    ``roll_deg`` the tilt of the eye line.
    """

    yaw: float
    roll_deg: float


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a face may be used, and if not, every reason why."""

    reasons: tuple[str, ...]
    face_px: int
    sharpness: float
    pose: Pose

    @property
    def usable(self) -> bool:
        return not self.reasons


def pose_of(points: npt.ArrayLike) -> Pose:
    """Yaw and roll from the 5 landmarks ((5, 2) array of x, y in pixels)."""
    p = np.asarray(points, dtype=np.float64).reshape(5, 2)
    eyes = sorted((p[0:2].mean(axis=0), p[2:4].mean(axis=0)), key=lambda e: float(e[0]))
    left, right = eyes
    line = right - left
    distance = float(np.hypot(*line))
    if distance < 1e-6:  # both eyes on one pixel: no face we can judge
        return Pose(yaw=math.inf, roll_deg=math.inf)
    unit = line / distance
    yaw = float(np.dot(p[4] - (left + right) / 2, unit) / distance)
    roll = math.degrees(math.atan2(float(line[1]), float(line[0])))
    return Pose(yaw=yaw, roll_deg=roll)


def sharpness(gray: npt.ArrayLike) -> float:
    """Variance of the 4-neighbour Laplacian: low on blurred images, high on crisp ones.

    Measured on the aligned face chip (always the same size), so it compares faces of
    any size in the frame.
    """
    g = np.asarray(gray, dtype=np.float64)
    if g.ndim == 3:
        g = g @ np.array([0.299, 0.587, 0.114])[: g.shape[2]]
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    lap = g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def judge(face_px: int, chip: npt.ArrayLike, points: npt.ArrayLike, gates: FaceGates) -> Verdict:
    """Every gate at once, so a refusal lists all that is wrong with the face."""
    pose = pose_of(points)
    sharp = sharpness(chip)
    reasons: list[str] = []
    if face_px < gates.min_face_px:
        reasons.append(f"face too small ({face_px} px wide, at least {gates.min_face_px})")
    if sharp < gates.min_sharpness:
        reasons.append(
            f"face too blurred (sharpness {sharp:.0f}, at least {gates.min_sharpness:g})"
        )
    if not abs(pose.yaw) <= gates.max_yaw:
        reasons.append(f"face turned away (yaw {pose.yaw:+.2f}, at most ±{gates.max_yaw:g})")
    if not abs(pose.roll_deg) <= gates.max_roll_deg:
        reasons.append(
            f"head tilted (roll {pose.roll_deg:+.0f}°, at most ±{gates.max_roll_deg:g}°)"
        )
    return Verdict(tuple(reasons), face_px, sharp, pose)
