"""The two contracts every vision stage shares: a frame in, columnar detections out.

Detections are ``supervision.Detections`` (boxes ``xyxy`` in pixels, ``confidence``,
``class_id``, and ``tracker_id`` once tracked), so detector adapters, the ByteTrack
tracker from the ``trackers`` package and our zone logic all pass the same type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import supervision as sv

__all__ = [
    "PERSON_CLASS_ID",
    "Detector",
    "Frame",
    "check_next_time",
    "check_settings",
]

PERSON_CLASS_ID = 0
"""Detectors report people as class 0 whatever their model's own label map says."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded picture: BGR ``uint8`` of shape (height, width, 3), held in memory only."""

    index: int
    ts: datetime
    image: npt.NDArray[np.uint8]


class Detector(Protocol):
    """Finds people in a frame. Implementations filter to people and apply their own NMS."""

    name: str

    def detect(self, image: npt.NDArray[np.uint8]) -> sv.Detections: ...


def check_next_time(ts: object, last: datetime | None, what: str = "frame") -> datetime:
    """Refuse a naive or non-increasing time before any tracking state changes: every
    stage measures gaps in event time, and a clock that goes back would corrupt them."""
    if not isinstance(ts, datetime) or ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"ts must be a timezone-aware datetime, got {ts!r}")
    if last is not None and ts <= last:
        raise ValueError(f"{what} times must increase: {ts.isoformat()} after {last.isoformat()}")
    return ts


def check_settings(config: object, *names: str) -> None:
    """Settings that are distances, speeds or durations: finite numbers >= 0."""
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
