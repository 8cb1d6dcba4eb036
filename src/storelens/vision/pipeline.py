"""Camera frames to floor activity: every vision stage wired into one clocked chain.

Per camera frame: detector → `PersonTracker` → `AppearanceLedger` (opt-in: a crowd
that parts is re-paired by clothing colour; frames only) → foot points on the floor plan (NaN and
far-off-floor feet dropped) → `FloorJumps` (opt-in: a track that leaps is split) →
`TrackStitcher`. Frames of all cameras are grouped into
ticks of one frame period on a shared clock, so several cameras in one process give one
floor view per tick: `CameraFusion` merges people two cameras see (one camera passes
straight through), then `FloorActivity` turns the tick into zone visits, door crossings
and occupancy samples, and `FloorHeatmap` adds the tick's person-seconds.

What leaves is anonymous and sampled (`PipelineUpdates`): track positions every
``track_every_s``, floor updates as they become final, and heat grids every
``heatmap_every_s`` and at close. Images never leave memory. At the store's midnight
the floor closes and stitching/fusion start afresh, as the trackers' person ids do.

`run_detections` drives the same chain with ready-made detections (the simulator's
noisy ones), so accuracy is measured without rendering video.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from storelens.core.camera import CameraView
from storelens.core.layout import StoreLayout
from storelens.vision.appearance import AppearanceConfig, AppearanceLedger
from storelens.vision.frames import Detector, Frame
from storelens.vision.fusion import CameraFusion, FusionConfig
from storelens.vision.heatmap import FloorHeatmap
from storelens.vision.jumps import FloorJumps, JumpConfig
from storelens.vision.pipeline_io import (
    DetectorFactory,
    FrameHook,
    HeatSample,
    PipelineUpdates,
    Repairs,
    TrackHook,
    TrackSample,
    camera_of,
    epoch_ms,
    from_epoch_ms,
    merge_by_time,
    repairs,
)
from storelens.vision.stitching import StitchConfig, TrackStitcher
from storelens.vision.tracking import PERSON_ID_KEY, PersonTracker, TrackingConfig, renaming_hook
from storelens.vision.zones import FloorActivity, FloorConfig, ZoneMap

if TYPE_CHECKING:
    import supervision as sv

__all__ = [
    "PRIVATE_ZONE_KINDS",
    "DetectorFactory",
    "FrameHook",
    "HeatSample",
    "PipelineUpdates",
    "Repairs",
    "TrackHook",
    "TrackSample",
    "VisionPipeline",
    "camera_of",
    "merge_by_time",
    "renaming_hook",
    "repairs",
]

PRIVATE_ZONE_KINDS = frozenset({"fitting_room"})
"""Zones where nobody is tracked, counted or heat-mapped, whatever a camera happens to see."""
FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class _Camera:
    """One camera's own stages, and what it saw in the tick being collected."""

    view: CameraView
    tracker: PersonTracker
    jumps: FloorJumps
    stitcher: TrackStitcher
    appearance: AppearanceLedger
    detector: Detector | None = None
    seen: tuple[list[str], FloatArray, list[float | None]] | None = None
    tracked: sv.Detections | None = None


class VisionPipeline:
    """Runs the vision chain for some of a store's cameras; see the module notes.

    ``fps`` sets the tick (default: the fastest chosen camera's fps). Feet further than
    ``off_floor_margin_m`` outside the floor rectangle are dropped as impossible (a box
    on a poster, a reflection); nearer ones stay, since the street side of the door
    line may lie just off the plan. ``rng`` makes person ids reproducible in tests.
    ``on_frame`` sees each frame `process` handles, with its tracked people.
    """

    def __init__(
        self,
        layout: StoreLayout,
        camera_ids: Sequence[str],
        detector_factory: DetectorFactory | None = None,
        *,
        tracking: TrackingConfig | None = None,
        stitch: StitchConfig | None = None,
        fusion: FusionConfig | None = None,
        floor: FloorConfig | None = None,
        jumps: JumpConfig | None = None,
        appearance: AppearanceConfig | None = None,
        heatmap_every_s: float = 900.0,
        heatmap_cell_m: float = 0.25,
        track_every_s: float = 1.0,
        fps: float | None = None,
        off_floor_margin_m: float = 1.0,
        after_tracking: TrackHook | None = None,
        on_frame: FrameHook | None = None,
        rng_seed: int | None = None,
    ) -> None:
        known = [camera.id for camera in layout.cameras]
        if not camera_ids:
            raise ValueError(f"name at least one camera; {layout.store_id!r} has {known}")
        if unknown := [c for c in camera_ids if c not in known]:
            raise ValueError(f"no cameras {unknown} in layout {layout.store_id!r}; has {known}")
        if len(set(camera_ids)) != len(camera_ids):
            raise ValueError(f"a camera is named twice: {list(camera_ids)}")
        periods = {"heatmap_every_s": heatmap_every_s, "track_every_s": track_every_s}
        for name, value in periods.items():
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (math.isfinite(off_floor_margin_m) and off_floor_margin_m >= 0):
            raise ValueError(f"off_floor_margin_m must be >= 0, got {off_floor_margin_m!r}")
        rate = fps or max(layout.camera(c).fps for c in camera_ids)
        if not (math.isfinite(rate) and 0 < rate <= 60):
            raise ValueError(f"fps must be in (0, 60], got {rate!r}")
        self.layout, self.camera_ids, self.fps = layout, tuple(camera_ids), float(rate)
        self.period_ms = max(1, round(1000 / rate))
        self._track_every_ms = max(1, round(track_every_s * 1000))
        self._heat_every_ms = max(1, round(heatmap_every_s * 1000))
        self._tz = ZoneInfo(layout.timezone)
        self._margin = off_floor_margin_m
        private = [z for z in layout.zones if z.kind in PRIVATE_ZONE_KINDS]
        self._private = ZoneMap(private) if private else None
        self._after_tracking, self._on_frame = after_tracking, on_frame
        self.stitch = stitch or StitchConfig()
        rng = random.Random(rng_seed) if rng_seed is not None else None  # noqa: S311
        self._cameras: dict[str, _Camera] = {}
        for camera_id in self.camera_ids:
            view = CameraView.from_camera(layout.camera(camera_id))
            tracker = PersonTracker(camera_id, rate, tracking, rng=rng, day_tz=self._tz)
            ledger = AppearanceLedger(appearance)
            chain = _Camera(view, tracker, FloorJumps(jumps), TrackStitcher(self.stitch), ledger)
            if detector_factory is not None:
                chain.detector = detector_factory(camera_id)
            self._cameras[camera_id] = chain
        self._fusion = CameraFusion(fusion) if len(camera_ids) > 1 else None
        self.floor = FloorActivity(layout, floor)
        self._heatmap = FloorHeatmap.for_layout(layout, heatmap_cell_m)
        self._heat_ticks = 0
        covered = {zone for c in camera_ids for zone in layout.camera(c).covers}
        self.occupancy_zones = frozenset(covered or (z.id for z in layout.zones))
        """Zones the chosen cameras watch; occupancy elsewhere would be a made-up zero."""
        self.occupancy_camera = camera_ids[0] if len(camera_ids) == 1 else None
        self.frames = 0
        self.ticks = 0
        self._tick: int | None = None  # the tick being collected, in periods since the epoch
        self._last_tick: int | None = None
        self._day: date | None = None

    # -- input ---------------------------------------------------------------------------

    def process(self, camera_id: str, frame: Frame) -> PipelineUpdates:
        """Detect, track and stitch one camera frame (needs a ``detector_factory``)."""
        chain = self._chain(camera_id)
        if chain.detector is None:
            raise ValueError("this pipeline has no detector; pass detector_factory or feed()")
        detections = chain.detector.detect(frame.image)
        out = self._feed(camera_id, frame.ts, detections, frame.image, chain.detector)
        hold = getattr(chain.detector, "hold", None)
        if hold is not None and chain.tracked is not None:
            hold(chain.tracked.xyxy)  # a background model must not learn tracked people
        if self._on_frame is not None and chain.tracked is not None:
            self._on_frame(camera_id, frame, chain.tracked)
        return out

    def feed(self, camera_id: str, ts: datetime, detections: sv.Detections) -> PipelineUpdates:
        """One camera frame's detections. Frames must come in time order across cameras
        (to within a tick); a frame of a later tick closes the tick being collected."""
        return self._feed(camera_id, ts, detections, None, None)

    def _feed(
        self,
        camera_id: str,
        ts: datetime,
        detections: sv.Detections,
        image: npt.NDArray[np.uint8] | None,
        detector: Detector | None,
    ) -> PipelineUpdates:
        chain = self._chain(camera_id)
        tick = epoch_ms(ts) // self.period_ms
        if self._tick is not None and tick < self._tick:
            raise ValueError(
                f"frame of {camera_id!r} at {ts.isoformat()} is older than the tick at "
                f"{from_epoch_ms(self._tick * self.period_ms).isoformat()}; merge sources by time"
            )
        out = PipelineUpdates()
        if self._tick is not None and tick > self._tick:
            out.extend(self._close_tick())
        self._tick = tick
        tracked = chain.tracker.update(detections, ts)
        if self._after_tracking is not None:
            tracked = self._after_tracking(camera_id, ts, tracked)
        ids: list[str] = np.asarray(tracked.data.get(PERSON_ID_KEY, []), dtype=str).tolist()
        by_colour = image is not None and chain.appearance.config.enabled
        if by_colour and ids and self._after_tracking is None:
            assert image is not None
            ids = self._by_colour(chain, ts, tracked, ids, image, detector)
        xy = chain.view.boxes_to_floor(tracked.xyxy) if ids else np.empty((0, 2))
        keep = self._on_floor(xy)
        scores = tracked.confidence
        conf: list[float | None] = [None] * len(ids) if scores is None else scores.tolist()
        if not keep.all():
            flags = keep.tolist()
            ids = [pid for pid, k in zip(ids, flags, strict=True) if k]
            conf = [c for c, k in zip(conf, flags, strict=True) if k]
            xy = xy[keep]
        named = chain.jumps.update(ts, ids, xy)
        colours = chain.appearance.colours(ids) if by_colour else None
        stitched = chain.stitcher.update(ts, named, xy, colours)
        chain.seen, chain.tracked = (stitched, xy, conf), tracked
        self.frames += 1
        return out

    def run_detections(
        self, frames: Iterable[tuple[str, datetime, sv.Detections]]
    ) -> Iterator[PipelineUpdates]:
        """Feed ``(camera_id, ts, detections)`` in time order, then close; yields updates."""
        for camera_id, ts, detections in frames:
            if updates := self.feed(camera_id, ts, detections):
                yield updates
        yield self.close()

    def run(self, sources: Mapping[str, Iterable[Frame]]) -> Iterator[PipelineUpdates]:
        """Frames of each camera (``{camera_id: frames}``), merged by time, then close."""
        for camera_id in sources:
            self._chain(camera_id)
        for camera_id, frame in merge_by_time(
            {c: ((f.ts, f) for f in s) for c, s in sources.items()}
        ):
            if updates := self.process(camera_id, frame):
                yield updates
        yield self.close()

    def close(self) -> PipelineUpdates:
        """End of input: finish the last tick, close open visits, flush the heat grid."""
        out = PipelineUpdates()
        if self._tick is not None:
            out.extend(self._close_tick())
            self._tick = None
        if self._last_tick is not None:
            out.extend(self._end_day((self._last_tick + 1) * self.period_ms))
        return out

    # -- one tick ------------------------------------------------------------------------

    def _chain(self, camera_id: str) -> _Camera:
        try:
            return self._cameras[camera_id]
        except KeyError:
            raise ValueError(
                f"camera {camera_id!r} is not one of this pipeline's {list(self.camera_ids)}"
            ) from None

    def _by_colour(
        self,
        chain: _Camera,
        ts: datetime,
        tracked: sv.Detections,
        ids: list[str],
        image: npt.NDArray[np.uint8],
        detector: Detector | None,
    ) -> list[str]:
        """The ledger's person ids for this frame; re-paired tracks keep them from now on."""
        foreground = getattr(detector, "last_foreground", None)
        scale = float(getattr(detector, "scale", 1.0))
        t = epoch_ms(ts) / 1000
        boxes = np.asarray(tracked.xyxy, np.float64)
        new = chain.appearance.update(t, ids, boxes, image, foreground, scale)
        if new != ids:
            changed = [k for k, (a, b) in enumerate(zip(ids, new, strict=True)) if a != b]
            tracker_ids = np.asarray(tracked.tracker_id, dtype=int)
            moved = [int(tracker_ids[k]) for k in changed]
            chain.tracker.reassign(moved, [new[k] for k in changed])
            tracked.data[PERSON_ID_KEY] = np.asarray(new, dtype=str)
        return new

    def _on_floor(self, xy: FloatArray) -> npt.NDArray[np.bool_]:
        """Where a person may be counted: on the plan, and not in a private zone (a fitting
        room), whose occupants are dropped before anything is tracked on the floor."""
        floor, m = self.layout.floor, self._margin
        with np.errstate(invalid="ignore"):
            inside = (xy[:, 0] >= -m) & (xy[:, 0] <= floor.width_m + m)
            inside &= (xy[:, 1] >= -m) & (xy[:, 1] <= floor.height_m + m)
        keep = inside & np.isfinite(xy).all(axis=1)
        if self._private is not None and keep.any():
            keep[keep] = ~self._private.inside(xy[keep]).any(axis=1)
        return np.asarray(keep)

    def _close_tick(self) -> PipelineUpdates:
        assert self._tick is not None
        now = self._tick * self.period_ms
        ts = from_epoch_ms(now)
        out = PipelineUpdates()
        day = ts.astimezone(self._tz).date()
        if self._day is not None and day != self._day and self._last_tick is not None:
            out.extend(self._end_day((self._last_tick + 1) * self.period_ms))
        self._day = day
        ids, xy, conf = self._fused(ts)
        self._sample_heat(now, xy, out)
        floor = self.floor.update(ts, ids, xy)
        floor.occupancy = [o for o in floor.occupancy if o.zone_id in self.occupancy_zones]
        out.floor.extend(floor)
        last = self._last_tick
        if last is None or now // self._track_every_ms != (last * self.period_ms) // (
            self._track_every_ms
        ):
            out.tracks += [
                TrackSample(ts, pid, camera_of(pid), float(x), float(y), c)
                for pid, (x, y), c in zip(ids, xy.tolist(), conf, strict=True)
            ]
        for chain in self._cameras.values():
            chain.seen = None
        self._last_tick = self._tick
        self.ticks += 1
        return out

    def _fused(self, ts: datetime) -> tuple[list[str], FloatArray, list[float | None]]:
        """Everyone on the floor this tick, once each, with their best detection score."""
        seen = {cam: chain.seen for cam, chain in self._cameras.items() if chain.seen}
        if self._fusion is None:
            if not seen:
                return [], np.empty((0, 2)), []
            ids, xy, conf = next(iter(seen.values()))
            return list(ids), xy, list(conf)
        views = {cam: (s[0], s[1]) for cam, s in seen.items()}
        scores = {pid: c for s in seen.values() for pid, c in zip(s[0], s[2], strict=True)}
        people = self._fusion.update(ts, views)
        conf = [
            max((v for v in (scores.get(s) for s in sightings) if v is not None), default=None)
            for sightings in people.sightings
        ]
        return list(people.person_ids), people.xy, conf

    def _sample_heat(self, now: int, xy: FloatArray, out: PipelineUpdates) -> None:
        last = self._last_tick
        if last is not None and now // self._heat_every_ms != (last * self.period_ms) // (
            self._heat_every_ms
        ):
            self._flush_heat(now // self._heat_every_ms * self._heat_every_ms, out)
        self._heatmap.add(xy, self.period_ms / 1000)
        self._heat_ticks += 1

    def _flush_heat(self, end_ms: int, out: PipelineUpdates) -> None:
        if self._heat_ticks:
            grid = self._heatmap.flush(self._heat_ticks * self.period_ms / 1000)
            out.heat.append(HeatSample(from_epoch_ms(end_ms), grid))
            self._heat_ticks = 0

    def _end_day(self, end_ms: int) -> PipelineUpdates:
        """Close the floor and the heat period; stitching and fusion forget everyone."""
        out = PipelineUpdates()
        floor = self.floor.close(from_epoch_ms(end_ms))
        floor.occupancy = [o for o in floor.occupancy if o.zone_id in self.occupancy_zones]
        out.floor.extend(floor)
        self._flush_heat(end_ms, out)
        for chain in self._cameras.values():
            chain.stitcher.reset()
            chain.jumps.reset()
            chain.appearance.reset()
        if self._fusion is not None:
            self._fusion.reset()
        self._last_tick = None
        return out
