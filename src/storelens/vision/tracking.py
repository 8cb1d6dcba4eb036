"""Per-camera person tracking: ByteTrack from the ``trackers`` package, anonymous ids on top.

The tracker itself is the maintained ``trackers.ByteTrackTracker``; this module only
adapts it to in-store cameras and to our privacy rules:

* CCTV is sampled at 5 to 15 fps, where ByteTrack's frame-count defaults (tuned for 30 fps)
  drop people after a few frames (supervision#1408). We pass the real sampling rate and
  the capture time of every frame, and express the lost-track buffer in seconds.
* At 5 fps a walking person moves most of a box width between frames, so plain IoU
  often finds no overlap. Buffered IoU (C-BIoU) widens the boxes before comparing them;
  on a synthetic overhead walk at 5 fps it cut identity switches by about a quarter.
* ByteTrack's Kalman filter (its default box-corner model and noise) is evaluated in
  plain floats by `storelens.vision.kalman`, plugged in through ByteTrack's
  ``state_estimator_class``: the same filter and results, without numpy's per-call
  overhead on 8x8 matrices, which was most of the tracker's time in a crowd.
* Unconfirmed detections come back with ``tracker_id == -1``; counting them merged every
  newcomer into one phantom object (supervision#2578), so only confirmed tracks leave.
* Each confirmed track gets a random person id, ``"<camera_id>:<token>"``, drawn afresh
  every camera-day: the integer tracker id restarts at midnight and tokens are never
  derived from anything stable, so nothing links a person across days or cameras.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from storelens.core.errors import MissingExtra
from storelens.vision.frames import PERSON_CLASS_ID, check_next_time

if TYPE_CHECKING:
    import supervision as sv

__all__ = ["PERSON_ID_KEY", "PersonTracker", "TrackingConfig", "renaming_hook"]

PERSON_ID_KEY = "person_id"
"""Key in ``Detections.data`` holding each confirmed track's anonymous person id."""

_TOKEN_BITS = 48
_BYTETRACK_REFERENCE_FPS = 30.0
"""``trackers`` counts its lost-track buffer in frames of a 30 fps video."""


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    """ByteTrack settings for overhead in-store cameras at 5 to 15 fps.

    ``lost_track_s``: how long a person may go undetected (occluded by a shelf, missed by
    the detector) and still keep their track. ``activation_confidence``: the detector
    score a box needs to start a new track. ``high_confidence``: boxes at or above it are
    matched first; lower ones only revive existing tracks. ``min_consecutive_frames``:
    frames a new track must be matched before it is confirmed (filters one-frame
    flickers, supervision#2598). ``min_overlap``: the least (buffered) IoU that still
    associates a box with a track. ``overlap_buffer``: how far boxes are widened, as a
    fraction of their size, before the overlap is computed; ``0`` is plain IoU.
    """

    lost_track_s: float = 1.5
    activation_confidence: float = 0.5
    high_confidence: float = 0.5
    min_consecutive_frames: int = 2
    min_overlap: float = 0.1
    overlap_buffer: float = 0.5

    def __post_init__(self) -> None:
        if not np.isfinite(self.lost_track_s) or self.lost_track_s < 0:
            raise ValueError(f"lost_track_s must be a finite value >= 0, got {self.lost_track_s}")
        for name in ("activation_confidence", "high_confidence", "min_overlap"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.min_consecutive_frames < 1:
            raise ValueError(
                f"min_consecutive_frames must be >= 1, got {self.min_consecutive_frames}"
            )
        if not np.isfinite(self.overlap_buffer) or self.overlap_buffer < 0:
            raise ValueError(
                f"overlap_buffer must be a finite value >= 0, got {self.overlap_buffer}"
            )

    @property
    def lost_track_buffer(self) -> int:
        """The lost-track buffer in the unit ``trackers`` expects: frames at 30 fps."""
        return round(self.lost_track_s * _BYTETRACK_REFERENCE_FPS)


class PersonTracker:
    """Follows the people one camera sees and names each confirmed track anonymously.

    ``rng`` makes person ids reproducible in tests; leave it out in production so tokens
    come from :mod:`secrets`. ``day_tz`` decides where a camera-day ends (the store's
    timezone): at the first frame of a new day the tracker forgets every track.
    """

    def __init__(
        self,
        camera_id: str,
        fps: float,
        config: TrackingConfig | None = None,
        *,
        rng: random.Random | None = None,
        day_tz: tzinfo = UTC,
    ) -> None:
        if not camera_id or camera_id != camera_id.strip() or any(c.isspace() for c in camera_id):
            raise ValueError(f"camera_id must be a non-blank token without spaces: {camera_id!r}")
        if not np.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a finite value > 0, got {fps}")
        self.camera_id = camera_id
        self.fps = float(fps)
        self.config = config or TrackingConfig()
        self._rng = rng
        self._day_tz = day_tz
        self._tracker: Any = self._new_bytetrack()
        self._day: date | None = None
        self._day_start: datetime | None = None
        self._last_ts: datetime | None = None
        self._person_ids: dict[int, str] = {}
        self._tokens: set[str] = set()

    @property
    def day(self) -> date | None:
        """The camera-day whose token space is in use, or ``None`` before the first frame."""
        return self._day

    def update(self, detections: sv.Detections, ts: datetime) -> sv.Detections:
        """Track one frame's detections; returns confirmed people with ``data["person_id"]``.

        ``ts`` is the frame's capture time (timezone-aware, strictly increasing). Rows
        whose ``class_id`` is not a person are ignored; the returned rows may be in a
        different order from the input, and carry ``tracker_id`` (ByteTrack's own
        integer, restarting each day) beside the person id.
        """
        import supervision as sv

        if not isinstance(detections, sv.Detections):
            raise TypeError(f"detections must be supervision.Detections, got {type(detections)}")
        self._advance_clock(ts)
        people = _people_only(detections)
        assert self._day_start is not None
        seconds = (ts - self._day_start).total_seconds()
        tracked: sv.Detections = self._tracker.update(people, timestamp=seconds)
        tracker_ids = np.asarray(tracked.tracker_id, dtype=int)
        is_confirmed = tracker_ids >= 0
        if not is_confirmed.any():
            empty = sv.Detections.empty()
            empty.tracker_id = np.array([], dtype=int)
            empty.data[PERSON_ID_KEY] = np.array([], dtype=str)
            return empty
        # Once everyone is confirmed (most frames) the mask selects every row; skip the
        # copy. ``tracked`` is ByteTrack's own fresh selection, so adding a column to it
        # never touches the caller's detections.
        confirmed = tracked
        if not is_confirmed.all():
            confirmed = cast("sv.Detections", tracked[is_confirmed])
            tracker_ids = tracker_ids[is_confirmed]
        ids = [self._person_id(t) for t in tracker_ids.tolist()]
        confirmed.data[PERSON_ID_KEY] = np.array(ids, dtype=str)
        return confirmed

    def reassign(self, tracker_ids: list[int], person_ids: list[str]) -> None:
        """From now on, track ``tracker_ids[k]`` is person ``person_ids[k]`` (a colour
        re-pairing after a crowd parted). Person ids must be this camera-day's own; a
        track that held one of them before, and is not re-paired here, gets a fresh id,
        so no two tracks ever share a person."""
        if len(tracker_ids) != len(person_ids) or len(set(person_ids)) != len(person_ids):
            raise ValueError("need one distinct person id per tracker id")
        prefix = f"{self.camera_id}:"
        issued = {f"{prefix}{token}" for token in self._tokens}
        if unknown := [p for p in person_ids if p not in issued]:
            raise ValueError(f"person ids {unknown} were never issued by this tracker")
        moving = set(person_ids)
        for tracker_id, person_id in list(self._person_ids.items()):
            if person_id in moving and tracker_id not in tracker_ids:
                del self._person_ids[tracker_id]
                self._person_id(tracker_id)  # a fresh token for the displaced track
        for tracker_id, person_id in zip(tracker_ids, person_ids, strict=True):
            self._person_ids[tracker_id] = person_id

    def reset(self) -> None:
        """Forget every track and start a fresh token space (a new day, a reconnected feed)."""
        self._tracker.reset()
        self._person_ids.clear()
        self._tokens.clear()
        self._day = None
        self._day_start = None
        self._last_ts = None

    def _advance_clock(self, ts: datetime) -> None:
        check_next_time(ts, self._last_ts, "frame")
        day = ts.astimezone(self._day_tz).date()
        if day != self._day:
            self.reset()
            self._day = day
            self._day_start = ts
        self._last_ts = ts

    def _person_id(self, tracker_id: int) -> str:
        known = self._person_ids.get(tracker_id)
        if known is not None:
            return known
        token = self._new_token()
        while token in self._tokens:
            token = self._new_token()
        self._tokens.add(token)
        person_id = f"{self.camera_id}:{token}"
        self._person_ids[tracker_id] = person_id
        return person_id

    def _new_token(self) -> str:
        bits = self._rng.getrandbits(_TOKEN_BITS) if self._rng else secrets.randbits(_TOKEN_BITS)
        return f"{bits:012x}"

    def _new_bytetrack(self) -> Any:
        try:
            from trackers import BIoU, ByteTrackTracker, IoU
        except ImportError as exc:  # pragma: no cover - the vision extra is installed in dev
            raise MissingExtra("trackers", "vision") from exc
        from storelens.vision.kalman import ScalarXYXYEstimator

        cfg = self.config
        overlap = BIoU(buffer_ratio=cfg.overlap_buffer) if cfg.overlap_buffer > 0 else IoU()
        return ByteTrackTracker(
            lost_track_buffer=cfg.lost_track_buffer,
            frame_rate=self.fps,
            track_activation_threshold=cfg.activation_confidence,
            minimum_consecutive_frames=cfg.min_consecutive_frames,
            minimum_iou_threshold=cfg.min_overlap,
            high_conf_det_threshold=cfg.high_confidence,
            iou=overlap,
            state_estimator_class=ScalarXYXYEstimator,
        )


def _people_only(detections: sv.Detections) -> sv.Detections:
    """Keep person rows; reject boxes a tracker would turn into NaN tracks."""
    if len(detections) == 0:
        return detections
    if not np.all(np.isfinite(detections.xyxy)):
        raise ValueError("detections contain non-finite box coordinates")
    if detections.confidence is not None and not np.all(np.isfinite(detections.confidence)):
        raise ValueError("detections contain non-finite confidences")
    if detections.class_id is None:
        return detections
    people = np.asarray(detections.class_id) == PERSON_CLASS_ID
    if people.all():  # a person detector's output: nothing to drop, so no copy
        return detections
    return cast("sv.Detections", detections[people])


def renaming_hook(
    renamers: Mapping[str, Callable[[datetime, sv.Detections], sv.Detections]],
) -> Callable[[str, datetime, sv.Detections], sv.Detections]:
    """A pipeline ``after_tracking`` hook from per-camera tracker-id renamers
    (`storelens.sim.detections.IdSwitches`): a renamed track gets a new person id, as a
    real tracker's identity switch would. Re-exported by `storelens.vision.pipeline`."""

    def hook(camera_id: str, ts: datetime, tracked: sv.Detections) -> sv.Detections:
        rename = renamers.get(camera_id)
        if rename is None or tracked.tracker_id is None:
            return tracked
        renamed = rename(ts, tracked)
        before = np.asarray(tracked.tracker_id)
        after = np.asarray(renamed.tracker_id)
        ids = np.asarray(tracked.data[PERSON_ID_KEY], dtype=object).copy()
        changed = before != after
        ids[changed] = [f"{camera_id}:sw{n}" for n in after[changed].tolist()]
        renamed.data = {**tracked.data, PERSON_ID_KEY: ids.astype(str)}
        return renamed

    return hook
