"""Floor activity's settings (:class:`FloorConfig`), the records it reports (zone
changes, visits, occupancy samples) and :class:`ZoneMap`, the vectorised zone lookup
every frame goes through.

Kept apart from :mod:`storelens.vision.zones`, which decides *who* is where and for how
long; these are the shapes it answers in, shared by the pipeline, the event writer and
the evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from storelens.core.layout import Zone
from storelens.vision.doors import Crossing
from storelens.vision.visits import StoreVisit, VisitConfig

__all__ = ["FloorConfig", "FloorUpdates", "OccupancySample", "ZoneChange", "ZoneMap", "ZoneVisit"]

_EPS = 1e-9  # the same tolerance as Zone.contains, so both agree on the outline
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class FloorConfig:
    merge_gap_s: float = 5.0  # leaving a zone for less than this is not a new visit
    line_hysteresis_m: float = 0.3  # neutral band either side of a count line
    line_min_frames: int = 2  # frames clearly on the new side before a crossing counts
    occupancy_every_s: float = 5.0
    lost_after_s: float = 2.0  # unseen this long: gone, visits close at the last sighting
    zone_relink_s: float = 30.0  # a lost person's zone visit waits this long for its owner
    zone_relink_m: float = 1.0  # ... who comes back (under a new id) this near where it was
    # A track first seen inside a zone this long after the video began (or came back from
    # a gap of ``lost_after_s``) is someone already there under a new id, not a new
    # visitor (people walk into zones; the door's zone excepted, where they come in from
    # the street): within reach of where it appeared, it goes on with a lost person's
    # visit or one a track carried out of the zone within ``merge_gap_s``; with neither,
    # it starts no visit.
    born_inside_after_s: float = 5.0  # inf: every track's first zone starts a visit
    born_inside_reach_m: float = 2.5
    visits: VisitConfig = field(default_factory=VisitConfig)  # door-to-door store visits

    def __post_init__(self) -> None:
        for name in ("merge_gap_s", "occupancy_every_s", "lost_after_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if not (math.isfinite(self.line_hysteresis_m) and self.line_hysteresis_m >= 0):
            raise ValueError(f"line_hysteresis_m must be >= 0, got {self.line_hysteresis_m!r}")
        for name in (
            "zone_relink_s",
            "zone_relink_m",
            "born_inside_after_s",
            "born_inside_reach_m",
        ):
            value = getattr(self, name)
            if not (value >= 0 and (math.isfinite(value) or name == "born_inside_after_s")):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.line_min_frames < 1:
            raise ValueError(f"line_min_frames must be at least 1, got {self.line_min_frames!r}")


@dataclass(frozen=True, slots=True)
class ZoneChange:
    """A person entered or left a zone; an exit carries the visit's dwell."""

    ts: datetime
    person_id: str
    zone_id: str
    kind: Literal["enter", "exit"]
    dwell_s: float | None = None


@dataclass(frozen=True, slots=True)
class OccupancySample:
    ts: datetime
    zone_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ZoneVisit:
    """One closed visit: first to last frame inside, short absences merged in."""

    person_id: str
    zone_id: str
    start: datetime
    end: datetime

    @property
    def dwell_s(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(slots=True)
class FloorUpdates:
    """What became final during a call, in the order it became final."""

    zone_changes: list[ZoneChange] = field(default_factory=list)
    crossings: list[Crossing] = field(default_factory=list)
    occupancy: list[OccupancySample] = field(default_factory=list)
    zone_visits: list[ZoneVisit] = field(default_factory=list)
    store_visits: list[StoreVisit] = field(default_factory=list)

    def extend(self, other: FloorUpdates) -> None:
        self.zone_changes += other.zone_changes
        self.crossings += other.crossings
        self.occupancy += other.occupancy
        self.zone_visits += other.zone_visits
        self.store_visits += other.store_visits


class ZoneMap:
    """Which zones contain which points, for all points and zones in a few numpy calls.

    Matches :meth:`Zone.contains`: even-odd rule, with the outline counting as inside.
    """

    def __init__(self, zones: Sequence[Zone]) -> None:
        self.zone_ids = [zone.id for zone in zones]
        starts, ends, owner = [], [], []
        for k, zone in enumerate(zones):
            ring = np.asarray(zone.polygon, dtype=np.float64)
            starts.append(ring)
            ends.append(np.roll(ring, -1, axis=0))
            owner += [k] * len(ring)
        self._a = np.concatenate(starts) if starts else np.zeros((0, 2))
        self._b = np.concatenate(ends) if ends else np.zeros((0, 2))
        self._owner = np.zeros((len(owner), len(zones)), dtype=np.int64)
        self._owner[np.arange(len(owner)), owner] = 1  # edge -> zone incidence
        dy = self._b[:, 1] - self._a[:, 1]
        self._slope = np.divide(
            self._b[:, 0] - self._a[:, 0], dy, out=np.zeros_like(dy), where=dy != 0
        )

    def inside(self, xy: FloatArray) -> BoolArray:
        """(N, 2) points -> (N, Z) booleans."""
        x, y = xy[:, :1], xy[:, 1:2]
        (x1, y1), (x2, y2) = self._a.T[:, None, :], self._b.T[:, None, :]
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        on_edge = (
            (np.abs(cross) <= _EPS)
            & (np.minimum(x1, x2) - _EPS <= x) & (x <= np.maximum(x1, x2) + _EPS)
            & (np.minimum(y1, y2) - _EPS <= y) & (y <= np.maximum(y1, y2) + _EPS)
        )  # fmt: skip
        ray_hits = ((y1 > y) != (y2 > y)) & (x < x1 + (y - y1) * self._slope)
        hits = ray_hits.astype(np.int64) @ self._owner
        touching = on_edge.astype(np.int64) @ self._owner
        result: BoolArray = (hits % 2 == 1) | (touching > 0)
        return result
