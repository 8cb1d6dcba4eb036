"""Where frames come from: video files, live RTSP/HTTP cameras, webcams, or memory.

Every source is an iterator of `Frame`s sampled at the pipeline's fps, with ``close()``
and running `SourceStats`. Files are read in media time, so a recording analyses the same
way however fast the machine is. Live cameras (`storelens.vision.live`) keep only the
newest frame and reconnect with backoff. `open_source` picks one from a layout's source
string; the building blocks (`storelens.vision.capture`) are re-exported here.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storelens.core.errors import MissingExtra
from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock
from storelens.vision.capture import (
    Capture,
    CaptureOpener,
    FrameSource,
    SourceStats,
    SourceUnavailable,
    as_bgr,
    redact,
)
from storelens.vision.frames import Frame
from storelens.vision.live import LiveSource

__all__ = [
    "Backoff",
    "Capture",
    "CaptureOpener",
    "FileSource",
    "FrameSource",
    "FramesSource",
    "LiveSource",
    "SourceStats",
    "SourceUnavailable",
    "open_source",
]

_STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})
_CAP_PROP_POS_MSEC = 0
_CAP_PROP_FPS = 5
_CAP_PROP_FRAME_COUNT = 7


class FramesSource(FrameSource):
    """Frames already in memory (rendered scenes, tests), passed through unchanged."""

    def __init__(self, frames: Iterable[Frame]) -> None:
        self.stats = SourceStats()
        self._frames = iter(frames)
        self._closed = False

    def __next__(self) -> Frame:
        if self._closed:
            raise StopIteration
        frame = next(self._frames)
        self.stats.frames_read += 1
        self.stats.frames_emitted += 1
        return frame

    def close(self) -> None:
        self._closed = True
        closer = getattr(self._frames, "close", None)
        if callable(closer):
            closer()


class FileSource(FrameSource):
    """A recording sampled at ``fps`` by its own timestamps: ``ts = start + media time``."""

    def __init__(
        self, path: Path, *, fps: float, start: datetime | None, opener: CaptureOpener
    ) -> None:
        self.stats = SourceStats()
        self.path = path
        self._period_ms = 1000.0 / fps
        self._capture = opener(str(path))
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceUnavailable(f"cannot decode video file {str(path)!r}")
        self._file_fps = self._capture.get(_CAP_PROP_FPS)
        self.start = start if start is not None else self._recording_start()
        self._next_ms = 0.0
        self._last_ms = -math.inf
        self._index = 0
        self._closed = False

    def _recording_start(self) -> datetime:
        """A camera writes its file as it records, so mtime marks the end: step back by the
        duration. Frame count and fps come from the container and may be missing (then 0)."""
        finished = datetime.fromtimestamp(self.path.stat().st_mtime, UTC)
        frames = self._capture.get(_CAP_PROP_FRAME_COUNT)
        if self._file_fps > 0 and frames > 0:
            return finished - timedelta(seconds=frames / self._file_fps)
        return finished

    def _media_ms(self) -> float:
        """The container's timestamp of the frame just read; by count if it has none."""
        ms = self._capture.get(_CAP_PROP_POS_MSEC)
        if not ms > self._last_ms:
            fps = self._file_fps if self._file_fps > 0 else 25.0
            ms = max(self._last_ms + 1000.0 / fps, 0.0)
        self._last_ms = ms
        return ms

    def __next__(self) -> Frame:
        while not self._closed:
            ok, picture = self._capture.read()
            if not ok or picture is None:
                self.close()
                break
            self.stats.frames_read += 1
            ms = self._media_ms()
            if ms + 0.5 < self._next_ms:  # half a ms of slack for rounded container stamps
                self.stats.frames_dropped += 1
                continue
            # Keep the grid; after a gap in the file, restart it at this frame.
            self._next_ms = max(self._next_ms + self._period_ms, ms + self._period_ms / 2)
            frame = Frame(self._index, self.start + timedelta(milliseconds=ms), as_bgr(picture))
            self._index += 1
            self.stats.frames_emitted += 1
            return frame
        raise StopIteration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._capture.release()


def _opencv_opener(read_timeout_s: float) -> CaptureOpener:
    try:
        import cv2
    except ImportError:
        raise MissingExtra("opencv-python", "vision") from None
    timeout_ms = int(read_timeout_s * 1000)

    def opener(target: str | int) -> Capture:
        if isinstance(target, int):
            return cv2.VideoCapture(target)
        if "://" in target:  # let FFmpeg give up on a dead host instead of hanging
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms]
            params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        return cv2.VideoCapture(target)

    return opener


def open_source(
    spec: str,
    *,
    fps: float,
    start: datetime | None = None,
    opener: CaptureOpener | None = None,
    read_timeout_s: float = 10.0,
    backoff: Backoff | None = None,
    max_retries: int | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> FrameSource:
    """Open a camera as the layout names it: a file path (or ``file://``), an ``rtsp(s)://``
    or ``http(s)://`` URL, or a webcam index such as ``"0"``.

    ``start`` (timezone-aware) anchors timestamps: for files it defaults to when the
    recording began (file mtime less its duration), for live cameras to the clock.
    ``max_retries`` bounds reopen attempts in a row; None retries forever. ``backoff``
    (:class:`~storelens.core.retry.Backoff`) and ``clock`` pace live reconnects.
    """
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps!r}")
    if start is not None and start.utcoffset() is None:
        raise ValueError("start must be timezone-aware (e.g. datetime(..., tzinfo=UTC))")
    spec = spec.strip()
    if not spec:
        raise ValueError("empty video source; give a file path, a camera URL or an index")
    open_capture = opener or _opencv_opener(read_timeout_s)
    scheme, sep, rest = spec.partition("://")

    def live(target: str | int) -> LiveSource:
        return LiveSource(
            target,
            fps=fps,
            start=start,
            opener=open_capture,
            read_timeout_s=read_timeout_s,
            backoff=backoff,
            max_retries=max_retries,
            clock=clock,
        )

    if sep:
        scheme = scheme.lower()
        if scheme in _STREAM_SCHEMES:
            return live(spec)
        if scheme != "file":
            raise ValueError(
                f"unsupported video source scheme {scheme!r} in {redact(spec)!r}; "
                "use rtsp://, rtsps://, http(s)://, file://, a path or a webcam index"
            )
        spec = rest
    elif spec.isdigit():
        return live(int(spec))
    path = Path(os.path.expanduser(spec))
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {str(path)!r}")
    return FileSource(path, fps=fps, start=start, opener=open_capture)
