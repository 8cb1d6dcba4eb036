"""Where a simulated person stands: a spot inside each zone and a straight walk between them.

Positions are a pure function of a track's zone stays (and the seed), computed after the
simulation, so the sampled ``vision.track`` points, the optional ``positions.parquet``
and the zone crossings can never disagree about who was where. Each stay gets its own
spot (hashed from track, zone and stay number), so people in the queue or at tables do
not pile up on one point, and re-runs put everyone in the same place.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import ceil, hypot

from storelens.core.layout import StoreLayout, Zone

__all__ = ["FloorPlan", "Stay", "TrackSample"]

_WALK_SPEED_M_PER_MS = 1.2 / 1000
_WALK_SHARE = 0.45  # at most this share of a stay is spent walking in or out of it
_TRIES = 64

TrackSample = tuple[int, float, float, str]
"""(ms, x, y, zone_id): a floor position in metres and the zone the person is in."""


@dataclass(frozen=True, slots=True)
class Stay:
    """A track inside one zone from ``enter`` to ``exit`` (ms); the next stay enters at ``exit``."""

    zone_id: str
    enter: int
    exit: int


class FloorPlan:
    """The layout as the simulator needs it: cameras per zone and spots inside zones."""

    def __init__(self, layout: StoreLayout, salt: str) -> None:
        self.layout = layout
        self._salt = salt
        self._zones: dict[str, Zone] = {zone.id: zone for zone in layout.zones}
        self._cameras: dict[str, str | None] = {
            zone.id: next((c.id for c in layout.cameras if zone.id in c.covers), None)
            for zone in layout.zones
        }
        self.default_camera = layout.cameras[0].id if layout.cameras else None

    def camera_for(self, zone_id: str) -> str | None:
        """The first camera that covers the zone, for crossings; None where none sees it."""
        return self._cameras[zone_id]

    def track_camera(self, zone_id: str) -> str | None:
        """Track points always need a camera: an uncovered zone falls back to the first."""
        return self._cameras[zone_id] or self.default_camera

    def is_staff_only(self, zone_id: str) -> bool:
        return self._zones[zone_id].kind == "staff_only"

    def spot(self, track_id: str, zone_id: str, stay: int) -> tuple[float, float]:
        """A point inside the zone, fixed by the seed, track and stay; centimetre precision."""
        zone = self._zones[zone_id]
        xs = [p[0] for p in zone.polygon]
        ys = [p[1] for p in zone.polygon]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        key = f"{self._salt}|{track_id}|{zone_id}|{stay}".encode()
        digest = b""
        for attempt in range(_TRIES):
            if attempt % 4 == 0:
                digest = hashlib.blake2b(key + struct.pack(">I", attempt), digest_size=32).digest()
            u, v = struct.unpack_from(">II", digest, (attempt % 4) * 8)
            # Keep a 10% margin from the bounding box so nobody stands in the wall.
            x = round(x0 + (x1 - x0) * (0.1 + 0.8 * u / 0xFFFFFFFF), 2)
            y = round(y0 + (y1 - y0) * (0.1 + 0.8 * v / 0xFFFFFFFF), 2)
            if zone.contains((x, y)):
                return x, y
        return zone.polygon[0]

    def sample(self, track_id: str, stays: Sequence[Stay], step_ms: int) -> Iterator[TrackSample]:
        """Positions at every multiple of ``step_ms`` during the track, on one global grid.

        A common grid means all people are sampled at the same instants, as a camera's
        frames would see them. Between two stays the person walks in a straight line,
        crossing into the next zone's spot around the moment of the zone change.
        """
        if not stays:
            return
        # At a zone change the person counts as in the new zone, as after the crossing events.
        spots = [self.spot(track_id, stay.zone_id, i) for i, stay in enumerate(stays)]
        # Walk i goes from spots[i] to spots[i + 1] over [exit_i - out_i, exit_i + in_i].
        outs: list[int] = []
        ins: list[int] = []
        for i in range(len(stays) - 1):
            (ax, ay), (bx, by) = spots[i], spots[i + 1]
            half = round(hypot(bx - ax, by - ay) / _WALK_SPEED_M_PER_MS / 2)
            a, b = stays[i], stays[i + 1]
            outs.append(min(half, int((a.exit - a.enter) * _WALK_SHARE)))
            ins.append(min(half, int((b.exit - b.enter) * _WALK_SHARE)))
        t = ceil(stays[0].enter / step_ms) * step_ms
        last = stays[-1].exit
        i = 0
        while t < last:  # at its last exit the person has left
            while t >= stays[i].exit and i < len(stays) - 1:
                i += 1
            stay = stays[i]
            x, y = spots[i]
            if i > 0 and t < stay.enter + ins[i - 1]:
                x, y = _between(
                    spots[i - 1], spots[i], stay.enter - outs[i - 1], t, stay.enter + ins[i - 1]
                )
            elif i < len(stays) - 1 and t > stay.exit - outs[i]:
                x, y = _between(spots[i], spots[i + 1], stay.exit - outs[i], t, stay.exit + ins[i])
            yield t, x, y, stay.zone_id
            t += step_ms


def _between(
    a: tuple[float, float], b: tuple[float, float], start: int, t: int, end: int
) -> tuple[float, float]:
    share = (t - start) / (end - start) if end > start else 1.0
    return round(a[0] + (b[0] - a[0]) * share, 2), round(a[1] + (b[1] - a[1]) * share, 2)
