"""Live cameras (RTSP/HTTP streams, webcams), read so the pipeline never lags the shop.

A thread keeps only the newest frame in a single slot: when analysis is slower than the
camera, old frames are dropped rather than queued, so the pipeline is never more than a
frame behind and memory holds one picture. A camera that dies or stalls is reopened with
jittered exponential backoff, for as long as it takes (a shop's Wi-Fi comes back
eventually), through the one capped, overflow-safe backoff of
:mod:`storelens.core.retry`. Should the supervisor itself fail, the source is marked as
given up, so the consumer gets an error instead of waiting forever. Open one with
`storelens.vision.sources.open_source`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

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

__all__ = ["LiveSource", "camera_backoff"]

log = logging.getLogger(__name__)


def camera_backoff() -> Backoff:
    """Reconnect waits for a camera: 0.5 s doubling to 30 s, "equal jitter" (each wait in
    [d/2, d]), so many cameras do not reconnect in lockstep after a router restart while
    the waits still never shrink from one attempt to the next."""
    return Backoff(0.5, 30.0, jitter="equal")


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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not read_timeout_s > 0:
            raise ValueError(f"read_timeout_s must be positive, got {read_timeout_s}")
        self.stats = SourceStats()
        self.target = target
        self._period_s = 1.0 / fps
        self._opener = opener
        self._read_timeout_s = read_timeout_s
        self._backoff = backoff or camera_backoff()
        self._max_retries = max_retries
        self._clock = clock
        self._opened_at = clock.now()
        self._start = start
        self._cond = threading.Condition()
        self._slot = _Slot()
        self._closing = threading.Event()
        self._gave_up: str | None = None
        self._last_number = -1
        self._due = clock.now()
        first = self._open()
        if first is None:
            raise SourceUnavailable(f"cannot open camera {redact(target)!r}")
        self._supervisor = threading.Thread(
            target=self._supervise, args=(first,), name=f"camera-{redact(target)}", daemon=True
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
        return datetime.now(UTC) - timedelta(seconds=self._clock.now() - read_at)

    def _read_into_slot(self, capture: Capture, generation: int) -> None:
        try:
            while True:
                try:
                    ok, picture = capture.read()
                except Exception as exc:  # a decoder error is a dead connection: reopen
                    log.warning("camera %r: read failed: %s", redact(self.target), exc)
                    ok, picture = False, None
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
                    self._slot.read_at = self._clock.now()
                    self._slot.image = as_bgr(picture)
                    self._backoff.reset()
                    self._cond.notify_all()
        finally:
            capture.release()

    def _supervise(self, capture: Capture | None) -> None:
        """Run the reconnect loop; whatever kills it marks the source as given up."""
        try:
            self._reconnect_loop(capture)
        except Exception as exc:  # a thread's exception dies with it: tell the consumer
            log.exception("camera %r: reconnect loop failed", redact(self.target))
            self._give_up(f"camera {redact(self.target)!r} failed: {type(exc).__name__}: {exc}")

    def _give_up(self, reason: str) -> None:
        with self._cond:
            if self._gave_up is None:
                self._gave_up = reason
            self._cond.notify_all()

    def _reconnect_loop(self, capture: Capture | None) -> None:
        retries = 0
        while not self._closing.is_set():
            if capture is None:
                if self._max_retries is not None and retries >= self._max_retries:
                    self._give_up(f"camera {redact(self.target)!r} did not come back")
                    return
                delay = self._backoff.next()
                self.stats.recent_backoffs_s.append(delay)
                if self._clock.sleep(delay, self._closing):
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
                self._slot.read_at = self._clock.now()
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
                idle = self._clock.now() - self._slot.read_at
                if idle >= self._read_timeout_s:
                    self.stats.stalls += 1
                    break
                self._clock.wait(self._cond, self._read_timeout_s - idle)
            self._slot.generation += 1
            self._cond.notify_all()

    def __next__(self) -> Frame:
        """The newest frame not yet seen, no sooner than one period after the last."""
        wait = self._due - self._clock.now()
        if wait > 0 and self._clock.sleep(wait, self._closing):
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
        self._due = max(self._due + self._period_s, self._clock.now())
        self.stats.frames_emitted += 1
        return Frame(number, self._stamp(read_at), image)

    def close(self) -> None:
        self._closing.set()
        with self._cond:
            self._slot.generation += 1
            self._cond.notify_all()
        if threading.current_thread() is not self._supervisor:
            self._supervisor.join(timeout=2.0)
