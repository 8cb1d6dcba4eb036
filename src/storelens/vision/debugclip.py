"""An opt-in debug clip: what a camera saw, with every person blurred beyond recognition.

Frames normally live in memory only and nothing visual reaches the disk. When an installer
needs to check a camera's aim, zones or tracking, `DebugClip` writes the processed frames
as MJPG ``.avi`` files, one per camera per UTC hour (``<camera>-<YYYYMMDD>T<HH>Z.avi``),
after covering every detected person's box (enlarged a little, since detector boxes clip
heads and elbows) with a coarse mosaic and a Gaussian blur. The mosaic throws detail away
for good, which a plain blur does not, so neither faces nor clothing can be recovered.
Optionally each box is labelled with its anonymous track token and floor zone.

Files are created owner-only (0600), and the folder too (0700) when it is new. Clips past
the retention are deleted when a clip opens and whenever a new hour's file starts, so the
folder never holds more than about ``retention_hours`` of footage. A person the detector
missed is not blurred: this is a tool for short supervised checks, off by default.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from storelens.core.camera import CameraView
from storelens.core.errors import MissingExtra
from storelens.vision.frames import Frame
from storelens.vision.tracking import PERSON_ID_KEY
from storelens.vision.zones import ZoneMap

if TYPE_CHECKING:
    import supervision as sv

    from storelens.core.layout import StoreLayout

__all__ = ["DebugClip", "DebugClips", "blur_people", "purge_debug_clips"]

Image = npt.NDArray[np.uint8]
CLIP_NAME = re.compile(r"(?P<camera>[A-Za-z0-9][A-Za-z0-9._-]*)-\d{8}T\d{2}Z(?:-\d+)?\.avi")
"""Only files named like this are ever deleted, whatever else shares the folder."""
_CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_MOSAIC_CELLS = 12
"""Mosaic cells along a box's longer side: a face ends up one or two flat blocks."""
_LABEL = (0, 200, 0)


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise MissingExtra("opencv-python", "vision") from None
    return cv2


def _check_kernel(kernel: int) -> None:
    if isinstance(kernel, bool) or not isinstance(kernel, int) or kernel < 3 or kernel % 2 == 0:
        raise ValueError(f"blur_kernel must be an odd number of pixels >= 3, got {kernel!r}")


def _enlarged(
    xyxy: npt.ArrayLike, enlarge: float, width: int, height: int
) -> list[tuple[int, int, int, int]]:
    """Boxes grown by ``enlarge`` of their size on each side, rounded outwards, clipped."""
    boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    grown = boxes + np.column_stack([-w, -h, w, h]) * enlarge
    out = []
    for x1, y1, x2, y2 in grown[np.isfinite(grown).all(axis=1)].tolist():
        left, top = max(0, math.floor(x1)), max(0, math.floor(y1))
        right, bottom = min(width, math.ceil(x2)), min(height, math.ceil(y2))
        if right > left and bottom > top:
            out.append((left, top, right, bottom))
    return out


def blur_people(
    image: Image, xyxy: npt.ArrayLike, *, kernel: int = 31, enlarge: float = 0.15
) -> Image:
    """A copy of ``image`` with each person box (grown by ``enlarge``) mosaicked and blurred;
    pixels outside every grown box are left exactly as they were."""
    _check_kernel(kernel)
    if not (math.isfinite(enlarge) and 0 <= enlarge <= 1):
        raise ValueError(f"enlarge must be a fraction in [0, 1], got {enlarge!r}")
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        shape = getattr(image, "shape", image)
        raise ValueError(f"expected a BGR uint8 image (h, w, 3), got {shape!r}")
    cv2 = _cv2()
    out = image.copy()
    height, width = image.shape[:2]
    for x1, y1, x2, y2 in _enlarged(xyxy, enlarge, width, height):
        w, h = x2 - x1, y2 - y1
        cell = max(2.0, max(w, h) / _MOSAIC_CELLS)
        small = cv2.resize(
            out[y1:y2, x1:x2], (max(1, round(w / cell)), max(1, round(h / cell))),
            interpolation=cv2.INTER_AREA,
        )  # fmt: skip
        blocks = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(blocks, (kernel, kernel), 0)
    return out


def purge_debug_clips(
    directory: str | Path, retention_hours: float, *, now: float | None = None
) -> list[Path]:
    """Delete debug clips last written more than ``retention_hours`` ago; returns them.

    Only files named as `DebugClip` names them are touched. ``now`` is a Unix time (tests).
    """
    if not (math.isfinite(retention_hours) and retention_hours > 0):
        raise ValueError(f"retention_hours must be a positive number, got {retention_hours!r}")
    folder = Path(directory)
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - retention_hours * 3600
    gone = []
    for path in sorted(folder.iterdir()):
        if not CLIP_NAME.fullmatch(path.name) or not path.is_file():
            continue
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                gone.append(path)
        except FileNotFoundError:  # another process purged it first
            continue
    return gone


class DebugClip:
    """One camera's debug clip; see the module notes. Use it in a ``with`` block.

    ``layout`` (optional) lets labels name the floor zone under each person's feet.
    """

    def __init__(
        self,
        directory: str | Path,
        camera_id: str,
        *,
        fps: float,
        retention_hours: float = 24.0,
        blur_kernel: int = 31,
        enlarge: float = 0.15,
        labels: bool = True,
        layout: StoreLayout | None = None,
    ) -> None:
        if not isinstance(camera_id, str) or not _CAMERA_ID.fullmatch(camera_id):
            raise ValueError(
                f"camera id {camera_id!r} cannot name a file; use letters, digits, .-_"
            )
        if not (isinstance(fps, int | float) and math.isfinite(fps) and 0 < fps <= 60):
            raise ValueError(f"fps must be in (0, 60], got {fps!r}")
        _check_kernel(blur_kernel)
        if not (math.isfinite(enlarge) and 0 <= enlarge <= 1):
            raise ValueError(f"enlarge must be a fraction in [0, 1], got {enlarge!r}")
        self.directory, self.camera_id, self.fps = Path(directory), camera_id, float(fps)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"debug clip folder {self.directory} is a file")
        self.retention_hours, self.blur_kernel, self.enlarge = retention_hours, blur_kernel, enlarge
        self.labels = labels
        self._view: CameraView | None = None
        self._zones: ZoneMap | None = None
        if layout is not None:
            self._view = CameraView.from_camera(layout.camera(camera_id))
            self._zones = ZoneMap(layout.zones)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        purge_debug_clips(self.directory, retention_hours)
        self.path: Path | None = None
        """The file being written, once the first frame has come."""
        self._writer: Any = None
        self._key: tuple[str, tuple[int, ...]] | None = None
        self.frames = 0

    def write(self, frame: Frame, tracked: sv.Detections) -> Path:
        """Blur (and label) ``frame``'s people, append it to the hour's file; returns the file."""
        image = frame.image
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            shape = getattr(image, "shape", image)
            raise ValueError(f"expected a BGR uint8 frame (h, w, 3), got {shape!r}")
        if frame.ts.utcoffset() is None:
            raise ValueError(f"frame time {frame.ts.isoformat()} has no timezone")
        hour = frame.ts.astimezone(UTC).strftime("%Y%m%dT%HZ")
        key = (hour, image.shape)
        if key != self._key:
            self._open(hour, image.shape[1], image.shape[0])
            self._key = key
        picture = blur_people(image, tracked.xyxy, kernel=self.blur_kernel, enlarge=self.enlarge)
        if self.labels and len(tracked):
            self._label(picture, tracked)
        self._writer.write(picture)
        self.frames += 1
        assert self.path is not None
        return self.path

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer, self._key = None, None

    def __enter__(self) -> DebugClip:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _open(self, hour: str, width: int, height: int) -> None:
        """Start a new owner-only file (never overwriting an earlier one), then purge."""
        cv2 = _cv2()
        self.close()
        stem, n = f"{self.camera_id}-{hour}", 1
        while True:
            path = self.directory / (f"{stem}.avi" if n == 1 else f"{stem}-{n}.avi")
            try:  # created 0600 before OpenCV opens it, so it is never readable by others
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                break
            except FileExistsError:
                n += 1
        writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter.fourcc(*"MJPG"), self.fps, (width, height)
        )
        if not writer.isOpened():
            path.unlink(missing_ok=True)
            raise OSError(f"cannot write a debug clip to {path}")
        os.chmod(path, 0o600)
        self._writer, self.path = writer, path
        purge_debug_clips(self.directory, self.retention_hours)  # spares the new file

    def _label(self, image: Image, tracked: sv.Detections) -> None:
        cv2 = _cv2()
        ids = tracked.data.get(PERSON_ID_KEY, tracked.tracker_id)
        if ids is None:
            ids = ["?"] * len(tracked)
        zones = self._zone_names(tracked.xyxy)
        height, width = image.shape[:2]
        font = cv2.FONT_HERSHEY_SIMPLEX
        for i, (pid, zone) in enumerate(zip(ids, zones, strict=True)):
            box = _enlarged(tracked.xyxy[i : i + 1], self.enlarge, width, height)
            if not box:
                continue
            x1, y1, x2, y2 = box[0]
            cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), _LABEL, 1)
            text = str(pid).rpartition(":")[2][:8] + (f" {zone}" if zone else "")
            cv2.putText(image, text, (x1, max(12, y1 - 4)), font, 0.45, _LABEL, 1, cv2.LINE_AA)

    def _zone_names(self, xyxy: npt.ArrayLike) -> Sequence[str | None]:
        boxes = np.asarray(xyxy, np.float64).reshape(-1, 4)
        if self._view is None or self._zones is None:
            return [None] * len(boxes)
        inside = self._zones.inside(self._view.boxes_to_floor(boxes))
        names = self._zones.zone_ids
        return [names[int(row.argmax())] if row.any() else None for row in inside]


class DebugClips:
    """Debug clips for several cameras, called as the pipeline's ``on_frame`` hook."""

    def __init__(
        self,
        directory: str | Path,
        layout: StoreLayout,
        camera_ids: Sequence[str],
        *,
        fps: float,
        retention_hours: float = 24.0,
        blur_kernel: int = 31,
    ) -> None:
        self.clips: dict[str, DebugClip] = {}
        for camera_id in camera_ids:
            self.clips[camera_id] = DebugClip(
                directory, camera_id, fps=fps, retention_hours=retention_hours,
                blur_kernel=blur_kernel, layout=layout,
            )  # fmt: skip

    def __call__(self, camera_id: str, frame: Frame, tracked: sv.Detections) -> None:
        clip = self.clips.get(camera_id)
        if clip is None:
            raise ValueError(f"no debug clip for camera {camera_id!r}; has {list(self.clips)}")
        clip.write(frame, tracked)

    def close(self) -> None:
        for clip in self.clips.values():
            clip.close()
