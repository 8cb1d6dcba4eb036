"""Person detections made from the simulator's ground truth, with a detector's faults.

Scoring a tracker, the stitching layer or zone logic on a simulated hour should not need
rendered video: each frame's boxes come straight from ``positions.parquet`` through the
camera's own model of how big a standing person looks (`CameraView.person_boxes`), then
get what real detectors get wrong: missed people (optionally in runs, as when someone is
hidden behind another), boxes that wobble in proportion to their size, and false alarms
of person size somewhere on the floor the camera sees. `IdSwitches` adds the tracker's
own typical fault, a confirmed track suddenly getting a new id.

Everything draws from one seeded generator in frame order, so a seed replays exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from storelens.core.camera import CameraView, FloatArray
from storelens.core.layout import StoreLayout
from storelens.vision.frames import PERSON_CLASS_ID

if TYPE_CHECKING:
    import supervision as sv

__all__ = ["DetectionNoise", "IdSwitch", "IdSwitches", "SyntheticDetections", "SyntheticFrame"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BATCH_ROWS = 65_536
_JITTER_CLIP = 3.0  # jitter is a normal draw cut at 3 sigma, so it is bounded
_FALSE_ALARM_CELL_M = 0.1
_FRESH_IDS_FROM = 1_000_000_000  # far above the small integers trackers hand out


@dataclass(frozen=True, slots=True)
class DetectionNoise:
    """How a detector errs. ``jitter`` is the spread of each box edge as a share of the box
    size (width for x edges, height for y edges), so near and far people wobble alike.

    ``miss_persistence`` makes misses come in runs, as occlusions do: the chance that a
    person missed in one frame is missed in the next. None keeps misses independent. The
    share of missed detections stays ``miss_rate`` either way.
    """

    miss_rate: float = 0.10
    false_positives_per_frame: float = 0.1
    jitter: float = 0.04
    miss_persistence: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.miss_rate) and 0 <= self.miss_rate < 1):
            raise ValueError(f"miss_rate must be in [0, 1), got {self.miss_rate!r}")
        fp = self.false_positives_per_frame
        if not (math.isfinite(fp) and fp >= 0):
            raise ValueError(f"false_positives_per_frame must be >= 0, got {fp!r}")
        if not (math.isfinite(self.jitter) and 0 <= self.jitter <= 0.5):
            raise ValueError(f"jitter must be in [0, 0.5] of the box size, got {self.jitter!r}")
        persistence = self.miss_persistence
        if persistence is not None:
            if not (math.isfinite(persistence) and 0 <= persistence < 1):
                raise ValueError(f"miss_persistence must be in [0, 1), got {persistence!r}")
            if self._onset(persistence) > 1:
                raise ValueError(
                    f"miss_persistence {persistence} is too low to reach miss_rate "
                    f"{self.miss_rate}; raise it or leave it None"
                )

    def _onset(self, persistence: float) -> float:
        """Chance a seen person is missed next, so that misses stay at ``miss_rate`` overall."""
        return self.miss_rate * (1 - persistence) / (1 - self.miss_rate)

    def miss_chances(self) -> tuple[float, float]:
        """(after a detection, after a miss): the two-state chain behind correlated misses."""
        if self.miss_persistence is None:
            return self.miss_rate, self.miss_rate
        return self._onset(self.miss_persistence), self.miss_persistence


class SyntheticFrame(NamedTuple):
    """One camera frame: boxes in pixels, and for each box whose truth track it shows
    (None for a false alarm), so a test can tell which detections were real."""

    ts: datetime
    detections: sv.Detections
    truth_ids: tuple[str | None, ...]


def _aware(moment: datetime | None, name: str) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone, e.g. datetime(..., tzinfo=UTC)")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _utc(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class SyntheticDetections:
    """Iterate ``(ts, detections, truth_ids)`` for one camera over ``positions.parquet``.

    Frames fall every ``1000 / fps`` ms (the camera's rate by default) on the simulator's
    global clock, empty frames included, from ``start`` to ``end`` (exclusive); by default
    from the first to the last frame in which the camera sees someone. The file is read in
    time order, a batch at a time, so a whole day never sits in memory. Each iteration
    starts afresh from the seed.
    """

    def __init__(
        self,
        positions: str | Path,
        layout: StoreLayout,
        camera_id: str,
        noise: DetectionNoise | None = None,
        *,
        fps: float | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        self.positions = Path(positions)
        if not self.positions.is_file():
            raise FileNotFoundError(f"no positions file at {self.positions}")
        known = [camera.id for camera in layout.cameras]
        if camera_id not in known:
            raise ValueError(f"no camera {camera_id!r} in layout {layout.store_id!r}; has {known}")
        camera = layout.camera(camera_id)
        if camera.resolution is None:
            raise ValueError(f"camera {camera_id!r} has no resolution in the layout")
        self.view = CameraView.from_camera(camera)
        self.resolution: tuple[int, int] = camera.resolution
        self.noise = noise or DetectionNoise()
        rate = camera.fps if fps is None else fps
        if not (math.isfinite(rate) and 0 < rate <= 1000):
            raise ValueError(f"fps must be in (0, 1000], got {rate!r}")
        self.step_ms = max(1, round(1000 / rate))
        self._start, self._end = _aware(start, "start"), _aware(end, "end")
        if self._start is not None and self._end is not None and self._start >= self._end:
            raise ValueError(f"start {start} must come before end {end}")
        self._false_alarm_spots = self._visible_floor(layout)
        if self.noise.false_positives_per_frame > 0 and len(self._false_alarm_spots) == 0:
            raise ValueError(f"camera {camera_id!r} sees none of the floor; no place for FPs")

    def _visible_floor(self, layout: StoreLayout) -> FloatArray:
        """Centres of small floor cells this camera sees: false alarms land uniformly on them."""
        cell = _FALSE_ALARM_CELL_M
        xs = np.arange(cell / 2, layout.floor.width_m, cell)
        ys = np.arange(cell / 2, layout.floor.height_m, cell)
        grid = np.column_stack([a.ravel() for a in np.meshgrid(xs, ys)])
        return grid[self.view.sees(grid)]

    def __iter__(self) -> Iterator[SyntheticFrame]:
        rng = np.random.default_rng(self.noise.seed)
        missed: dict[str, bool] = {}
        step = self.step_ms
        next_ms = None if self._start is None else -(-self._start // step) * step
        nobody, no_boxes = np.empty(0, object), np.empty((0, 4))
        for ms, ids, boxes in self._people():
            if next_ms is not None:
                while next_ms < ms:
                    yield self._frame(next_ms, nobody, no_boxes, rng, missed)
                    next_ms += step
            yield self._frame(ms, ids, boxes, rng, missed)
            next_ms = ms + step
        if next_ms is not None and self._end is not None:
            while next_ms < self._end:
                yield self._frame(next_ms, nobody, no_boxes, rng, missed)
                next_ms += step

    def _people(self) -> Iterator[tuple[int, np.ndarray, FloatArray]]:
        """(frame ms, track ids, exact boxes) of the people this camera sees, frame by frame;
        frames with nobody in view are left out (the caller fills the clock)."""
        import pyarrow.parquet as pq

        file = pq.ParquetFile(self.positions)
        missing = {"ts", "track_id", "x", "y"} - set(file.schema_arrow.names)
        if missing:
            raise ValueError(f"{self.positions} lacks columns {sorted(missing)}")
        step, checked = self.step_ms, False
        held: list[np.ndarray] = []  # the last, possibly unfinished, frame of a batch
        batches = file.iter_batches(batch_size=_BATCH_ROWS, columns=["ts", "track_id", "x", "y"])
        for batch in batches:
            ts = batch.column(0).cast("int64").to_numpy(zero_copy_only=False)
            if len(ts) == 0:
                continue
            if not checked and len(np.unique(ts)) > 1:
                self._check_clock(ts)
                checked = True
            if self._end is not None and ts[0] >= self._end:
                break
            keep = ts % step == 0
            if self._start is not None:
                keep &= ts >= self._start
            if self._end is not None:
                keep &= ts < self._end
            ids = np.asarray(batch.column(1).to_pylist(), dtype=object)[keep]
            floor = np.column_stack(
                [batch.column(2).to_numpy()[keep], batch.column(3).to_numpy()[keep]]
            )
            ts = ts[keep]
            seen = self.view.sees(floor) if len(ts) else np.zeros(0, bool)
            boxes = self.view.person_boxes(floor[seen]) if seen.any() else np.empty((0, 4))
            rows = [ts[seen], ids[seen], boxes]
            if held:
                rows = [np.concatenate([a, b]) for a, b in zip(held, rows, strict=True)]
            if len(rows[0]) == 0:
                held = rows
                continue
            last = rows[0] == rows[0][-1]
            held = [column[last] for column in rows]
            yield from _frames(*(column[~last] for column in rows))
        if held and len(held[0]):
            yield from _frames(*held)

    def _check_clock(self, ts: np.ndarray) -> None:
        stamps = np.unique(ts)
        clock = int(np.gcd.reduce(np.diff(stamps)))
        if self.step_ms % clock:
            raise ValueError(
                f"positions are sampled every {clock} ms, which frames every {self.step_ms} ms "
                "cannot land on; pick a frame rate (--fps) whose frame step is a multiple of it"
            )

    def _frame(
        self,
        ms: int,
        ids: np.ndarray,
        boxes: FloatArray,
        rng: np.random.Generator,
        missed: dict[str, bool],
    ) -> SyntheticFrame:
        import supervision as sv

        noise = self.noise
        after_hit, after_miss = noise.miss_chances()
        before = [missed.get(key) for key in ids]  # None at first sight: the long-run share
        chance = [noise.miss_rate if b is None else after_miss if b else after_hit for b in before]
        misses = rng.random(len(ids)) < chance
        missed.clear()
        missed.update(zip(ids.tolist(), misses.tolist(), strict=True))
        real = boxes[~misses]
        real_conf = rng.uniform(0.55, 0.95, len(real))
        count = int(rng.poisson(noise.false_positives_per_frame))
        spots = self._false_alarm_spots
        picked = spots[rng.integers(0, len(spots), count)] if count else np.empty((0, 2))
        picked = picked + rng.uniform(-_FALSE_ALARM_CELL_M / 2, _FALSE_ALARM_CELL_M / 2, (count, 2))
        fake = self.view.person_boxes(picked) if count else np.empty((0, 4))
        fake_conf = rng.uniform(0.3, 0.7, count)
        shown = self._wobble(np.concatenate([real, fake]), rng)
        truth: list[str | None] = [*ids[~misses].tolist(), *([None] * count)]
        order = rng.permutation(len(shown))
        detections = sv.Detections(
            xyxy=shown[order],
            confidence=np.concatenate([real_conf, fake_conf])[order],
            class_id=np.full(len(shown), PERSON_CLASS_ID, dtype=int),
        )
        return SyntheticFrame(_utc(ms), detections, tuple(truth[i] for i in order))

    def _wobble(self, boxes: FloatArray, rng: np.random.Generator) -> FloatArray:
        """Jitter each edge by a bounded share of the box size, then clip to the frame."""
        width, height = self.resolution
        size = (boxes[:, 2:] - boxes[:, :2])[:, [0, 1, 0, 1]]
        shake = np.clip(rng.standard_normal(boxes.shape), -_JITTER_CLIP, _JITTER_CLIP)
        shaken = boxes + shake * self.noise.jitter * size
        return np.clip(shaken, 0.0, np.array([width, height, width, height], dtype=np.float64))


def _frames(
    ts: np.ndarray, ids: np.ndarray, boxes: FloatArray
) -> Iterator[tuple[int, np.ndarray, FloatArray]]:
    if len(ts) == 0:
        return
    starts = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
    for begin, stop in zip(starts, [*starts[1:], len(ts)], strict=True):
        yield int(ts[begin]), ids[begin:stop], boxes[begin:stop]


@dataclass(frozen=True, slots=True)
class IdSwitch:
    ts: datetime
    tracker_id: int
    """The id the tracker itself gave; ``before`` and ``after`` are what callers saw."""
    before: int
    after: int


class IdSwitches:
    """Forced id switches on tracker output, to test that stitching joins them back.

    At random moments (a Poisson process of ``rate_per_minute`` on the frames' own time) one
    confirmed track in view gets a fresh id from then on; a moment with nobody in view
    passes without a switch. Call it on every tracked frame in time order; it returns new
    detections and leaves its input alone. ``switches`` logs what was done.
    """

    def __init__(self, rate_per_minute: float, seed: int = 0) -> None:
        if not (math.isfinite(rate_per_minute) and rate_per_minute >= 0):
            raise ValueError(f"rate_per_minute must be >= 0, got {rate_per_minute!r}")
        self.rate_per_minute = rate_per_minute
        self.switches: list[IdSwitch] = []
        self._rng = np.random.default_rng(seed)
        self._renamed: dict[int, int] = {}
        self._fresh = _FRESH_IDS_FROM
        self._next: datetime | None = None
        self._last: datetime | None = None

    def _gap(self) -> timedelta:
        return timedelta(seconds=float(self._rng.exponential(60.0 / self.rate_per_minute)))

    def __call__(self, ts: datetime, detections: sv.Detections) -> sv.Detections:
        if ts.tzinfo is None:
            raise ValueError("ts must carry a time zone")
        if self._last is not None and ts < self._last:
            raise ValueError(f"frames must come in time order: {ts} after {self._last}")
        self._last = ts
        if detections.tracker_id is None:
            return detections
        original = np.asarray(detections.tracker_id, dtype=np.int64)
        if self.rate_per_minute > 0:
            if self._next is None:
                self._next = ts + self._gap()
            confirmed = np.unique(original[original >= 0])
            while ts >= self._next:
                if len(confirmed):
                    self._switch(ts, int(self._rng.choice(confirmed)))
                self._next += self._gap()
        renamed = np.array([self._renamed.get(int(i), int(i)) for i in original], np.int64)
        return replace(detections, tracker_id=renamed)

    def _switch(self, ts: datetime, tracker_id: int) -> None:
        before = self._renamed.get(tracker_id, tracker_id)
        self._renamed[tracker_id] = self._fresh
        self.switches.append(IdSwitch(ts, tracker_id, before, self._fresh))
        self._fresh += 1
