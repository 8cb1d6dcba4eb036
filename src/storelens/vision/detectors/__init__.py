"""Person detectors: one small adapter per backend (motion, onnx, ssdlite-person).

`detector_factory` picks one by name; each backend's heavy imports load only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from storelens.core.layout import StoreLayout
    from storelens.vision.frames import Detector

__all__ = ["DETECTOR_NAMES", "detector_factory", "parse_tiles"]

DETECTOR_NAMES = ("ssdlite-person", "onnx", "motion")


def parse_tiles(text: str) -> tuple[int, int] | Literal["auto"] | None:
    """``auto`` (as few tiles as keep the model's input from squeezing), ``none`` (the
    whole frame at once) or ``COLSxROWS`` such as ``3x2``."""
    word = text.strip().lower()
    if word in ("auto", "none"):
        return "auto" if word == "auto" else None
    cols, sep, rows = word.partition("x")
    if sep and cols.isdigit() and rows.isdigit() and 1 <= int(cols) <= 16 and 1 <= int(rows) <= 16:
        return int(cols), int(rows)
    raise ValueError(f"tiles must be auto, none or COLSxROWS (1 to 16 each), got {text!r}")


def detector_factory(
    layout: StoreLayout, name: str, model: Path | None = None, tiles: str = "auto"
) -> Callable[[str], Detector]:
    """Builds each camera's detector: ``motion`` learns that camera's background, ``onnx``
    runs ``model`` (tiled), ``ssdlite-person`` the installed default model. People far
    from a 1280x720 camera need finer tiles than ``auto`` (e.g. ``3x2``)."""
    grid = parse_tiles(tiles)
    if name == "motion":
        from storelens.core.camera import CameraView
        from storelens.vision.detectors.motion import MotionDetector

        def motion(camera_id: str) -> Detector:
            return MotionDetector(view=CameraView.from_camera(layout.camera(camera_id)))

        return motion
    if name == "onnx":
        if model is None:
            raise ValueError("--detector onnx needs --model PATH to an ONNX file")
        from storelens.vision.detectors.onnx import OnnxDetector

        return lambda _camera_id: OnnxDetector(model, tiles=grid)
    if name == "ssdlite-person":
        from storelens.vision.detectors.onnx import ssdlite_person

        return lambda _camera_id: ssdlite_person(tiles=grid)
    raise ValueError(f"unknown detector {name!r}; use {', '.join(DETECTOR_NAMES)}")
