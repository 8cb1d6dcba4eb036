"""Person detectors: one small adapter per backend (motion, onnx, ssdlite-person).

`detector_factory` picks one by name; each backend's heavy imports load only when chosen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from storelens.core.errors import MissingExtra

if TYPE_CHECKING:
    from storelens.core.layout import StoreLayout
    from storelens.vision.frames import Detector

__all__ = ["DETECTOR_NAMES", "detector_factory", "parse_tiles", "read_background"]

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


def read_background(path: Path) -> npt.NDArray[np.uint8]:
    """An empty-shop picture for the motion detector, as BGR uint8."""
    try:
        import cv2
    except ImportError:
        raise MissingExtra("opencv-python", "vision") from None
    if not path.is_file():
        raise ValueError(f"no empty-shop picture at {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} is not a picture OpenCV can read")
    return np.asarray(image, np.uint8)


def detector_factory(
    layout: StoreLayout,
    name: str,
    model: Path | None = None,
    tiles: str = "auto",
    backgrounds: Mapping[str, Path] | None = None,
) -> Callable[[str], Detector]:
    """Builds each camera's detector: ``motion`` learns that camera's background (from its
    empty-shop picture in ``backgrounds`` when given, so it can start on a full room),
    ``onnx`` runs ``model`` (tiled), ``ssdlite-person`` the installed default model.
    People far from a 1280x720 camera need finer tiles than ``auto`` (e.g. ``3x2``)."""
    grid = parse_tiles(tiles)
    plates = dict(backgrounds or {})
    if plates and name != "motion":
        raise ValueError("an empty-shop background is for --detector motion only")
    if name == "motion":
        from storelens.core.camera import CameraView
        from storelens.vision.detectors.motion import MotionDetector

        pictures = {camera: read_background(path) for camera, path in plates.items()}

        def motion(camera_id: str) -> Detector:
            view = CameraView.from_camera(layout.camera(camera_id))
            queues = layout.zones_of_kind("queue")
            return MotionDetector(view=view, background=pictures.get(camera_id), queues=queues)

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
