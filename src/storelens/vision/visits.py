"""Store visits: from the door in to the door out, across the tracker's identity breaks.

A visit's dwell is the time between walking in and walking out. Trackers break a
person's track mid-visit (a seated customer missed for a few frames, a neighbour's box
stealing the track, a hand-over between cameras), and the per-camera stitcher only
repairs short gaps. Scoring a visit by one track id then turns one long visit into two
short ones, and the dwell median falls apart (it did: 12 % error on a noisy hour).

The repair uses what a shop floor guarantees: people do not appear or vanish in the
middle of the room. Every track (a *fragment*) starts either at a door (near a count
line, or on its street side) or mid-floor, and ends either at a door or mid-floor. A
fragment that starts mid-floor continues a fragment that ended mid-floor: the visits
are chains of fragments from a door start to a door end.

Rules:

* a mid-floor start is decided once every fragment that could precede it has been
  declared lost (``lost_after_s`` after its birth): it continues the free mid-floor end
  with the smallest ``distance + gap * relink_cost_mps``, provided that end came no later
  than the birth, at most ``relink_s`` before it, and within
  ``min(relink_reach_m + walk_mps * gap, max_jump_m)`` metres; otherwise it starts a
  visit of its own;
* a visit ends at a door end, or when its mid-floor end found no continuation within
  ``relink_s``;
* a visit starts at its first fragment's first "in" crossing (else its first sighting)
  and ends at its last fragment's last "out" crossing after that (else its last
  sighting).

Pure logic on event time (microseconds since the epoch), no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from storelens.core.layout import CountLine
from storelens.vision.doors import Crossing, line_offsets
from storelens.vision.frames import check_settings

__all__ = ["StoreVisit", "StoreVisits", "VisitConfig"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class VisitConfig:
    """How fragments of one person are chained into a visit; ``relink_s = 0`` turns the
    chaining off (one visit per track, as the tracker saw it)."""

    relink_s: float = 60.0
    door_radius_m: float = 0.8
    relink_reach_m: float = 1.5
    walk_mps: float = 1.0
    max_jump_m: float = 4.0
    relink_cost_mps: float = 0.1

    def __post_init__(self) -> None:
        check_settings(
            self,
            "relink_s",
            "door_radius_m",
            "relink_reach_m",
            "walk_mps",
            "max_jump_m",
            "relink_cost_mps",
        )


@dataclass(frozen=True, slots=True)
class StoreVisit:
    """One person's time in the store, door to door where the doors were seen.

    ``entered_by``/``left_by`` name the count line crossed, or are ``None`` when the
    visit began or ended away from a door (a track that could not be chained).
    """

    visit_id: str
    start: datetime
    end: datetime
    entered_by: str | None = None
    left_by: str | None = None
    tracks: int = 1

    @property
    def dwell_s(self) -> float:
        return (self.end - self.start).total_seconds()

    @property
    def at_door(self) -> bool:
        """Crossed a count line at either end: a customer's visit, not a staff shift or
        a stray track."""
        return self.entered_by is not None or self.left_by is not None


@dataclass(slots=True)
class _Fragment:
    """One person id's life on the floor."""

    person_id: str
    first: int
    first_xy: tuple[float, float]
    door_start: bool
    last: int
    last_xy: tuple[float, float]
    entered: tuple[int, str] | None = None  # first "in" crossing
    back_in: int | None = None  # last "in" crossing
    left: tuple[int, str] | None = None  # last "out" crossing
    ended: bool = False
    chain: _Chain | None = None


@dataclass(slots=True)
class _Chain:
    visit_id: str
    fragments: list[_Fragment] = field(default_factory=list)

    @property
    def tail(self) -> _Fragment:
        return self.fragments[-1]


class StoreVisits:
    """Chains a floor's person ids into store visits (see the module notes).

    Driven by `FloorActivity`: `born`, `crossed` and `ended` as they happen, then `settle`
    once per frame for the visits that became final.
    """

    def __init__(self, lines: Sequence[CountLine], config: VisitConfig, lost_after_us: int) -> None:
        self.lines, self.config = list(lines), config
        self._lost = lost_after_us
        self._relink = round(config.relink_s * 1e6)
        self._alive: dict[str, _Fragment] = {}
        self._heads: list[_Fragment] = []  # mid-floor starts not yet decided
        self._free: list[_Chain] = []  # chains whose last fragment ended mid-floor
        self._ended: list[_Fragment] = []  # ended since the last settle
        self._seq = 0

    def born(self, person_id: str, now: int, xy: tuple[float, float]) -> None:
        fragment = _Fragment(person_id, now, xy, self._at_door(xy), now, xy)
        self._alive[person_id] = fragment
        if fragment.door_start or self._relink == 0:
            self._start_chain(person_id, fragment)
        else:
            self._heads.append(fragment)

    def crossed(self, crossing: Crossing) -> None:
        fragment = self._alive.get(crossing.person_id)
        if fragment is None:
            return
        when = (crossing.ts - _EPOCH) // timedelta(microseconds=1)
        if crossing.direction == "in":
            fragment.back_in = when
            if fragment.entered is None:
                fragment.entered = (when, crossing.line_id)
        else:
            fragment.left = (when, crossing.line_id)

    def ended(self, person_id: str, last: int, last_xy: tuple[float, float]) -> None:
        """The person was last seen at ``last``, at ``last_xy``, and is now lost."""
        fragment = self._alive.pop(person_id, None)
        if fragment is not None:
            fragment.last, fragment.last_xy, fragment.ended = last, last_xy, True
            self._ended.append(fragment)

    def settle(self, now: int, *, closing: bool = False) -> list[StoreVisit]:
        """Decide due starts, then close chains that ended at a door or found no
        continuation in time; ``closing`` decides and closes everything (end of day)."""
        out: list[StoreVisit] = []
        undecided = [f for f in self._ended if f.chain is None]
        self._finish([f for f in self._ended if f.chain is not None], out)
        due = [h for h in self._heads if closing or h.ended or now - h.first >= self._lost]
        if due:
            self._heads = [h for h in self._heads if h not in due]
            for head in sorted(due, key=lambda h: h.first):
                self._continue(head)
        self._finish(undecided, out)
        self._ended.clear()
        expired = [c for c in self._free if closing or now - c.tail.last >= self._relink]
        if expired:
            self._free = [c for c in self._free if c not in expired]
            out += [self._close(c) for c in expired]
        return out

    def close(self, now: int) -> list[StoreVisit]:
        """End of input, after `ended` for everyone still here: every visit closes."""
        visits = self.settle(now, closing=True)
        self._alive.clear()
        return visits

    # -- internals -----------------------------------------------------------------------

    def _finish(self, ended: list[_Fragment], out: list[StoreVisit]) -> None:
        """A chain whose last fragment ended closes at a door, or waits for a continuation."""
        for fragment in ended:
            chain = fragment.chain
            assert chain is not None
            if chain.tail is not fragment:
                continue  # a later fragment already continues this chain
            if self._relink == 0 or self._door_end(fragment):
                out.append(self._close(chain))
            else:
                self._free.append(chain)

    def _start_chain(self, person_id: str, fragment: _Fragment) -> None:
        self._seq += 1
        chain = _Chain(f"{person_id}/{self._seq}", [fragment])
        fragment.chain = chain

    def _continue(self, head: _Fragment) -> None:
        """Attach a mid-floor start to the best free chain, or start its own."""
        cfg = self.config
        best: tuple[float, _Chain] | None = None
        for chain in self._free:
            tail = chain.tail
            gap = head.first - tail.last
            if gap < 0 or gap > self._relink:
                continue
            gap_s = gap / 1e6
            distance = math.dist(head.first_xy, tail.last_xy)
            if distance > min(cfg.relink_reach_m + cfg.walk_mps * gap_s, cfg.max_jump_m):
                continue
            cost = distance + gap_s * cfg.relink_cost_mps
            if best is None or cost < best[0]:
                best = (cost, chain)
        if best is None:
            self._seq += 1
            chain = _Chain(f"{head.person_id}/{self._seq}", [head])
        else:
            chain = best[1]
            self._free.remove(chain)
            chain.fragments.append(head)
        head.chain = chain

    def _close(self, chain: _Chain) -> StoreVisit:
        first, last = chain.fragments[0], chain.tail
        start, entered_by = (first.first, None) if first.entered is None else first.entered
        end, left_by = last.last, None
        if last.left is not None and last.left[0] >= start:
            end, left_by = last.left
        return StoreVisit(
            visit_id=chain.visit_id,
            start=_to_dt(start),
            end=_to_dt(max(end, start)),
            entered_by=entered_by,
            left_by=left_by,
            tracks=len(chain.fragments),
        )

    def _door_end(self, fragment: _Fragment) -> bool:
        if fragment.left is not None and (
            fragment.back_in is None or fragment.left[0] >= fragment.back_in
        ):
            return True
        return self._at_door(fragment.last_xy)

    def _at_door(self, xy: tuple[float, float]) -> bool:
        """Near a count line, or on its street side within the line's span."""
        if not self.lines:
            return False
        offset, along = line_offsets(self.lines, np.array([xy], dtype=np.float64))
        for j, line in enumerate(self.lines):
            d, t = float(offset[0, j]), float(along[0, j])
            if d > 0 and 0.0 <= t <= 1.0:
                return True
            length = math.dist(line.a, line.b)
            beyond = max(0.0, -t, t - 1.0) * length
            if math.hypot(d, beyond) <= self.config.door_radius_m:
                return True
        return False


def _to_dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)
