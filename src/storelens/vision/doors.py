"""Door and count-line crossings: which side of each line a person stands on, and when
they really changed sides.

A foot point wobbles by a box edge from frame to frame, so a person standing in a doorway
would "cross" many times. Each line therefore has a neutral band (``hysteresis_m``) either
side, and a new side only counts once the person has been clearly on it for
``min_frames`` frames in a row. The crossing is stamped when and where the person was on
the line itself (interpolated between the two sightings either side), and only counts
when that spot lies within the line's segment, so walking round its end is no crossing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from storelens.core.layout import CountLine

__all__ = ["Crossing", "DoorLines", "line_offsets"]

_EPS = 1e-9  # the same tolerance as Zone.contains
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Crossing:
    """A person crossed a count line; ``ts`` is when they were on the line itself."""

    ts: datetime
    person_id: str
    line_id: str
    direction: Literal["in", "out"]


def line_offsets(lines: Sequence[CountLine], xy: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Signed distance from each line (negative on the "in" side) and position along it.

    Returns two (N, L) arrays: metres off the line, and the fraction of the way from
    ``a`` to ``b`` (0..1 within the segment).
    """
    a = np.array([line.a for line in lines], dtype=np.float64).reshape(-1, 2)
    b = np.array([line.b for line in lines], dtype=np.float64).reshape(-1, 2)
    ab = b - a
    length = np.hypot(ab[:, 0], ab[:, 1])
    rel = xy[:, None, :] - a[None, :, :]
    offset = (ab[:, 0] * rel[..., 1] - ab[:, 1] * rel[..., 0]) / length
    along = (rel[..., 0] * ab[:, 0] + rel[..., 1] * ab[:, 1]) / (length * length)
    return offset, along


@dataclass(slots=True)
class _LineSide:
    """One person's standing against one line; times in microseconds since the epoch."""

    offset: float  # at the previous sighting
    along: float
    ts: int
    settled: int = 0  # -1 in, +1 out, 0 not known yet
    candidate: int = 0
    run: int = 0
    cross_along: float = math.nan  # where and when the line was last touched
    cross_ts: int = 0


class DoorLines:
    """Crossings of a store's count lines by everyone on the floor (see the module notes).

    Side state is kept per person id until `forget` (the person is lost) or `clear`.
    """

    def __init__(self, lines: Sequence[CountLine], hysteresis_m: float, min_frames: int) -> None:
        if not (math.isfinite(hysteresis_m) and hysteresis_m >= 0):
            raise ValueError(f"line hysteresis must be >= 0 metres, got {hysteresis_m!r}")
        if min_frames < 1:
            raise ValueError(f"a crossing needs at least 1 frame on the new side: {min_frames!r}")
        self.lines = list(lines)
        self.hysteresis_m, self.min_frames = hysteresis_m, min_frames
        self._sides: dict[str, list[_LineSide]] = {}

    def update(self, now_us: int, person_ids: Sequence[str], xy: FloatArray) -> list[Crossing]:
        """One frame: everyone seen at ``now_us`` (microseconds since the epoch) and where."""
        offsets, alongs = line_offsets(self.lines, xy)
        out: list[Crossing] = []
        for i, pid in enumerate(person_ids):
            self._watch(pid, now_us, offsets[i], alongs[i], out)
        return out

    def forget(self, person_id: str) -> None:
        self._sides.pop(person_id, None)

    def clear(self) -> None:
        self._sides.clear()

    def _watch(
        self, pid: str, now: int, offsets: FloatArray, alongs: FloatArray, out: list[Crossing]
    ) -> None:
        sides = self._sides.setdefault(pid, [])
        band = self.hysteresis_m
        for j, line in enumerate(self.lines):
            d, t = float(offsets[j]), float(alongs[j])
            if j == len(sides):
                sides.append(_LineSide(d, t, now))
                state = sides[j]
            else:
                state = sides[j]
                if state.offset * d < 0 or (d == 0 and state.offset != 0):
                    frac = state.offset / (state.offset - d)
                    state.cross_along = state.along + frac * (t - state.along)
                    state.cross_ts = state.ts + round(frac * (now - state.ts))
            side = -1 if d < -band else 1 if d > band else 0
            if side == 0 or side != state.candidate:
                state.candidate, state.run = side, 0
            state.run += side != 0
            state.offset, state.along, state.ts = d, t, now
            if side == 0 or side == state.settled or state.run < self.min_frames:
                continue
            if state.settled != 0 and -_EPS <= state.cross_along <= 1 + _EPS:
                direction: Literal["in", "out"] = "in" if side < 0 else "out"
                when = _EPOCH + timedelta(microseconds=state.cross_ts)
                out.append(Crossing(when, pid, line.id, direction))
            state.settled = side
