"""Waiting before trying again: one backoff, one ``Retry-After`` reader, one clock.

Every component that talks to something that can go away (the edge forwarder, the
vision API writer, the alert webhook, the MQTT bridge and its database writer, live
camera reconnects) waits through :class:`Backoff`, so they all share the same three
promises:

* **Capped.** A wait never exceeds ``cap``, however long the outage lasts.
* **Overflow-safe.** ``factor ** attempt`` is never computed past the attempt at
  which the cap is reached, so attempt 5,000 or 10**9 costs the same as attempt 10
  (a camera down for six hours once killed its reconnect thread with an
  ``OverflowError`` here).
* **Jittered.** Many devices that lost the same server at the same moment do not all
  come back in the same second.

Time comes from an injectable :class:`Clock`, so tests run thousands of retries
without sleeping: :class:`ManualClock` moves its own time forward when asked to
sleep and records every wait. ``tenacity`` and ``stamina`` were considered; both
wrap a call in a decorator, while our loops decide per answer (keep, shrink,
quarantine, give up) and sleep on stop events, so a small object fits them better.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

__all__ = [
    "SYSTEM_CLOCK",
    "Backoff",
    "Clock",
    "Jitter",
    "ManualClock",
    "SystemClock",
    "backoff_ceiling",
    "parse_retry_after",
]

Jitter = Literal["full", "equal", "none"]
"""``full``: uniform in [0, ceiling] (spreads a crowd best); ``equal``: uniform in
[ceiling/2, ceiling] (waits still grow from one attempt to the next); ``none``: the
ceiling itself."""

_MAX_EXPONENT = 10**15  # int attempts beyond float range still mean "capped"
_DELTA_SECONDS = re.compile(r"\d{1,12}(\.\d{1,6})?")


class Clock(Protocol):
    """Where retry loops get the time and do their waiting."""

    def now(self) -> float:
        """Monotonic seconds; only differences mean anything."""
        ...

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Wait ``seconds`` or until ``stop`` is set; True when it was stopped."""
        ...

    def wait(self, condition: threading.Condition, seconds: float) -> None:
        """Wait on ``condition`` (held by the caller) for at most ``seconds``; the
        caller re-checks its state and :meth:`now` afterwards."""
        ...


class SystemClock:
    """The real monotonic clock; sleeps wake early when their stop event is set."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        if stop is not None:
            return stop.wait(max(0.0, seconds))
        if seconds > 0:
            time.sleep(seconds)
        return False

    def wait(self, condition: threading.Condition, seconds: float) -> None:
        condition.wait(max(0.0, seconds))


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock for tests: ``sleep`` moves time forward at once and records the wait.

    ``wait`` on a condition returns after ``poll_s`` of real time (or a notify), so a
    thread that waits for time to pass re-reads :meth:`now`, which moves only through
    :meth:`sleep` and :meth:`advance`: timeouts fire exactly when the test says so,
    however busy the machine is.
    """

    def __init__(self, start: float = 0.0, *, poll_s: float = 0.005) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.poll_s = poll_s
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(0.0, seconds)
        return stop is not None and stop.is_set()

    def wait(self, condition: threading.Condition, seconds: float) -> None:
        condition.wait(min(max(0.0, seconds), self.poll_s))


def backoff_ceiling(attempt: int, initial: float, factor: float, cap: float) -> float:
    """``min(cap, initial * factor ** attempt)`` for any attempt, without overflowing.

    Works in logarithms: attempt 10**9 (or an int too large for a float) simply
    gives the cap.
    """
    if attempt <= 0 or factor <= 1.0:
        return float(min(cap, initial))
    # In logarithms, so neither factor ** attempt nor initial * growth can overflow.
    growth = min(attempt, _MAX_EXPONENT) * math.log(factor)
    if math.log(initial) + growth >= math.log(cap):
        return float(cap)
    try:
        return min(cap, initial * factor**attempt)  # exact for the usual small attempts
    except OverflowError:  # a tiny initial with a huge cap: factor ** attempt alone overflows
        return min(cap, math.exp(math.log(initial) + growth))


class Backoff:
    """Capped exponential backoff with jitter; one object per retry loop.

    ``next()`` gives the wait before the next try and counts the attempt; a server's
    ``Retry-After`` (seconds, already parsed) replaces the jittered wait, bounded by
    ``max_retry_after``, while the attempt still counts, so the waits after it go on
    growing. ``reset()`` after a success.
    """

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 30.0,
        *,
        factor: float = 2.0,
        jitter: Jitter = "full",
        max_retry_after: float = 300.0,
        rng: random.Random | None = None,
    ) -> None:
        finite = all(math.isfinite(v) for v in (initial, cap, factor, max_retry_after))
        if not (finite and initial > 0 and cap >= initial and factor >= 1):
            raise ValueError(
                f"backoff needs finite 0 < initial <= cap and factor >= 1, "
                f"got initial={initial}, cap={cap}, factor={factor}"
            )
        if jitter not in ("full", "equal", "none"):
            raise ValueError(f"jitter must be 'full', 'equal' or 'none', not {jitter!r}")
        if not max_retry_after >= 0:
            raise ValueError(f"max_retry_after must be >= 0, got {max_retry_after}")
        self.initial, self.cap, self.factor = initial, cap, factor
        self.jitter: Jitter = jitter
        self.max_retry_after = max_retry_after
        self.attempt = 0
        self._rng = rng or random.Random()  # noqa: S311  # jitter, not cryptography

    @property
    def ceiling(self) -> float:
        """The longest the next wait may be."""
        return backoff_ceiling(self.attempt, self.initial, self.factor, self.cap)

    def next(self, retry_after: float | None = None) -> float:
        """The wait before the next try, in seconds."""
        ceiling = self.ceiling
        self.attempt += 1
        if retry_after is not None and math.isfinite(retry_after):
            return min(max(0.0, retry_after), self.max_retry_after)
        if self.jitter == "full":
            return self._rng.uniform(0.0, ceiling)
        if self.jitter == "equal":
            return ceiling / 2.0 + self._rng.uniform(0.0, ceiling / 2.0)
        return ceiling

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (RFC 9110 §10.2.3), else None.

    Accepts delta-seconds (``"120"``; a decimal fraction is tolerated) and an
    HTTP-date (a date in the past means 0). Anything else (negative numbers,
    ``nan``, ``1e9``, garbage) is None, so the caller falls back to its own backoff.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        return float(text)
    if text[0].isdigit() or text[0] in "+-.":
        return None  # a malformed number, not a date
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    reference = now or datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())
