"""Track stitching on the floor plan: one person id across a tracker's identity switches.

ByteTrack matches boxes in the image, so at 5 fps an occlusion behind a shelf or two
shoppers brushing past each other often ends one track and starts another for the same
person. Dwell and footfall would count that person twice. On the floor plan (metres)
the repair is cheap: a track born shortly after another was lost, near where the lost
one was heading, continues the lost person's id.

Rules, in the order they bite:

* only tracks missing from the current frame can be stitched onto; a track that is
  still alive belongs to someone else;
* the gap is at most ``max_gap_s``; the new track must lie within
  ``max_speed_mps * gap + slack_m`` of the lost track's predicted position (its last
  position moved on by its recent velocity, capped at ``max_speed_mps``);
* where both tracks have a colour descriptor (`storelens.vision.appearance`), one that
  differs by more than ``colour_gate`` (Hellinger distance) is someone else, and a
  closer one adds ``colour_weight_m`` metres per unit of distance to the pairing's cost;
* several births and losses in the same frame are resolved jointly with the Hungarian
  method (``scipy.optimize.linear_sum_assignment``): first the most stitches, then the
  smallest total distance to the predictions, so crossing shoppers keep their headings.

Track ids come from the camera's tracker (``PersonTracker`` person ids); a track that is
never stitched keeps its own id as person id. Positions are floor coordinates in metres.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from storelens.vision.frames import check_next_time, check_settings

__all__ = ["StitchConfig", "TrackStitcher"]

_INFEASIBLE = 1e9
"""Cost of a pair that may not be stitched: larger than any sum of real distances."""


@dataclass(frozen=True, slots=True)
class StitchConfig:
    """When a new track may continue a lost one.

    ``velocity_window_s`` is how much recent history estimates a track's heading: long
    enough to average out detector jitter, short enough to follow a turn.
    """

    max_gap_s: float = 3.0
    max_speed_mps: float = 2.0
    slack_m: float = 0.5
    enabled: bool = True
    velocity_window_s: float = 1.0
    colour_gate: float = 0.5
    colour_weight_m: float = 1.0

    def __post_init__(self) -> None:
        check_settings(
            self,
            "max_gap_s",
            "max_speed_mps",
            "slack_m",
            "velocity_window_s",
            "colour_gate",
            "colour_weight_m",
        )


@dataclass(slots=True)
class _Track:
    """A track's person id and its recent floor positions (seconds, metres)."""

    person_id: str
    times: deque[float] = field(default_factory=deque)
    points: deque[tuple[float, float]] = field(default_factory=deque)
    colour: npt.NDArray[np.float64] | None = None

    @property
    def last_seen(self) -> float:
        return self.times[-1]

    def observe(self, t: float, x: float, y: float, window_s: float) -> None:
        self.times.append(t)
        self.points.append((x, y))
        while len(self.times) > 2 and t - self.times[0] > window_s:
            self.times.popleft()
            self.points.popleft()

    def predict(self, t: float, max_speed: float) -> npt.NDArray[np.float64]:
        """Where the person would be at ``t`` had they kept their recent velocity."""
        last = np.asarray(self.points[-1], dtype=np.float64)
        span = self.times[-1] - self.times[0]
        if span <= 0:
            return last
        velocity = (last - np.asarray(self.points[0], dtype=np.float64)) / span
        speed = float(np.hypot(*velocity))
        if speed > max_speed > 0:
            velocity *= max_speed / speed
        elif max_speed == 0:
            velocity[:] = 0.0
        return last + velocity * (t - self.times[-1])


class TrackStitcher:
    """Maps one camera's track ids to person ids, frame by frame."""

    def __init__(self, config: StitchConfig | None = None) -> None:
        self.config = config or StitchConfig()
        self.stitches = 0
        """How many times a new track continued a lost person (for diagnostics)."""
        self._epoch: datetime | None = None
        self._last_ts: datetime | None = None
        self._alive: dict[str, _Track] = {}
        self._lost: dict[str, _Track] = {}
        self._issued: set[str] = set()
        self._retired: dict[str, str] = {}  # track id -> person id, lost past max_gap_s

    def reset(self) -> None:
        """Forget everything: call at the end of a camera-day so no person spans two days."""
        self.stitches = 0
        self._epoch = self._last_ts = None
        self._alive.clear()
        self._lost.clear()
        self._issued.clear()
        self._retired.clear()

    def update(
        self,
        ts: datetime,
        track_ids: Sequence[str],
        xy: npt.ArrayLike,
        colours: Sequence[npt.NDArray[np.float64] | None] | None = None,
    ) -> list[str]:
        """One frame in (capture time, track ids, floor xy of shape (n, 2), optionally each
        track's colour descriptor); person ids out."""
        points = _check_frame(track_ids, xy)
        if colours is not None and len(colours) != len(track_ids):
            raise ValueError(f"{len(track_ids)} track ids but {len(colours)} colours")
        t = self._seconds(ts)
        if not self.config.enabled:
            return list(track_ids)
        alive, lost = self._alive, self._lost
        # Most frames show the same people as the last one: then nobody is lost or born
        # and the bookkeeping below is a few dict look-ups, not rebuilt dicts and arrays.
        if len(alive) != len(track_ids) or not all(tid in alive for tid in track_ids):
            current = set(track_ids)
            for track_id in [tid for tid in alive if tid not in current]:
                lost[track_id] = alive.pop(track_id)
        if lost:
            max_gap = self.config.max_gap_s
            for tid in [tid for tid, tr in lost.items() if t - tr.last_seen > max_gap]:
                self._retired[tid] = lost.pop(tid).person_id
        newborn: list[int] = []
        for i, track_id in enumerate(track_ids):
            if track_id in alive:
                continue
            revived = lost.pop(track_id, None)
            if revived is None and track_id in self._retired:
                revived = self._return(track_id)
            if revived is not None:
                alive[track_id] = revived
            else:
                newborn.append(i)
        if newborn:
            born_colours = [colours[i] for i in newborn] if colours is not None else None
            self._stitch(t, [track_ids[i] for i in newborn], points[newborn], born_colours)
        window = self.config.velocity_window_s
        out: list[str] = []
        for k, (track_id, (x, y)) in enumerate(zip(track_ids, points.tolist(), strict=True)):
            track = alive[track_id]
            track.observe(t, x, y, window)
            if colours is not None and colours[k] is not None:
                track.colour = colours[k]
            out.append(track.person_id)
        return out

    def _return(self, track_id: str) -> _Track | None:
        """A track id back after its loss expired. The tracker never reuses an id, so this
        is its own person given back by colour re-pairing (`storelens.vision.appearance`):
        they keep their person id, unless another track carries it by now."""
        person_id = self._retired.pop(track_id)
        if any(track.person_id == person_id for track in self._alive.values()):
            return None
        return _Track(person_id)

    def _stitch(
        self,
        t: float,
        born: list[str],
        where: npt.NDArray[np.float64],
        colours: Sequence[npt.NDArray[np.float64] | None] | None = None,
    ) -> None:
        """Give each newborn track a lost person's id, or a fresh one."""
        lost_ids = list(self._lost)
        matches: dict[int, str] = {}
        if born and lost_ids:
            lost = [self._lost[tid] for tid in lost_ids]
            cost = self._stitch_costs(t, lost, where)
            if colours is not None:
                self._colour_costs(cost, lost, colours)
            from scipy.optimize import linear_sum_assignment

            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
                if cost[r, c] < _INFEASIBLE:
                    matches[c] = lost_ids[r]
        for j, track_id in enumerate(born):
            if j in matches:
                self._alive[track_id] = self._lost.pop(matches[j])
                self.stitches += 1
            else:
                self._alive[track_id] = _Track(self._fresh_person_id(track_id))

    def _stitch_costs(
        self, t: float, lost: list[_Track], where: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Distance from each lost track's prediction to each newborn, or infeasible."""
        cfg = self.config
        cost = np.full((len(lost), len(where)), _INFEASIBLE)
        for r, track in enumerate(lost):
            gap = t - track.last_seen
            if gap > cfg.max_gap_s:
                continue
            predicted = track.predict(t, cfg.max_speed_mps)
            distance = np.hypot(*(where - predicted).T)
            reachable = distance <= cfg.max_speed_mps * gap + cfg.slack_m
            cost[r, reachable] = distance[reachable]
        return cost

    def _colour_costs(
        self,
        cost: npt.NDArray[np.float64],
        lost: list[_Track],
        colours: Sequence[npt.NDArray[np.float64] | None],
    ) -> None:
        """Rule out pairs whose colours differ past the gate; charge the rest for theirs."""
        from storelens.vision.appearance import hellinger

        cfg = self.config
        for r, track in enumerate(lost):
            if track.colour is None:
                continue
            for c, colour in enumerate(colours):
                if colour is None or cost[r, c] >= _INFEASIBLE:
                    continue
                distance = hellinger(track.colour, colour)
                if distance > cfg.colour_gate:
                    cost[r, c] = _INFEASIBLE
                else:
                    cost[r, c] += cfg.colour_weight_m * distance

    def _fresh_person_id(self, track_id: str) -> str:
        """The track's own id, unless a stitched person already carries it."""
        person_id, n = track_id, 1
        while person_id in self._issued:
            n += 1
            person_id = f"{track_id}~{n}"
        self._issued.add(person_id)
        return person_id

    def _seconds(self, ts: datetime) -> float:
        check_next_time(ts, self._last_ts, "frame")
        if self._epoch is None:
            self._epoch = ts
        self._last_ts = ts
        return (ts - self._epoch).total_seconds()


def _check_frame(track_ids: Sequence[str], xy: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Validate one frame before any state changes, so a bad frame leaves no trace."""
    if isinstance(track_ids, str) or not isinstance(track_ids, Sequence):
        raise TypeError("track_ids must be a sequence of strings")
    for track_id in track_ids:
        if not isinstance(track_id, str) or not track_id.strip():
            raise ValueError(f"track ids must be non-blank strings, got {track_id!r}")
    if len(set(track_ids)) != len(track_ids):
        raise ValueError("track ids repeat within one frame")
    points = np.asarray(xy, dtype=np.float64)
    if len(track_ids) == 0 and points.size == 0:
        return np.empty((0, 2), dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"xy must have shape (n, 2), got {points.shape}")
    if len(points) != len(track_ids):
        raise ValueError(f"{len(track_ids)} track ids but {len(points)} positions")
    if not np.all(np.isfinite(points)):
        raise ValueError("xy contains non-finite coordinates")
    return points
