"""Simulation time: whole milliseconds since the Unix epoch, UTC.

Integers, not floats or datetimes, so that every duration the truth reports is an exact
difference of the timestamps the events carry, and nothing drifts by a rounding step
between the two files.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "MINUTE",
    "SECOND",
    "Agenda",
    "iso_ms",
    "local_ms",
    "seconds",
    "to_datetime",
    "uniform_ms",
]

SECOND = 1_000
MINUTE = 60 * SECOND
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def local_ms(day: date, at: time, tz: ZoneInfo) -> int:
    """A wall-clock time in the store's zone, so opening hours follow daylight saving."""
    moment = datetime.combine(day, at, tzinfo=tz)
    return (moment.astimezone(UTC) - _EPOCH) // timedelta(milliseconds=1)


def to_datetime(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def iso_ms(ms: int) -> str:
    """ISO-8601 with exactly three fraction digits and 'Z', the truth file's one format."""
    moment = to_datetime(ms)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % SECOND:03d}Z"


def seconds(ms: int) -> float:
    """A duration in seconds; milliseconds divide exactly to 3 decimals."""
    return round(ms / SECOND, 3)


def uniform_ms(rng: random.Random, low_s: float, high_s: float) -> int:
    """A duration drawn in seconds and rounded to the millisecond before anyone uses it."""
    return round(rng.uniform(low_s, high_s) * SECOND)


class Agenda:
    """Timed callbacks run in time order; ties run in the order they were scheduled,
    which is what keeps a simulation byte-identical for a seed."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Callable[[int, Any], None], Any]] = []
        self._seq = 0

    def at(self, ms: int, action: Callable[[int, Any], None], arg: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (ms, self._seq, action, arg))

    def run(self) -> None:
        while self._heap:
            ms, _, action, arg = heapq.heappop(self._heap)
            action(ms, arg)
