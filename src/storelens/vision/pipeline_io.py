"""What `VisionPipeline` is given and what it gives back, apart from the chain itself.

In: a detector per camera (`DetectorFactory`), hooks that watch or alter what the
trackers report (`TrackHook`, `FrameHook`), the identity-repair presets (`repairs`),
camera streams merged into one time order (`merge_by_time`), and frame times put on
the millisecond clock its ticks count (`epoch_ms`). Out: the anonymous, sampled
`PipelineUpdates`, made of `TrackSample`s, floor updates and `HeatSample`s.

Kept apart from the chain, so the event writer (outputs.py) depends on the records it
writes rather than on the pipeline that makes them.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypedDict, TypeVar

from storelens.vision.appearance import AppearanceConfig
from storelens.vision.frames import Detector, Frame
from storelens.vision.heatmap import HeatGrid
from storelens.vision.stitching import StitchConfig
from storelens.vision.zones import FloorConfig, FloorUpdates, VisitConfig

if TYPE_CHECKING:
    import supervision as sv

__all__ = [
    "DetectorFactory",
    "FrameHook",
    "HeatSample",
    "PipelineUpdates",
    "Repairs",
    "TrackHook",
    "TrackSample",
    "camera_of",
    "epoch_ms",
    "from_epoch_ms",
    "merge_by_time",
    "repairs",
]

T = TypeVar("T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DetectorFactory = Callable[[str], Detector]
"""Builds one camera's detector (a detector keeps per-camera state, e.g. a background)."""
TrackHook = Callable[[str, datetime, "sv.Detections"], "sv.Detections"]
"""Sees each camera's tracker output before stitching (used to inject id switches)."""
FrameHook = Callable[[str, Frame, "sv.Detections"], None]
"""Sees each processed frame with its tracked people (the opt-in blurred debug clip)."""


class Repairs(TypedDict):
    stitch: StitchConfig
    floor: FloorConfig
    appearance: AppearanceConfig


def repairs(enabled: bool) -> Repairs:
    """`VisionPipeline` settings with the default identity repairs on or off: stitching
    tracks and chaining visits door to door. Off shows what the tracker alone would
    report (``vision run --no-stitch``, the benchmark's baseline). Colour re-pairing is
    off either way: on the seed-7 busy clip it raised IDF1 but not the visit figures, and
    some settings broke door counts (docs/vision.md)."""
    return Repairs(
        stitch=StitchConfig(enabled=enabled),
        floor=FloorConfig(visits=VisitConfig() if enabled else VisitConfig(relink_s=0)),
        appearance=AppearanceConfig(),  # colour re-pairing is opt-in (docs/vision.md)
    )


def camera_of(person_id: str) -> str:
    """The camera a person id came from: tracker ids are ``"<camera_id>:<token>"``."""
    return person_id.partition(":")[0]


def merge_by_time(streams: Mapping[str, Iterable[tuple[datetime, T]]]) -> Iterator[tuple[str, T]]:
    """``{camera_id: (ts, item)…}`` streams, each in time order, as one stream in time order."""

    def tagged(
        camera_id: str, items: Iterable[tuple[datetime, T]]
    ) -> Iterator[tuple[datetime, str, T]]:
        for ts, item in items:
            yield ts, camera_id, item

    merged = heapq.merge(*(tagged(c, s) for c, s in streams.items()), key=lambda e: (e[0], e[1]))
    for _, camera_id, item in merged:
        yield camera_id, item


def epoch_ms(ts: datetime) -> int:
    """A frame time on the pipeline's clock: whole milliseconds since the epoch, so ticks
    are exact integer periods; a naive time is refused rather than guessed at."""
    if not isinstance(ts, datetime) or ts.utcoffset() is None:
        raise ValueError(f"frame times must be timezone-aware datetimes, got {ts!r}")
    return (ts - _EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(ms: int) -> datetime:
    """The UTC time of a point on the pipeline's clock (a tick's start, a heat period's end)."""
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True)
class TrackSample:
    """One sampled floor position of a person (what becomes ``vision.track``)."""

    ts: datetime
    person_id: str
    camera_id: str
    x: float
    y: float
    confidence: float | None


@dataclass(frozen=True, slots=True)
class HeatSample:
    """A heat grid for the period ending at ``ts``."""

    ts: datetime
    grid: HeatGrid


@dataclass(slots=True)
class PipelineUpdates:
    """What became final during a call: samples, floor updates and heat grids."""

    tracks: list[TrackSample] = field(default_factory=list)
    floor: FloorUpdates = field(default_factory=FloorUpdates)
    heat: list[HeatSample] = field(default_factory=list)

    def extend(self, other: PipelineUpdates) -> None:
        self.tracks += other.tracks
        self.floor.extend(other.floor)
        self.heat += other.heat

    def __bool__(self) -> bool:
        f = self.floor
        return bool(
            self.tracks or self.heat or f.zone_changes or f.crossings or f.occupancy
            or f.zone_visits or f.store_visits
        )  # fmt: skip
