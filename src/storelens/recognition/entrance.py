"""A store's entrance camera: anonymous tracks in, members' arrivals out.

:func:`open_entrance` reads the store's switch first and returns None when it is off,
before anything of the face pipeline is imported: a store that never turned
recognition on never runs face code (``tests/recognition`` checks ``sys.modules``).
When it is on, only the members whose consent covers this store are loaded, and the
matcher asks the database again before each arrival, so a withdrawal or erasure made
anywhere stops recognition at once.

Faces are looked for inside each track's box (the person detector and tracker of
:mod:`storelens.vision` give those), so a face is tied to an anonymous track id, and a
track that matches nobody stays just that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from sqlalchemy import Engine

from storelens.config import Settings
from storelens.recognition.keyring import FaceKeyring
from storelens.recognition.matcher import (
    Arrival,
    ArrivalSink,
    EntranceMatcher,
    Gallery,
    MatchRule,
)
from storelens.recognition.store import consent_active, load_gallery, recognition_enabled

if TYPE_CHECKING:
    from storelens.recognition.faces import FacePipeline

__all__ = ["EntranceCamera", "TrackBox", "open_entrance", "rule_from"]


@dataclass(frozen=True, slots=True)
class TrackBox:
    """An anonymous person track in this frame: its id and box (x1, y1, x2, y2) in pixels."""

    track_id: str
    box: tuple[int, int, int, int]


def rule_from(settings: Settings) -> MatchRule:
    return MatchRule(
        threshold=settings.faces_match_threshold,
        k=settings.faces_match_k,
        n=settings.faces_match_n,
        track_idle_s=settings.faces_track_idle_s,
    )


class EntranceCamera:
    """Frames of one store's entrance through the face pipeline into the matcher."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        store_id: str,
        matcher: EntranceMatcher,
        pipeline: FacePipeline,
        keyring: FaceKeyring,
    ) -> None:
        self.engine, self.settings, self.store_id = engine, settings, store_id
        self.matcher, self.pipeline, self.keyring = matcher, pipeline, keyring
        self._loaded_at: datetime | None = None

    def refresh(self, now: datetime) -> None:
        """Reload the store's members (enrollments, withdrawals, the switch)."""
        with self.engine.connect() as conn:
            self.matcher.gallery = load_gallery(conn, self.store_id, self.keyring)
        self._loaded_at = now

    def frame(
        self, rgb: npt.NDArray[np.uint8], tracks: Sequence[TrackBox], ts: datetime
    ) -> list[Arrival]:
        """One entrance frame; returns the arrivals it confirmed (the sink has them too)."""
        due = self._loaded_at is None or (
            (ts - self._loaded_at).total_seconds() >= self.settings.faces_gallery_refresh_s
        )
        if due:
            self.refresh(ts)
        self.matcher.expire(ts)
        if len(self.matcher.gallery) == 0:
            return []  # no member to look for: no face is even detected
        arrivals = []
        height, width = rgb.shape[:2]
        for track in tracks:
            x1, y1, x2, y2 = (int(v) for v in track.box)
            x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
            if (
                x2 - x1 < self.settings.faces_min_face_px
                or y2 - y1 < self.settings.faces_min_face_px
            ):
                continue
            faces = self.pipeline.find(rgb[y1:y2, x1:x2])
            usable = [f for f in faces if f.verdict.usable]
            if not usable:
                continue
            arrival = self.matcher.observe(track.track_id, ts, self.pipeline.embed(usable[0]))
            if arrival is not None:
                arrivals.append(arrival)
        return arrivals


def open_entrance(
    engine: Engine,
    settings: Settings,
    store_id: str,
    sink: ArrivalSink,
    *,
    pipeline: FacePipeline | None = None,
) -> EntranceCamera | None:
    """The store's entrance recogniser, or None when the store has recognition off."""
    with engine.connect() as conn:
        if not recognition_enabled(conn, store_id):
            return None
    from storelens.recognition.faces import FacePipeline  # the faces extra, from here on

    keyring = FaceKeyring.open(settings.faces_key_path, create=True)

    def still_consented(customer_id: str) -> bool:
        with engine.connect() as conn:
            return consent_active(conn, customer_id, store_id)

    # The members load with the first frame (and every faces_gallery_refresh_s after).
    matcher = EntranceMatcher(store_id, Gallery.empty(), rule_from(settings), sink, still_consented)
    return EntranceCamera(
        engine,
        settings,
        store_id,
        matcher,
        pipeline or FacePipeline.from_settings(settings),
        keyring,
    )
