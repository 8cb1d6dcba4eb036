"""Splitting a track where it jumps on the floor: the tracker handed it to someone else.

ByteTrack associates boxes in the image. From a tilted camera, a barista behind the
counter and a customer at the pickup point overlap in the picture though they stand two
metres apart, and when one of them is missed for a frame the track jumps to the other.
On a simulated hour most identity swaps happened there, and one swapped track turns a
customer's ten-minute visit into a staff shift.

On the floor plan a swap is plain: nobody walks two metres in 200 ms. `FloorJumps`
gives a track a fresh id from the frame where its foot point moved further than
``max_speed_mps * gap + slack_m`` since its last sighting. The person who lost the box
is then picked up again by stitching and visit chaining, like any other broken track.
Per camera, pure, on event time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from storelens.vision.frames import check_settings

__all__ = ["FloorJumps", "JumpConfig"]

FloatArray = npt.NDArray[np.float64]
_FORGET_S = 30.0  # far beyond any tracker's lost-track buffer


@dataclass(frozen=True, slots=True)
class JumpConfig:
    """``max_speed_mps`` is faster than anyone walks in a shop; ``slack_m`` absorbs a
    foot point's wobble (box jitter, a half-occluded box).

    Off by default: on the noisy simulated hour (benchmarks/vision.py's setting, two
    noise seeds) splitting cut the median dwell error from 2.1 % to 0.8 % and from 3.8 %
    to 2.7 %, but box jitter set off splits of honest tracks too (about 400 an hour over
    three cameras), so IDF1 fell from 0.79 to 0.71 and one seed counted 85 entries for
    82. Worth turning on for a camera with a known swap spot and little jitter.
    """

    max_speed_mps: float = 2.5
    slack_m: float = 0.6
    enabled: bool = False

    def __post_init__(self) -> None:
        check_settings(self, "max_speed_mps", "slack_m")


class FloorJumps:
    """Renames a camera's tracks from the frame they jump (see the module notes).

    A renamed track keeps its new name for the rest of its life: ``"<id>~<n>"``, still
    starting with the camera's prefix, so `camera_of` keeps working.
    """

    def __init__(self, config: JumpConfig | None = None) -> None:
        self.config = config or JumpConfig()
        self._last: dict[str, tuple[datetime, float, float]] = {}  # tracker's id -> sighting
        self._alias: dict[str, str] = {}  # tracker's id -> current name
        self._count = 0
        self._pruned: datetime | None = None
        self.splits = 0

    def update(self, ts: datetime, person_ids: Sequence[str], xy: FloatArray) -> list[str]:
        """One frame's tracked people and floor positions; returns their names."""
        if not self.config.enabled:
            return list(person_ids)
        cfg = self.config
        names = []
        for pid, (x, y) in zip(person_ids, xy.tolist(), strict=True):
            last = self._last.get(pid)
            if last is not None:
                gap = (ts - last[0]).total_seconds()
                if math.hypot(x - last[1], y - last[2]) > cfg.max_speed_mps * gap + cfg.slack_m:
                    self._count += 1
                    self.splits += 1
                    self._alias[pid] = f"{pid}~{self._count}"
            self._last[pid] = (ts, x, y)
            names.append(self._alias.get(pid, pid))
        if self._pruned is None or (ts - self._pruned).total_seconds() >= _FORGET_S:
            self._forget_before(ts)
        return names

    def _forget_before(self, ts: datetime) -> None:
        """Tracks unseen for ``_FORGET_S`` are long gone from the tracker too."""
        old = [
            k for k, (seen, _, _) in self._last.items() if (ts - seen).total_seconds() > _FORGET_S
        ]
        for key in old:
            del self._last[key]
            self._alias.pop(key, None)
        self._pruned = ts

    def reset(self) -> None:
        self._last.clear()
        self._alias.clear()
        self._pruned = None
