"""People's floor positions over time, turned into zone visits, door counts and occupancy.

Input is one fused frame at a time: a timestamp, stable person ids and their positions in
metres on the floor plan. Everything runs on event time (the frames' own timestamps), so
the same frames give the same results however they are grouped into calls. Output times
are UTC. Call :meth:`FloorActivity.update` for every frame, empty ones included: an empty
frame is evidence that nobody was there. Door and count-line crossings are worked out
by `storelens.vision.doors`; `Crossing` and `line_offsets` are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from storelens.core.layout import StoreLayout
from storelens.vision.doors import Crossing, DoorLines, line_offsets
from storelens.vision.visits import StoreVisit, StoreVisits, VisitConfig
from storelens.vision.zone_map import (
    FloorConfig,
    FloorUpdates,
    OccupancySample,
    ZoneChange,
    ZoneMap,
    ZoneVisit,
)

__all__ = [
    "Crossing",
    "FloorActivity",
    "FloorConfig",
    "FloorUpdates",
    "OccupancySample",
    "StoreVisit",
    "VisitConfig",
    "ZoneChange",
    "ZoneMap",
    "ZoneVisit",
    "line_offsets",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class _Visit:
    start: int  # microseconds since the epoch, like every time below
    left_at: int | None = None  # last frame inside, once the person has stepped out
    born: int = 0  # when this id's visit began (``start`` may be an earlier owner's)
    xy: tuple[float, float] = (math.nan, math.nan)  # where this id's visit began
    counted: bool = True  # False: a newborn's stay that is nobody's visit (yet)
    left_xy: tuple[float, float] = (math.nan, math.nan)  # last spot inside, once out


@dataclass(slots=True)
class _Orphan:
    """An open zone visit whose person was lost: it waits ``zone_relink_s`` for someone
    to appear in the same zone near where they were, and goes on as theirs."""

    person_id: str
    zone: int
    start: int
    end: int
    xy: tuple[float, float]
    counted: bool = True


@dataclass(slots=True)
class _Person:
    last_seen: int
    inside: BoolArray  # one flag per zone
    last_xy: tuple[float, float] = (math.nan, math.nan)
    code: bytes = b""  # ``inside`` as bytes, to skip unchanged people quickly
    visits: dict[int, _Visit] = field(default_factory=dict)
    born: int = 0


def _to_us(ts: datetime) -> int:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"timestamp {ts.isoformat()} has no timezone; pass an aware datetime")
    return (ts - _EPOCH) // _US


def _to_dt(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


class FloorActivity:
    """Turns a stream of fused frames into floor activity for one store.

    Occupancy counts everyone last seen inside a zone and not yet lost, so a person
    hidden for a frame or two still counts. Store visits chain a person's tracks from
    door to door (`storelens.vision.visits`).
    """

    def __init__(self, layout: StoreLayout, config: FloorConfig | None = None) -> None:
        self.layout, self.config = layout, config or FloorConfig()
        self._zones = ZoneMap(layout.zones)
        self._zone_ids = self._zones.zone_ids
        self._gap = round(self.config.merge_gap_s * 1e6)
        self._lost = round(self.config.lost_after_s * 1e6)
        self._every = round(self.config.occupancy_every_s * 1e6)
        cfg = self.config
        self._doors = DoorLines(
            layout.lines, cfg.line_hysteresis_m, cfg.line_min_frames, layout.floor
        )
        self._visits = StoreVisits(layout.lines, cfg.visits, self._lost)
        self._people: dict[str, _Person] = {}
        self._orphans: list[_Orphan] = []
        self._relink = round(self.config.zone_relink_s * 1e6)
        self._last_frame: int | None = None
        self._first_frame: int | None = None
        self._born_after = self.config.born_inside_after_s * 1e6
        # people do appear inside an entrance zone: they come in from the street
        door_zones = {line.zone_id for line in layout.lines}
        self._doorway = {
            k for k, z in enumerate(layout.zones) if z.kind == "entrance" or z.id in door_zones
        }

    def update(self, ts: datetime, person_ids: Sequence[str], xy: npt.ArrayLike) -> FloorUpdates:
        """One frame: everyone seen at ``ts`` and where they stand, in metres."""
        now, points = self._check_frame(ts, person_ids, xy)
        if self._last_frame is None or now - self._last_frame >= self._lost:
            self._first_frame = now  # the video (re)starts: everyone seen is already here
        out = FloorUpdates()
        self._sample_gap(now, out, inclusive=False)
        self._expire(now, out)
        membership = self._zones.inside(points)
        spots: list[list[float]] = points.tolist()
        codes: list[bytes] = [row.tobytes() for row in membership]  # cheap "same zones?"
        for i, (pid, (x, y)) in enumerate(zip(person_ids, spots, strict=True)):
            person = self._people.get(pid)
            if person is None:
                person = self._people[pid] = _Person(now, np.zeros(len(self._zone_ids), bool))
                person.born = now
                self._visits.born(pid, now, (x, y))
            if codes[i] != person.code:
                self._move(pid, person, now, membership[i], out, (x, y))
                person.code = codes[i]
            person.last_seen, person.last_xy = now, (x, y)
        crossings = self._doors.update(now, person_ids, points)
        for crossing in crossings:
            self._visits.crossed(crossing)
        out.crossings += crossings
        out.store_visits += self._visits.settle(now)
        self._last_frame = now
        if now % self._every == 0:
            self._sample(now, out)
        return out

    def update_many(
        self, frames: Iterable[tuple[datetime, Sequence[str], npt.ArrayLike]]
    ) -> FloorUpdates:
        """Several frames in one call; the same results as one call per frame."""
        out = FloorUpdates()
        for ts, person_ids, xy in frames:
            out.extend(self.update(ts, person_ids, xy))
        return out

    def close(self, ts: datetime | None = None) -> FloorUpdates:
        """End of video: close every open visit at its last sighting and start afresh."""
        out = FloorUpdates()
        if self._last_frame is None:
            return out
        end = self._last_frame if ts is None else _to_us(ts)
        if end < self._last_frame:
            last = _to_dt(self._last_frame).isoformat()
            raise ValueError(f"close({_to_dt(end).isoformat()}) is before the last frame {last}")
        if end > self._last_frame:
            self._sample_gap(end, out, inclusive=True)
        for pid in sorted(self._people):
            self._close_person(pid, self._people[pid], out)
        for orphan in self._orphans:
            if orphan.counted:
                self._emit_visit(orphan.person_id, orphan.zone, orphan.start, orphan.end, out)
        self._orphans.clear()
        out.store_visits += self._visits.close(end)
        self._people.clear()
        self._doors.clear()
        self._last_frame = self._first_frame = None
        return out

    def _check_frame(
        self, ts: datetime, person_ids: Sequence[str], xy: npt.ArrayLike
    ) -> tuple[int, FloatArray]:
        now = _to_us(ts)
        if self._last_frame is not None and now <= self._last_frame:
            raise ValueError(
                f"frame at {ts.isoformat()} is not after the previous frame at "
                f"{_to_dt(self._last_frame).isoformat()}; frames must arrive in time order"
            )
        points = np.asarray(xy, dtype=np.float64)
        if points.size == 0:
            points = points.reshape(0, 2)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"xy must have shape (N, 2), got {points.shape}")
        if len(person_ids) != len(points):
            raise ValueError(f"{len(person_ids)} person ids for {len(points)} positions")
        if not all(isinstance(pid, str) and pid for pid in person_ids):
            raise ValueError("person ids must be non-empty strings")
        if len(set(person_ids)) != len(person_ids):
            raise ValueError("a person id appears twice in one frame")
        if not np.isfinite(points).all():
            rows = np.flatnonzero(~np.isfinite(points).all(axis=1)).tolist()
            bad = [person_ids[i] for i in rows]
            raise ValueError(f"positions must be finite; not for {bad[:5]}")
        return now, points

    def _move(
        self,
        pid: str,
        person: _Person,
        now: int,
        inside: BoolArray,
        out: FloorUpdates,
        xy: tuple[float, float],
    ) -> None:
        changed = np.flatnonzero(inside != person.inside)
        born_inside = person.born == now and now - (self._first_frame or now) >= self._born_after
        for k in changed.tolist():
            visit = person.visits.get(k)
            if not inside[k]:
                if visit is not None:
                    visit.left_at, visit.left_xy = person.last_seen, person.last_xy
            elif visit is not None:
                visit.left_at = None  # back within the merge gap: the same visit goes on
            elif (orphan := self._adopt(k, now, xy, anywhere=born_inside)) is not None:
                person.visits[k] = _Visit(orphan.start, None, now, xy, orphan.counted)
            elif born_inside and k not in self._doorway:  # someone here under a new id
                person.visits[k] = _Visit(now, None, now, xy, counted=False)
            else:
                person.visits[k] = _Visit(now, None, now, xy)
                if k < len(self._zone_ids):
                    change = ZoneChange(_to_dt(now), pid, self._zone_ids[k], "enter")
                    out.zone_changes.append(change)
        person.inside = inside

    def _adopt(
        self, k: int, now: int, xy: tuple[float, float], *, anywhere: bool = False
    ) -> _Orphan | None:
        """The nearest orphaned visit of zone ``k`` in reach of someone entering it,
        or ``anywhere`` within ``born_inside_reach_m`` of someone who appeared inside it."""
        best: tuple[float, _Orphan] | None = None
        reach = max(self.config.zone_relink_m, self.config.born_inside_reach_m)
        for orphan in self._orphans:
            if orphan.zone != k or now - orphan.end > self._relink:
                continue
            distance = math.dist(orphan.xy, xy)
            near = distance <= (reach if anywhere else self.config.zone_relink_m)
            if near and (best is None or distance < best[0]):
                best = (distance, orphan)
        if best is None:
            return None
        self._orphans.remove(best[1])
        return best[1]

    def _passed_on(self, pid: str, k: int, visit: _Visit) -> bool:
        """A visit carried out of zone ``k`` by ``pid`` goes on as the uncounted stay of a
        track that appeared inside the zone near where ``pid`` stepped out, within the
        merge gap either side: the tracker moved ``pid`` onto a passer-by and gave the
        person who stayed a new id, so the visit stays with them."""
        assert visit.left_at is not None
        best: tuple[float, _Visit] | None = None
        for other, person in self._people.items():
            stay = person.visits.get(k)
            if other == pid or stay is None or stay.counted or stay.left_at is not None:
                continue
            distance = math.dist(stay.xy, visit.left_xy)
            near = distance <= self.config.born_inside_reach_m
            if (
                near
                and abs(stay.born - visit.left_at) <= self._gap
                and (best is None or distance < best[0])
            ):
                best = (distance, stay)
        if best is None:
            return False
        best[1].start, best[1].counted = visit.start, True
        return True

    def _handed_over(self, pid: str, lost: _Orphan) -> bool:
        """An id switch: someone else's visit to the same zone began near where ``pid``
        was last seen, while or just after it was lost. That visit is the lost one going
        on: it takes over its start (its entry was already announced under ``pid``)."""
        best: tuple[float, _Visit] | None = None
        for other, person in self._people.items():
            visit = person.visits.get(lost.zone)
            if other == pid or visit is None or visit.left_at is not None:
                continue
            if not (lost.end - self._lost <= visit.born <= lost.end + self._relink):
                continue
            if visit.start < visit.born:
                continue  # it has taken over a visit already
            distance = math.dist(visit.xy, lost.xy)
            if distance <= self.config.zone_relink_m and (best is None or distance < best[0]):
                best = (distance, visit)
        if best is None:
            return False
        best[1].start = min(best[1].start, lost.start)
        best[1].counted |= lost.counted
        return True

    def _expire(self, now: int, out: FloorUpdates) -> None:
        for pid in sorted(self._people):
            person = self._people[pid]
            if now - person.last_seen >= self._lost:
                self._close_person(pid, person, out, orphan=self._relink > 0)
                del self._people[pid]
                self._doors.forget(pid)
                continue
            for k, visit in sorted(person.visits.items()):
                if visit.left_at is not None and now - visit.left_at >= self._gap:
                    del person.visits[k]
                    if visit.counted and not self._passed_on(pid, k, visit):
                        self._emit_visit(pid, k, visit.start, visit.left_at, out)
        due = [o for o in self._orphans if now - o.end > self._relink]
        if due:  # nobody came back for these visits: they end at their last sighting
            self._orphans = [o for o in self._orphans if now - o.end <= self._relink]
            for orphan in due:
                if orphan.counted:
                    self._emit_visit(orphan.person_id, orphan.zone, orphan.start, orphan.end, out)

    def _close_person(
        self, pid: str, person: _Person, out: FloorUpdates, *, orphan: bool = False
    ) -> None:
        """Close a person's visits; with ``orphan``, those they were still inside wait for
        their owner to come back under another id (a seated customer lost for a while)."""
        for k, visit in sorted(person.visits.items()):
            if orphan and visit.left_at is None:
                lost = _Orphan(pid, k, visit.start, person.last_seen, person.last_xy, visit.counted)
                if not self._handed_over(pid, lost):
                    self._orphans.append(lost)
                continue
            end = person.last_seen if visit.left_at is None else visit.left_at
            passed = visit.left_at is not None and orphan and self._passed_on(pid, k, visit)
            if visit.counted and not passed:
                self._emit_visit(pid, k, visit.start, end, out)
        person.visits.clear()
        self._visits.ended(pid, person.last_seen, person.last_xy)

    def _emit_visit(self, pid: str, k: int, start: int, end: int, out: FloorUpdates) -> None:
        begin, finish = _to_dt(start), _to_dt(end)
        zone_id = self._zone_ids[k]
        dwell = (end - start) / 1e6
        out.zone_changes.append(ZoneChange(finish, pid, zone_id, "exit", dwell))
        out.zone_visits.append(ZoneVisit(pid, zone_id, begin, finish))

    def _sample_gap(self, now: int, out: FloorUpdates, *, inclusive: bool) -> None:
        """Samples due since the last frame; none deep inside a gap in the video."""
        if self._last_frame is None:
            return
        tick = (self._last_frame // self._every + 1) * self._every
        while (tick < now or (inclusive and tick == now)) and tick - self._last_frame < self._lost:
            self._sample(tick, out)
            tick += self._every

    def _sample(self, tick: int, out: FloorUpdates) -> None:
        counts = np.zeros(len(self._zone_ids), dtype=np.int64)
        for person in self._people.values():
            if tick - person.last_seen < self._lost:
                counts += person.inside
        when = _to_dt(tick)
        for zone_id, count in zip(self._zone_ids, counts.tolist(), strict=True):
            out.occupancy.append(OccupancySample(when, zone_id, count))
