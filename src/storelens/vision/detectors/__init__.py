"""Person detectors: one small adapter per backend (motion, onnx, ssdlite-person).

`detector_factory` picks one by name; each backend's heavy imports load only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storelens.core.layout import StoreLayout
    from storelens.vision.frames import Detector

__all__ = ["DETECTOR_NAMES", "detector_factory"]

DETECTOR_NAMES = ("ssdlite-person", "onnx", "motion")


def detector_factory(
    layout: StoreLayout, name: str, model: Path | None = None
) -> Callable[[str], Detector]:
    """Builds each camera's detector: ``motion`` learns that camera's background, ``onnx``
    runs ``model`` (tiled), ``ssdlite-person`` the installed default model."""
    if name == "motion":
        from storelens.vision.detectors.motion import MotionDetector
        from storelens.vision.geometry import CameraView

        def motion(camera_id: str) -> Detector:
            return MotionDetector(view=CameraView.from_camera(layout.camera(camera_id)))

        return motion
    if name == "onnx":
        if model is None:
            raise ValueError("--detector onnx needs --model PATH to an ONNX file")
        from storelens.vision.detectors.onnx import OnnxDetector

        return lambda _camera_id: OnnxDetector(model, tiles="auto")
    if name == "ssdlite-person":
        from storelens.vision.detectors.onnx import ssdlite_person

        return lambda _camera_id: ssdlite_person()
    raise ValueError(f"unknown detector {name!r}; use {', '.join(DETECTOR_NAMES)}")
