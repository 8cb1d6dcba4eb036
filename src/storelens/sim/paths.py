"""Where a simulated person stands: a spot inside each zone and a walk between them.

Positions are a pure function of a track's zone stays (and the seed), computed after the
simulation, so the sampled ``vision.track`` points, the optional ``positions.parquet``
and the zone crossings can never disagree about who was where. Each stay gets its own
spot (hashed from track, zone and stay number), so people in the queue or at tables do
not pile up on one point, and re-runs put everyone in the same place.

A visit starts and ends on the street side of the door line, so a door counter sees
every visit cross it once in and once out: the person appears outside at the start of
their first entrance stay, crosses the line halfway through it and stands just inside;
leaving mirrors that, crossing halfway through the last entrance stay and vanishing
outside at its end. Every other spot lies on the inside of the door line (clear of a
counter's hysteresis band), so no walk through the store crosses it by accident.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from math import ceil, hypot
from typing import TYPE_CHECKING

from storelens.core.layout import CountLine, StoreLayout, Zone

if TYPE_CHECKING:
    from storelens.core.camera import CameraView

__all__ = ["FloorPlan", "Stay", "TrackSample"]

_WALK_SPEED_M_PER_MS = 1.2 / 1000
_WALK_SHARE = 0.45  # at most this share of a stay is spent walking in or out of it
_TRIES = 64
_DOOR_CLEARANCE_M = 0.4  # inside spots keep this far from the door line's side change
_DOOR_STEP_M = (0.5, 0.7)  # how far either side of the door line people stand
_DOOR_SPAN = (0.15, 0.85)  # where along the door line people pass

TrackSample = tuple[int, float, float, str]
"""(ms, x, y, zone_id): a floor position in metres and the zone the person is in."""
_Key = tuple[int, float, float]
"""A keyframe: at ``ms`` the person is at (x, y); positions in between are interpolated."""


@dataclass(frozen=True, slots=True)
class Stay:
    """A track inside one zone from ``enter`` to ``exit`` (ms); the next stay enters at ``exit``."""

    zone_id: str
    enter: int
    exit: int


@dataclass(frozen=True, slots=True)
class _Door:
    """The count line visits pass through, with the zone a visit starts and ends in."""

    line: CountLine
    zone_id: str

    def offset(self, point: tuple[float, float]) -> float:
        """Signed distance in metres from the line: positive on the street ("out") side."""
        (ax, ay), (bx, by) = self.line.a, self.line.b
        dx, dy = bx - ax, by - ay
        return (dx * (point[1] - ay) - dy * (point[0] - ax)) / hypot(dx, dy)

    def pair(
        self, share: float, step: float, size: tuple[float, float]
    ) -> tuple[tuple[float, float], tuple[float, float]]:
        """(street, inside): points ``step`` metres either side of the line, ``share`` along.

        Both are kept on the ``size`` (width, height) floor, where positions must lie; a
        line drawn on the floor's edge then has no street side to start from.
        """
        (ax, ay), (bx, by) = self.line.a, self.line.b
        dx, dy = bx - ax, by - ay
        length = hypot(dx, dy)
        nx, ny = -dy / length * step, dx / length * step  # towards the street
        x, y = ax + dx * share, ay + dy * share

        def on_floor(px: float, py: float) -> tuple[float, float]:
            return round(min(max(px, 0.0), size[0]), 2), round(min(max(py, 0.0), size[1]), 2)

        return on_floor(x + nx, y + ny), on_floor(x - nx, y - ny)


def _door_of(layout: StoreLayout) -> _Door | None:
    """The first count line tied to an entrance zone; a line tied to no zone serves the first."""
    kinds = {zone.id: zone.kind for zone in layout.zones}
    for line in layout.lines:
        if line.zone_id is not None and kinds[line.zone_id] == "entrance":
            return _Door(line, line.zone_id)
    entrance = next((z.id for z in layout.zones if z.kind == "entrance"), None)
    loose = next((line for line in layout.lines if line.zone_id is None), None)
    return _Door(loose, entrance) if loose is not None and entrance is not None else None


def _hashes(key: bytes) -> Iterator[tuple[float, float]]:
    """Endless pairs of uniform numbers in [0, 1], fixed by the key."""
    attempt = 0
    while True:
        digest = hashlib.blake2b(key + struct.pack(">I", attempt), digest_size=32).digest()
        for k in range(4):
            u, v = struct.unpack_from(">II", digest, k * 8)
            yield u / 0xFFFFFFFF, v / 0xFFFFFFFF
        attempt += 4


class FloorPlan:
    """The layout as the simulator needs it: spots inside zones, the door, camera views."""

    def __init__(self, layout: StoreLayout, salt: str) -> None:
        self.layout = layout
        self._salt = salt
        self._zones: dict[str, Zone] = {zone.id: zone for zone in layout.zones}
        self._cameras: dict[str, str | None] = {
            zone.id: next((c.id for c in layout.cameras if zone.id in c.covers), None)
            for zone in layout.zones
        }
        self.door = _door_of(layout)
        self._views = _camera_views(layout) if layout.cameras else []

    def camera_for(self, zone_id: str) -> str | None:
        """The first camera that covers the zone, for crossings; None where none sees it."""
        return self._cameras[zone_id]

    def track_cameras(self, points: Sequence[tuple[float, float]]) -> list[str | None]:
        """The camera that sees each floor point nearest its image centre; None if none does.

        Each point gets one camera (not one sample per camera that sees it), so a person
        is one ``vision.track`` point per instant, as after fusing overlapping cameras.
        Seeing is `CameraView.sees`: the foot point lands inside the frame.
        """
        if not points:
            return []
        import numpy as np

        floor = np.asarray(points, dtype=np.float64)
        best = np.full(len(points), np.inf)
        chosen = np.full(len(points), -1)
        for k, view in enumerate(self._views):
            assert view.resolution is not None  # filled in by _camera_views
            width, height = view.resolution
            pixels = view.to_image(floor)
            centrality = np.hypot(pixels[:, 0] / width - 0.5, pixels[:, 1] / height - 0.5)
            better = view.sees(floor) & (centrality < best)  # ties keep the earlier camera
            best = np.where(better, centrality, best)
            chosen = np.where(better, k, chosen)
        return [self._views[k].camera_id if k >= 0 else None for k in chosen.tolist()]

    def is_staff_only(self, zone_id: str) -> bool:
        return self._zones[zone_id].kind == "staff_only"

    def spot(self, track_id: str, zone_id: str, stay: int) -> tuple[float, float]:
        """A point inside the zone, fixed by the seed, track and stay; centimetre precision.

        Points on the street side of the door line (or within the clearance of it) are
        redrawn; a zone with no room inside the line falls back to any point in it.
        """
        zone = self._zones[zone_id]
        xs = [p[0] for p in zone.polygon]
        ys = [p[1] for p in zone.polygon]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        door = self.door
        fallback: tuple[float, float] | None = None
        draws = _hashes(f"{self._salt}|{track_id}|{zone_id}|{stay}".encode())
        for _ in range(_TRIES):
            u, v = next(draws)
            # Keep a 10% margin from the bounding box so nobody stands in the wall.
            point = (
                round(x0 + (x1 - x0) * (0.1 + 0.8 * u), 2),
                round(y0 + (y1 - y0) * (0.1 + 0.8 * v), 2),
            )
            if not zone.contains(point):
                continue
            if door is None or door.offset(point) <= -_DOOR_CLEARANCE_M:
                return point
            fallback = fallback or point
        return fallback or zone.polygon[0]

    def door_pair(self, track_id: str) -> tuple[tuple[float, float], tuple[float, float]]:
        """Where a visit stands outside and just inside the door; the same way in and out."""
        assert self.door is not None
        u, v = next(_hashes(f"{self._salt}|{track_id}|door".encode()))
        share = _DOOR_SPAN[0] + (_DOOR_SPAN[1] - _DOOR_SPAN[0]) * u
        step = _DOOR_STEP_M[0] + (_DOOR_STEP_M[1] - _DOOR_STEP_M[0]) * v
        floor = self.layout.floor
        return self.door.pair(share, step, (floor.width_m, floor.height_m))

    def door_crossings(self, stays: Sequence[Stay]) -> tuple[int | None, int | None]:
        """When the track crosses the door line in and out (ms); None where it does not.

        A track that starts in the door's zone came in from the street, one that ends
        there leaves to it; the crossing is the middle of that stay (of its first and
        last quarter when one stay is both).
        """
        door = self.door
        if door is None or not stays:
            return None, None
        first, last = stays[0], stays[-1]
        came = first.zone_id == door.zone_id
        goes = last.zone_id == door.zone_id
        parts = 4 if came and goes and len(stays) == 1 else 2
        entry = first.enter + (first.exit - first.enter) // parts if came else None
        leave = last.exit - (last.exit - last.enter) // parts if goes else None
        return entry, leave

    def sample(self, track_id: str, stays: Sequence[Stay], step_ms: int) -> Iterator[TrackSample]:
        """Positions at every multiple of ``step_ms`` during the track, on one global grid.

        A common grid means all people are sampled at the same instants, as a camera's
        frames would see them. Between two stays the person walks in a straight line,
        crossing into the next zone's spot around the moment of the zone change.
        """
        if not stays:
            return
        keys = self._keyframes(track_id, stays)
        t = ceil(stays[0].enter / step_ms) * step_ms
        last = stays[-1].exit
        i = k = 0
        while t < last:  # at its last exit the person has left
            while t >= stays[i].exit and i < len(stays) - 1:
                i += 1
            while k < len(keys) - 2 and t >= keys[k + 1][0]:
                k += 1
            (start, ax, ay), (end, bx, by) = keys[k], keys[k + 1]
            if (ax, ay) == (bx, by):
                x, y = ax, ay
            else:
                share = (t - start) / (end - start) if end > start else 1.0
                x, y = round(ax + (bx - ax) * share, 2), round(ay + (by - ay) * share, 2)
            yield t, x, y, stays[i].zone_id
            t += step_ms

    def _keyframes(self, track_id: str, stays: Sequence[Stay]) -> list[_Key]:
        """Where the person is when: standing still at each stay's spot, walking between.

        Walk i leaves spot i at ``exit_i - out_i`` and reaches spot i + 1 at
        ``exit_i + in_i``; a door stay keeps its outer half for the door walk.
        """
        spots = [self.spot(track_id, stay.zone_id, i) for i, stay in enumerate(stays)]
        entry, leave = self.door_crossings(stays)
        street = inside = (0.0, 0.0)
        cross_ms = 0
        if entry is not None or leave is not None:
            street, inside = self.door_pair(track_id)
            step_m = hypot(street[0] - inside[0], street[1] - inside[1])
            cross_ms = round(step_m / _WALK_SPEED_M_PER_MS)
        # Room left for walks at each stay's start and end once the door walks are planned.
        room_in = [round((s.exit - s.enter) * _WALK_SHARE) for s in stays]
        room_out = list(room_in)
        door_in = door_out = cross_ms
        if entry is not None:
            spots[0] = inside
            door_in = min(cross_ms, entry - stays[0].enter, stays[0].exit - entry)
            room_out[0] = min(room_out[0], stays[0].exit - (entry - door_in // 2 + door_in))
        if leave is not None:
            spots[-1] = inside
            door_out = min(cross_ms, leave - stays[-1].enter, stays[-1].exit - leave)
            room_in[-1] = min(room_in[-1], leave - door_out // 2 - stays[-1].enter)
        keys: list[_Key] = []
        if entry is not None:
            keys.append((stays[0].enter, *street))
            keys.append((entry - door_in // 2, *street))
            keys.append((entry - door_in // 2 + door_in, *inside))
        else:
            keys.append((stays[0].enter, *spots[0]))
        for i in range(len(stays) - 1):
            (ax, ay), (bx, by) = spots[i], spots[i + 1]
            half = round(hypot(bx - ax, by - ay) / _WALK_SPEED_M_PER_MS / 2)
            out_ms, in_ms = min(half, room_out[i]), min(half, room_in[i + 1])
            keys.append((stays[i].exit - out_ms, ax, ay))
            keys.append((stays[i].exit + in_ms, bx, by))
        if leave is not None:
            keys.append((leave - door_out // 2, *inside))
            keys.append((leave - door_out // 2 + door_out, *street))
            keys.append((stays[-1].exit, *street))
        else:
            keys.append((stays[-1].exit, *spots[-1]))
        return keys


def _camera_views(layout: StoreLayout) -> list[CameraView]:
    """Each camera's calibrated view; one without a resolution spans its calibration points."""
    try:
        from storelens.core.camera import CameraView
    except ImportError as exc:  # numpy is missing
        raise ImportError(
            "the simulator needs numpy to place people in the camera views: "
            "pip install 'storelens[vision]' (or numpy alone)"
        ) from exc
    views = []
    for camera in layout.cameras:
        view = CameraView.from_camera(camera)
        if view.resolution is None:
            xs, ys = zip(*camera.calibration.image_points, strict=True)
            view = replace(view, resolution=(ceil(max(xs)), ceil(max(ys))))
        views.append(view)
    return views
