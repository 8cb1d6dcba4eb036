"""Matching at the entrance: a member is recognised on several frames of one track, never one.

A single frame under the threshold is weak evidence (a lookalike, a lucky angle), so a
track is confirmed as a member only when ``k`` of its last ``n`` usable frames match the
same member. Then the :class:`ArrivalSink` is called once for that track. A frame that
matches no one leaves nothing behind: the embedding goes out of scope in
:meth:`EntranceMatcher.observe`, and the track remembers only "no match" (no vector, no
crop, no distance), which is not face data.

The gallery holds only members whose consent covers this store. Withdrawal drops the
member from it at once (:meth:`forget`), and the consent is checked once more, against
the database, just before the sink is called, so a withdrawal in another process stops
the arrival too.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

from storelens.recognition.keyring import EMBEDDING_DIM

__all__ = ["Arrival", "ArrivalSink", "EntranceMatcher", "Gallery", "MatchRule"]


@dataclass(frozen=True, slots=True)
class Arrival:
    """A member recognised entering a store (what staff get notified of)."""

    customer_id: str
    store_id: str
    track_id: str
    distance: float  # median distance of the matching frames
    ts: datetime


class ArrivalSink(Protocol):
    """Where confirmed arrivals go; the server wires it to ``storelens.staff.raise_notice``."""

    def __call__(self, arrival: Arrival) -> None: ...


class Gallery:
    """The members one store may recognise: their embeddings and customer ids."""

    def __init__(self, vectors: npt.ArrayLike, customer_ids: Sequence[str]) -> None:
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(customer_ids), EMBEDDING_DIM)
        self._matrix = matrix
        self._ids = tuple(customer_ids)

    @classmethod
    def empty(cls) -> Gallery:
        return cls(np.zeros((0, EMBEDDING_DIM), dtype=np.float32), ())

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self._ids)

    def nearest(self, embedding: npt.ArrayLike) -> tuple[str, float] | None:
        """The closest member and the Euclidean distance to their nearest photo."""
        if not self._ids:
            return None
        distances = np.linalg.norm(self._matrix - np.asarray(embedding, np.float32), axis=1)
        best = int(np.argmin(distances))
        return self._ids[best], float(distances[best])

    def without(self, customer_id: str) -> Gallery:
        keep = [i for i, c in enumerate(self._ids) if c != customer_id]
        return Gallery(self._matrix[keep], [self._ids[i] for i in keep])


@dataclass(frozen=True, slots=True)
class MatchRule:
    """``threshold``: distance under which a frame matches; ``k`` of ``n`` frames confirm."""

    threshold: float
    k: int
    n: int
    track_idle_s: float

    def __post_init__(self) -> None:
        if not 0 < self.k <= self.n:
            raise ValueError("need 0 < k <= n")


@dataclass(slots=True)
class _Track:
    votes: deque[tuple[str, float] | None]
    last_seen: datetime
    confirmed: bool = False


@dataclass(slots=True)
class EntranceMatcher:
    """Per-track votes for one store's entrance; pure apart from the two callables."""

    store_id: str
    gallery: Gallery
    rule: MatchRule
    sink: ArrivalSink
    still_consented: Callable[[str], bool] = field(default=lambda _customer: True)
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def observe(self, track_id: str, ts: datetime, embedding: npt.ArrayLike) -> Arrival | None:
        """One usable face of a track; returns the arrival if this frame confirmed it."""
        track = self._tracks.get(track_id)
        if track is None:
            track = self._tracks[track_id] = _Track(deque(maxlen=self.rule.n), ts)
        track.last_seen = ts
        if track.confirmed:
            return None
        hit = self.gallery.nearest(embedding)
        del embedding  # nothing of the face outlives this call
        if hit is None or not hit[1] < self.rule.threshold:
            track.votes.append(None)
            return None
        track.votes.append(hit)
        customer_id = hit[0]
        agreeing = [v[1] for v in track.votes if v is not None and v[0] == customer_id]
        if len(agreeing) < self.rule.k:
            return None
        if customer_id not in self.gallery.members or not self.still_consented(customer_id):
            self.forget(customer_id)
            return None
        track.confirmed = True
        arrival = Arrival(customer_id, self.store_id, track_id, statistics.median(agreeing), ts)
        self.sink(arrival)
        return arrival

    def forget(self, customer_id: str) -> None:
        """Stop recognising a member now (consent withdrawn, customer erased)."""
        self.gallery = self.gallery.without(customer_id)
        for track in self._tracks.values():
            kept = [v for v in track.votes if v is None or v[0] != customer_id]
            track.votes = deque(kept, maxlen=self.rule.n)

    def end_track(self, track_id: str) -> None:
        self._tracks.pop(track_id, None)

    def expire(self, now: datetime) -> None:
        """Forget tracks not seen for ``track_idle_s`` (people who left the camera)."""
        for track_id, track in list(self._tracks.items()):
            if (now - track.last_seen).total_seconds() > self.rule.track_idle_s:
                del self._tracks[track_id]

    @property
    def open_tracks(self) -> int:
        return len(self._tracks)
