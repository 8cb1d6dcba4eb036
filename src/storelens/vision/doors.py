"""Door and count-line crossings: which side of each line a person stands on, and when
they really changed sides.

A foot point wobbles by a box edge from frame to frame, so a person standing in a doorway
would "cross" many times. Each line therefore has a neutral band (``hysteresis_m``) either
side, and a new side only counts once the person has been clearly on it for
``min_frames`` frames in a row. The crossing is stamped when the person was on the line
itself (interpolated between the two sightings either side).

A count line is drawn a little inside the doorway, and people cut the corner: someone
leaving from a shelf beside the door crosses the line's extension past its end and then
walks out through the doorway behind it; someone at a window seat beside the door sits
beyond the line's extension without having left. So the two sides are not the two
half-planes. "In" is the inner half-plane, and beside the segment on the store's floor
plan (a window seat by the door); "out" is only the strip behind the segment (the
doorway's side, between the ends); beside it off the plan (the pavement past the
window) is neither, and leaves the side a person last settled on unchanged. Walking
round the end of the line and back in is then no crossing, walking round it and out
through the doorway is one, stamped where the person stepped into the strip behind the
door, and a customer already seated by the door when the camera starts is known to be
in, so their leaving counts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from storelens.core.layout import CountLine, Floor

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
    cross_ts: int = 0  # when the person last stepped over the line or into the doorway strip


class DoorLines:
    """Crossings of a store's count lines by everyone on the floor (see the module notes).

    Side state is kept per person id until `forget` (the person is lost) or `clear`.
    Without a ``floor`` nobody beside a line is known to be in.
    """

    def __init__(
        self,
        lines: Sequence[CountLine],
        hysteresis_m: float,
        min_frames: int,
        floor: Floor | None = None,
    ) -> None:
        if not (math.isfinite(hysteresis_m) and hysteresis_m >= 0):
            raise ValueError(f"line hysteresis must be >= 0 metres, got {hysteresis_m!r}")
        if min_frames < 1:
            raise ValueError(f"a crossing needs at least 1 frame on the new side: {min_frames!r}")
        self.lines = list(lines)
        self.hysteresis_m, self.min_frames = hysteresis_m, min_frames
        self.floor = floor
        self._sides: dict[str, list[_LineSide]] = {}

    def update(self, now_us: int, person_ids: Sequence[str], xy: FloatArray) -> list[Crossing]:
        """One frame: everyone seen at ``now_us`` (microseconds since the epoch) and where."""
        offsets, alongs = line_offsets(self.lines, xy)
        out: list[Crossing] = []
        on_plan = [self.floor is not None and self.floor.contains((x, y)) for x, y in xy.tolist()]
        for i, pid in enumerate(person_ids):
            self._watch(pid, now_us, offsets[i], alongs[i], on_plan[i], out)
        return out

    def forget(self, person_id: str) -> None:
        self._sides.pop(person_id, None)

    def clear(self) -> None:
        self._sides.clear()

    def _watch(
        self,
        pid: str,
        now: int,
        offsets: FloatArray,
        alongs: FloatArray,
        on_plan: bool,
        out: list[Crossing],
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
                _stamp(state, d, t, now)
            behind = -_EPS <= t <= 1 + _EPS  # level with the door segment
            if d < -band:
                side = -1
            elif d > band:
                side = 1 if behind else -1 if on_plan else 0
            else:
                side = 0
            if side == 0 or side != state.candidate:
                state.candidate, state.run = side, 0
            state.run += side != 0
            state.offset, state.along, state.ts = d, t, now
            if side == 0 or side == state.settled or state.run < self.min_frames:
                continue
            if state.settled != 0:
                direction: Literal["in", "out"] = "in" if side < 0 else "out"
                when = _EPOCH + timedelta(microseconds=state.cross_ts)
                out.append(Crossing(when, pid, line.id, direction))
            state.settled = side


def _region(d: float, t: float) -> int:
    """-1 the inner half-plane, 1 the strip behind the door segment, 0 beside it."""
    if d < 0:
        return -1
    return 1 if -_EPS <= t <= 1 + _EPS else 0


def _stamp(state: _LineSide, d: float, t: float, now: int) -> None:
    """Note when the person moved between the inside, the doorway strip and beside it
    (interpolated between two sightings): the time a later crossing carries."""
    before, after = _region(state.offset, state.along), _region(d, t)
    if before == after and not (d == 0 and state.offset != 0):
        return
    if state.offset * d < 0 or (d == 0) != (state.offset == 0):  # over, onto or off the line
        frac = state.offset / (state.offset - d)
    else:  # along the outside, round an end of the segment into or out of the strip
        edge = 0.0 if min(state.along, t) < 0 else 1.0
        frac = (edge - state.along) / (t - state.along) if t != state.along else 1.0
    frac = min(1.0, max(0.0, frac))
    state.cross_ts = state.ts + round(frac * (now - state.ts))
