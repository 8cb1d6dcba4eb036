"""Several cameras, one floor: a shopper seen by two cameras is one person.

Each camera's tracker names people on its own ("cam-entrance:…", "cam-counter:…"). Where
views overlap, the same shopper shows up twice on the floor plan a few decimetres apart
(calibration error, feet versus box bottom). Counting both would double occupancy in
exactly the zones two cameras watch, usually the queue.

How camera-persons become one global person:

* **Link.** Two camera-persons from different cameras that stay within
  ``link_distance_m`` for ``min_frames`` consecutive ticks, both visible, are linked
  (union-find over camera-person ids). Each tick and each camera pair is matched one to
  one (Hungarian method), so one shopper cannot claim two neighbours at once.
* **Never the same camera twice at once.** A link is refused when the two groups hold
  persons from the same camera whose sightings overlap in time: one camera seeing two
  people at once proves they are two people.
* **Pending pairs count once.** Before a link is confirmed, a close pair is already
  reported as one person under the older id, so a zone or occupancy counter downstream
  never sees a one-second double and never a spurious enter/exit when the link lands.
* **Handover.** A linked group keeps its id (its oldest camera-person's id) while any
  member is visible, so a shopper walking from one camera's view into another's through
  the overlap keeps one id.
* **Split.** Linked persons that are both visible but more than ``split_distance_m``
  apart for ``min_frames`` ticks were two people after all; the newer one leaves.

Positions are floor coordinates in metres; the fused position is the mean of the
group's sightings in that tick.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations

import numpy as np
import numpy.typing as npt

from storelens.vision.frames import check_next_time

__all__ = ["CameraFusion", "FloorPeople", "FusionConfig"]

_INFEASIBLE = 1e9


@dataclass(frozen=True, slots=True)
class FusionConfig:
    """When two cameras' sightings are the same person."""

    link_distance_m: float = 0.8
    min_frames: int = 3
    split_distance_m: float = 2.0
    forget_after_s: float = 60.0

    def __post_init__(self) -> None:
        for name in ("link_distance_m", "split_distance_m", "forget_after_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if self.split_distance_m < self.link_distance_m:
            raise ValueError("split_distance_m must be at least link_distance_m")
        if not isinstance(self.min_frames, int) or self.min_frames < 1:
            raise ValueError(f"min_frames must be an integer >= 1, got {self.min_frames!r}")


@dataclass(frozen=True, slots=True)
class FloorPeople:
    """Everyone on the floor in one tick, each person once.

    ``sightings[i]`` lists the camera-person ids fused into person ``i`` this tick.
    """

    ts: datetime
    person_ids: tuple[str, ...]
    xy: npt.NDArray[np.float64]
    sightings: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.person_ids)


@dataclass(slots=True)
class _Sighting:
    """One camera-person: which camera, and when it was first and last seen (seconds)."""

    camera_id: str
    first_seen: float
    last_seen: float
    group: str


@dataclass(slots=True)
class _Tick:
    """This tick's visible camera-persons, in a flat, index-addressable form."""

    ids: list[str] = field(default_factory=list)
    cameras: list[str] = field(default_factory=list)
    xy: list[tuple[float, float]] = field(default_factory=list)


class CameraFusion:
    """Fuses per-camera people into global people, tick by tick."""

    def __init__(self, config: FusionConfig | None = None) -> None:
        self.config = config or FusionConfig()
        self._epoch: datetime | None = None
        self._last_ts: datetime | None = None
        self._seen: dict[str, _Sighting] = {}
        self._groups: dict[str, set[str]] = {}
        self._link_streak: dict[tuple[str, str], int] = {}
        self._split_streak: dict[tuple[str, str], int] = {}

    def reset(self) -> None:
        """Forget every person: the end of a day, or a change of camera calibration."""
        self._epoch = self._last_ts = None
        self._seen.clear()
        self._groups.clear()
        self._link_streak.clear()
        self._split_streak.clear()

    def update(
        self, ts: datetime, cameras: Mapping[str, tuple[Sequence[str], npt.ArrayLike]]
    ) -> FloorPeople:
        """One tick: ``{camera_id: (person_ids, floor xy of shape (n, 2))}`` in, people out.

        A camera missing from the mapping saw nobody this tick.
        """
        tick = self._check_tick(cameras)
        t = self._seconds(ts)
        for pid, camera_id in zip(tick.ids, tick.cameras, strict=True):
            known = self._seen.get(pid)
            if known is None:
                self._seen[pid] = _Sighting(camera_id, t, t, pid)
                self._groups[pid] = {pid}
            else:
                known.last_seen = t
        xy = np.asarray(tick.xy, dtype=np.float64).reshape(-1, 2)
        self._separate_same_camera(tick)
        self._split_diverging(tick, xy)
        pending = self._link_close(tick, xy)
        people = self._people(ts, tick, xy, pending)
        self._forget(t)
        return people

    def group_of(self, person_id: str) -> str:
        """The global id a camera-person is currently fused into."""
        return self._seen[person_id].group

    # -- linking and unlinking ---------------------------------------------------------

    def _link_close(self, tick: _Tick, xy: npt.NDArray[np.float64]) -> list[tuple[str, str]]:
        """Advance link streaks; merge confirmed pairs; return the still-pending ones."""
        streaks: dict[tuple[str, str], int] = {}
        pending: list[tuple[str, str]] = []
        by_camera: dict[str, list[int]] = {}
        for i, camera_id in enumerate(tick.cameras):
            by_camera.setdefault(camera_id, []).append(i)
        for cam_a, cam_b in combinations(sorted(by_camera), 2):
            rows, cols = by_camera[cam_a], by_camera[cam_b]
            for r, c in self._match_close(tick, xy, rows, cols):
                a, b = tick.ids[r], tick.ids[c]
                if self._seen[a].group == self._seen[b].group:
                    continue
                key = (min(a, b), max(a, b))
                streaks[key] = self._link_streak.get(key, 0) + 1
                if streaks[key] >= self.config.min_frames:
                    if self._mergeable(self._seen[a].group, self._seen[b].group):
                        self._merge(self._seen[a].group, self._seen[b].group)
                else:
                    pending.append(key)
        self._link_streak = streaks
        return pending

    def _match_close(
        self, tick: _Tick, xy: npt.NDArray[np.float64], rows: list[int], cols: list[int]
    ) -> list[tuple[int, int]]:
        """One-to-one pairs across two cameras: already linked first, then nearest."""
        from scipy.optimize import linear_sum_assignment

        distance = np.linalg.norm(xy[rows][:, None, :] - xy[cols][None, :, :], axis=2)
        cost = np.full(distance.shape, _INFEASIBLE)
        for i, r in enumerate(rows):
            group_r = self._seen[tick.ids[r]].group
            for j, c in enumerate(cols):
                group_c = self._seen[tick.ids[c]].group
                if group_r == group_c:
                    cost[i, j] = 0.0
                elif distance[i, j] <= self.config.link_distance_m and self._mergeable(
                    group_r, group_c
                ):
                    cost[i, j] = distance[i, j]
        found_rows, found_cols = linear_sum_assignment(cost)
        return [
            (rows[i], cols[j])
            for i, j in zip(found_rows.tolist(), found_cols.tolist(), strict=True)
            if cost[i, j] < _INFEASIBLE
        ]

    def _mergeable(self, group_a: str, group_b: str) -> bool:
        """False when one camera saw a member of each group at the same time."""
        if group_a == group_b:
            return True
        for a in self._groups[group_a]:
            sa = self._seen[a]
            for b in self._groups[group_b]:
                sb = self._seen[b]
                overlap = sa.first_seen <= sb.last_seen and sb.first_seen <= sa.last_seen
                if sa.camera_id == sb.camera_id and overlap:
                    return False
        return True

    def _merge(self, group_a: str, group_b: str) -> None:
        keep, fold = sorted((group_a, group_b), key=self._age_key)
        for member in self._groups.pop(fold):
            self._seen[member].group = keep
            self._groups[keep].add(member)

    def _detach(self, member: str) -> None:
        """Make a camera-person its own group again (it was never the group's name)."""
        sighting = self._seen[member]
        self._groups[sighting.group].discard(member)
        sighting.group = member
        self._groups[member] = {member}

    def _separate_same_camera(self, tick: _Tick) -> None:
        """A group showing two people on one camera right now keeps only its oldest."""
        members: dict[tuple[str, str], list[str]] = {}
        for pid, camera_id in zip(tick.ids, tick.cameras, strict=True):
            members.setdefault((self._seen[pid].group, camera_id), []).append(pid)
        for same in members.values():
            for newer in sorted(same, key=self._age_key)[1:]:
                self._detach(newer)

    def _split_diverging(self, tick: _Tick, xy: npt.NDArray[np.float64]) -> None:
        """Unlink members that walk apart: a wrong link must not last all day."""
        index = {pid: i for i, pid in enumerate(tick.ids)}
        streaks: dict[tuple[str, str], int] = {}
        for group in list(self._groups):
            visible = sorted(
                (m for m in self._groups.get(group, ()) if m in index), key=self._age_key
            )
            for a, b in combinations(visible, 2):
                if (
                    float(np.linalg.norm(xy[index[a]] - xy[index[b]]))
                    <= self.config.split_distance_m
                ):
                    continue
                key = (a, b)
                streaks[key] = self._split_streak.get(key, 0) + 1
                if streaks[key] >= self.config.min_frames and self._seen[b].group == group:
                    self._detach(b)
        self._split_streak = streaks

    # -- output and housekeeping -------------------------------------------------------

    def _people(
        self,
        ts: datetime,
        tick: _Tick,
        xy: npt.NDArray[np.float64],
        pending: list[tuple[str, str]],
    ) -> FloorPeople:
        """One row per group, pending pairs folded together under the older id."""
        cluster = {self._seen[pid].group: self._seen[pid].group for pid in tick.ids}
        cameras_of: dict[str, set[str]] = {}
        for pid, camera_id in zip(tick.ids, tick.cameras, strict=True):
            cameras_of.setdefault(self._seen[pid].group, set()).add(camera_id)

        def root(group: str) -> str:
            while cluster[group] != group:
                group = cluster[group]
            return group

        for a, b in pending:
            ra, rb = root(self._seen[a].group), root(self._seen[b].group)
            if ra == rb or cameras_of[ra] & cameras_of[rb]:
                continue
            keep, fold = sorted((ra, rb), key=self._age_key)
            cluster[fold] = keep
            cameras_of[keep] |= cameras_of.pop(fold)
        rows: dict[str, list[int]] = {}
        for i, pid in enumerate(tick.ids):
            rows.setdefault(root(self._seen[pid].group), []).append(i)
        order = sorted(rows, key=self._age_key)
        fused = np.array([xy[rows[g]].mean(axis=0) for g in order]).reshape(-1, 2)
        return FloorPeople(
            ts=ts,
            person_ids=tuple(order),
            xy=fused,
            sightings=tuple(tuple(sorted(tick.ids[i] for i in rows[g])) for g in order),
        )

    def _forget(self, t: float) -> None:
        """Drop groups nobody has seen for ``forget_after_s``: memory stays bounded all day."""
        horizon = t - self.config.forget_after_s
        for group, members in list(self._groups.items()):
            if all(self._seen[m].last_seen < horizon for m in members):
                for m in members:
                    del self._seen[m]
                del self._groups[group]

    def _age_key(self, person_id: str) -> tuple[float, str]:
        """Older camera-persons first; the id breaks ties so the order is deterministic."""
        return (self._seen[person_id].first_seen, person_id)

    def _seconds(self, ts: datetime) -> float:
        check_next_time(ts, self._last_ts, "tick")
        if self._epoch is None:
            self._epoch = ts
        self._last_ts = ts
        return (ts - self._epoch).total_seconds()

    def _check_tick(self, cameras: Mapping[str, tuple[Sequence[str], npt.ArrayLike]]) -> _Tick:
        """Validate the whole tick before any state changes."""
        if not isinstance(cameras, Mapping):
            raise TypeError("cameras must map camera ids to (person_ids, xy)")
        tick = _Tick()
        for camera_id, view in cameras.items():
            if not isinstance(camera_id, str) or not camera_id.strip():
                raise ValueError(f"camera ids must be non-blank strings, got {camera_id!r}")
            if not isinstance(view, tuple) or len(view) != 2:
                raise TypeError(f"camera {camera_id!r}: expected a (person_ids, xy) pair")
            ids, raw = view
            if isinstance(ids, str) or not isinstance(ids, Sequence):
                raise TypeError(f"camera {camera_id!r}: person_ids must be a sequence of str")
            points = np.asarray(raw, dtype=np.float64)
            if len(ids) == 0 and points.size == 0:
                continue
            if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(ids):
                raise ValueError(
                    f"camera {camera_id!r}: {len(ids)} ids need xy of shape ({len(ids)}, 2), "
                    f"got {points.shape}"
                )
            if not np.all(np.isfinite(points)):
                raise ValueError(f"camera {camera_id!r}: xy contains non-finite coordinates")
            for pid, (x, y) in zip(ids, points.tolist(), strict=True):
                if not isinstance(pid, str) or not pid.strip():
                    raise ValueError(f"camera {camera_id!r}: bad person id {pid!r}")
                known = self._seen.get(pid)
                if known is not None and known.camera_id != camera_id:
                    raise ValueError(f"person {pid!r} belongs to camera {known.camera_id!r}")
                tick.ids.append(pid)
                tick.cameras.append(camera_id)
                tick.xy.append((x, y))
        if len(set(tick.ids)) != len(tick.ids):
            raise ValueError("a person id appears twice in one tick")
        return tick
