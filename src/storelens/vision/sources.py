"""Where frames come from: video files, live RTSP/HTTP cameras, webcams, or memory.

Every source is an iterator of `Frame`s sampled at the pipeline's fps, with ``close()``
and running `SourceStats`. Files are read in media time, so a recording analyses the same
way however fast the machine is. Live cameras are read by a thread that keeps only the
newest frame in a single slot: when analysis is slower than the camera, old frames are
dropped rather than queued, so the pipeline never lags the shop by more than a frame and
memory holds one picture. A camera that dies or stalls is reopened with jittered
exponential backoff, for as long as it takes (a shop's Wi-Fi comes back eventually).

The capture is opened through an injectable ``opener`` returning a small `Capture`
(what ``cv2.VideoCapture`` offers), so tests and other decoders can stand in for OpenCV.
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from storelens.core.errors import StorelensError
from storelens.vision.frames import Frame, missing_extra

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


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a source uses."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's spelling

    def read(self) -> tuple[bool, Any]: ...

    def release(self) -> None: ...

    def get(self, prop: int) -> float: ...


CaptureOpener = Callable[[str | int], Capture]
"""Opens a file path, stream URL or webcam index; returns a capture that may not be open."""


class SourceUnavailable(StorelensError, ConnectionError):
    """A camera or file could not be opened or decoded (after retrying, for live ones)."""


@dataclass
class SourceStats:
    """Running counts, updated by the reader thread of live sources (ints: safe to read)."""

    frames_read: int = 0
    """Pictures decoded from the capture."""
    frames_emitted: int = 0
    """Frames handed to the pipeline."""
    frames_dropped: int = 0
    """Decoded but not handed on: skipped to keep the fps, or overwritten in the slot."""
    reconnects: int = 0
    """Times a live source came back after dying or stalling."""
    failed_opens: int = 0
    """Reopen attempts that failed (each followed by a longer wait)."""
    stalls: int = 0
    """Times a live source delivered nothing for ``read_timeout_s``."""
    recent_backoffs_s: deque[float] = field(default_factory=lambda: deque(maxlen=32))
    """The last waits before reopening, newest last."""


class Backoff:
    """Exponential delays with "equal jitter": each wait lies in [d/2, d] for d = base·2ⁿ.

    Half fixed, half random keeps many cameras from reconnecting in lockstep after a
    router restart, while the waits still never shrink from one attempt to the next.
    """

    def __init__(
        self, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None
    ) -> None:
        if not (base_s > 0 and cap_s >= base_s):
            raise ValueError(f"backoff needs 0 < base_s <= cap_s, got {base_s}, {cap_s}")
        self.base_s, self.cap_s = base_s, cap_s
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(self.cap_s, self.base_s * 2.0**self.attempt)
        self.attempt += 1
        return ceiling / 2.0 + self._rng.uniform(0.0, ceiling / 2.0)

    def reset(self) -> None:
        self.attempt = 0


class FrameSource(ABC):
    """An iterator of frames that must be closed; use it in a ``with`` block."""

    stats: SourceStats

    def __iter__(self) -> Iterator[Frame]:
        return self

    @abstractmethod
    def __next__(self) -> Frame: ...

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


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


def _image(frame: Any) -> npt.NDArray[np.uint8]:
    image = np.asarray(frame)
    if image.ndim == 2:  # some webcams and fakes give grey; the contract is BGR
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image, dtype=np.uint8)


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
            frame = Frame(self._index, self.start + timedelta(milliseconds=ms), _image(picture))
            self._index += 1
            self.stats.frames_emitted += 1
            return frame
        raise StopIteration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._capture.release()


@dataclass
class _Slot:
    """The newest frame and its number; ``generation`` tells stale reader threads to quit."""

    number: int = -1
    read_at: float = 0.0
    image: npt.NDArray[np.uint8] | None = None
    generation: int = 0
    failed_generation: int = -1


class LiveSource(FrameSource):
    """A camera read by a background thread into a single newest-frame slot.

    A supervisor thread owns the capture: it starts a reader per connection and reopens
    when the reader reports a failed read or nothing arrives for ``read_timeout_s``. A
    reader stuck inside a blocking ``read()`` is abandoned (it releases its capture and
    exits when the call returns) because OpenCV cannot interrupt it from another thread.
    Frame indices count every picture decoded, so skipped ones show as gaps.
    """

    def __init__(
        self,
        target: str | int,
        *,
        fps: float,
        start: datetime | None,
        opener: CaptureOpener,
        read_timeout_s: float = 10.0,
        backoff: Backoff | None = None,
        max_retries: int | None = None,
    ) -> None:
        if not read_timeout_s > 0:
            raise ValueError(f"read_timeout_s must be positive, got {read_timeout_s}")
        self.stats = SourceStats()
        self.target = target
        self._period_s = 1.0 / fps
        self._opener = opener
        self._read_timeout_s = read_timeout_s
        self._backoff = backoff or Backoff()
        self._max_retries = max_retries
        self._opened_at = time.monotonic()
        self._start = start
        self._cond = threading.Condition()
        self._slot = _Slot()
        self._closing = threading.Event()
        self._gave_up: str | None = None
        self._last_number = -1
        self._due = time.monotonic()
        first = self._open()
        if first is None:
            raise SourceUnavailable(f"cannot open camera {_redact(target)!r}")
        self._supervisor = threading.Thread(
            target=self._supervise, args=(first,), name=f"camera-{_redact(target)}", daemon=True
        )
        self._supervisor.start()

    def _open(self) -> Capture | None:
        capture = self._opener(self.target)
        if capture.isOpened():
            return capture
        capture.release()
        return None

    def _stamp(self, read_at: float) -> datetime:
        if self._start is not None:
            return self._start + timedelta(seconds=read_at - self._opened_at)
        return datetime.now(UTC) - timedelta(seconds=time.monotonic() - read_at)

    def _read_into_slot(self, capture: Capture, generation: int) -> None:
        try:
            while True:
                ok, picture = capture.read()
                with self._cond:
                    if self._slot.generation != generation or self._closing.is_set():
                        return
                    if not ok or picture is None:
                        self._slot.failed_generation = generation
                        self._cond.notify_all()
                        return
                    self.stats.frames_read += 1
                    if self._slot.image is not None and self._slot.number > self._last_number:
                        self.stats.frames_dropped += 1  # overwritten before anyone took it
                    self._slot.number += 1
                    self._slot.read_at = time.monotonic()
                    self._slot.image = _image(picture)
                    self._backoff.reset()
                    self._cond.notify_all()
        finally:
            capture.release()

    def _supervise(self, capture: Capture | None) -> None:
        retries = 0
        while not self._closing.is_set():
            if capture is None:
                if self._max_retries is not None and retries >= self._max_retries:
                    with self._cond:
                        self._gave_up = f"camera {_redact(self.target)!r} did not come back"
                        self._cond.notify_all()
                    return
                delay = self._backoff.next_delay()
                self.stats.recent_backoffs_s.append(delay)
                if self._closing.wait(delay):
                    return
                capture = self._open()
                retries += 1
                if capture is None:
                    self.stats.failed_opens += 1
                    continue
                self.stats.reconnects += 1
            retries = 0
            with self._cond:
                generation = self._slot.generation
                self._slot.read_at = time.monotonic()
            threading.Thread(
                target=self._read_into_slot, args=(capture, generation), daemon=True
            ).start()
            capture = None
            self._watch(generation)

    def _watch(self, generation: int) -> None:
        """Wait until this connection fails or stalls, then retire its reader."""
        with self._cond:
            while not self._closing.is_set():
                if self._slot.failed_generation == generation:
                    break
                idle = time.monotonic() - self._slot.read_at
                if idle >= self._read_timeout_s:
                    self.stats.stalls += 1
                    break
                self._cond.wait(self._read_timeout_s - idle)
            self._slot.generation += 1
            self._cond.notify_all()

    def __next__(self) -> Frame:
        """The newest frame not yet seen, no sooner than one period after the last."""
        wait = self._due - time.monotonic()
        if wait > 0 and self._closing.wait(wait):
            raise StopIteration
        with self._cond:
            while self._slot.number <= self._last_number or self._slot.image is None:
                if self._closing.is_set():
                    raise StopIteration
                if self._gave_up is not None:
                    raise SourceUnavailable(self._gave_up)
                self._cond.wait(0.5)
            number, image, read_at = self._slot.number, self._slot.image, self._slot.read_at
            self._slot.image = None  # the slot gives its picture away: one frame in memory
            self._last_number = number
        self._due = max(self._due + self._period_s, time.monotonic())
        self.stats.frames_emitted += 1
        return Frame(number, self._stamp(read_at), image)

    def close(self) -> None:
        self._closing.set()
        with self._cond:
            self._slot.generation += 1
            self._cond.notify_all()
        if threading.current_thread() is not self._supervisor:
            self._supervisor.join(timeout=2.0)


def _redact(target: str | int) -> str:
    """Camera URLs often carry a password (rtsp://user:pass@host); keep it out of logs."""
    text = str(target)
    scheme, sep, rest = text.partition("://")
    if sep and "@" in rest.split("/", 1)[0]:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return text


def _opencv_opener(read_timeout_s: float) -> CaptureOpener:
    try:
        import cv2
    except ImportError:
        raise missing_extra("opencv-python") from None
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
) -> FrameSource:
    """Open a camera as the layout names it: a file path (or ``file://``), an ``rtsp(s)://``
    or ``http(s)://`` URL, or a webcam index such as ``"0"``.

    ``start`` (timezone-aware) anchors timestamps: for files it defaults to when the
    recording began (file mtime less its duration), for live cameras to the clock.
    ``max_retries`` bounds reopen attempts in a row; None retries forever.
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
        )

    if sep:
        scheme = scheme.lower()
        if scheme in _STREAM_SCHEMES:
            return live(spec)
        if scheme != "file":
            raise ValueError(
                f"unsupported video source scheme {scheme!r} in {_redact(spec)!r}; "
                "use rtsp://, rtsps://, http(s)://, file://, a path or a webcam index"
            )
        spec = rest
    elif spec.isdigit():
        return live(int(spec))
    path = Path(os.path.expanduser(spec))
    if not path.is_file():
        raise FileNotFoundError(f"video file not found: {str(path)!r}")
    return FileSource(path, fps=fps, start=start, opener=open_capture)
