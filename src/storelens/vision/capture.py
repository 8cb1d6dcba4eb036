"""What every frame source is made of: the capture it reads, its counts and its errors.

The capture is opened through an injectable ``opener`` returning a small `Capture`
(what ``cv2.VideoCapture`` offers), so tests and other decoders can stand in for OpenCV.
File sources (`storelens.vision.sources`) and live cameras (`storelens.vision.live`) both
build on these; ``storelens.vision.sources`` re-exports them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt

from storelens.core.errors import StorelensError
from storelens.vision.frames import Frame

__all__ = [
    "Capture",
    "CaptureOpener",
    "FrameSource",
    "SourceStats",
    "SourceUnavailable",
    "as_bgr",
    "redact",
]


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


def as_bgr(frame: Any) -> npt.NDArray[np.uint8]:
    """A decoded picture as contiguous BGR ``uint8``, the `Frame` contract."""
    image = np.asarray(frame)
    if image.ndim == 2:  # some webcams and fakes give grey; the contract is BGR
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image, dtype=np.uint8)


def redact(target: str | int) -> str:
    """A camera source without what may be a secret, for logs and for the layout shown
    to anyone but an admin: the URL's user and password (``rtsp://user:pass@host``), its
    query (``?user=…&pwd=…`` on many MJPEG cameras) and fragment, and every path segment
    that carries parameters (``/user=admin&password=…`` on many DVRs, ``;pwd=…``) become
    ``***``; a URL that cannot be parsed is ``***`` whole (a security review read DVR
    passwords in the path, and a malformed URL turned the layout into a 500)."""
    text = str(target)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return "***"
    if not parts.netloc:
        if parts.scheme and "@" in text:
            # "rtsp:admin:pw@host" or "rtsp:/admin:pw@host": no host part for urlsplit,
            # but a password all the same (a review); the layout validator takes them.
            return f"{parts.scheme}:***@{text.rsplit('@', 1)[1]}"
        return text  # a file path or a webcam index
    if not parts.scheme:  # "//admin:pw@host"
        return f"***@{text.rsplit('@', 1)[1]}" if "@" in text else text
    shown_host = f"[{host}]" if host and ":" in host else (host or "")  # IPv6 in brackets
    netloc = ("***@" if "@" in parts.netloc else "") + shown_host
    if port is not None:
        netloc += f":{port}"
    path = "/".join("***" if _secret_segment(seg) else seg for seg in parts.path.split("/"))
    return urlunsplit(
        (
            parts.scheme,
            netloc,
            path,
            "***" if parts.query else "",
            "***" if parts.fragment else "",
        )
    )


_SECRET_SEGMENT = re.compile(r"[=;:@%&]")
_TOKEN_SEGMENT = re.compile(r"(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_-]{16,}")


def _secret_segment(segment: str) -> bool:
    """A path segment that carries parameters (``user=admin&password=…``, ``;pwd=…``),
    an encoded character or a colon, or looks like an access token (16 or more letters
    and digits, both: UniFi's ``rtsps://host:7441/<token>``, a review): it may hold a
    secret, and a camera is known by its host, so the segment is hidden."""
    return bool(_SECRET_SEGMENT.search(segment) or _TOKEN_SEGMENT.fullmatch(segment))
