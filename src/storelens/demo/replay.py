"""Replay a simulated day into a running server at an accelerated clock.

The demo's café "runs live": the day the simulator wrote is posted to
``POST /v1/events`` through the one ingest client, each event once the accelerated
clock reaches its time, so the pages update as a real store's would. Time comes from
an injected :class:`~storelens.core.retry.Clock`: tests drive it with a
``ManualClock`` and never sleep.

Events are posted in batches of whatever fell due since the last post, at least
``tick_s`` of real time apart (at 60x, half a second is 30 s of café time), never more
than the server takes in one request. A server that is starting or restarting is
waited for with the shared backoff; a refused batch is counted and skipped; a refused
key stops the replay (nothing will get better by retrying).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import orjson

from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock
from storelens.ingest.client import (
    MAX_BATCH,
    IngestAuthError,
    IngestRefused,
    IngestResponse,
    IngestUnavailable,
)

__all__ = ["CRM_TYPES", "DayReplay", "ReplayEvent", "ReplayReport", "read_replay"]

log = logging.getLogger(__name__)

CRM_TYPES = frozenset({"customer.upserted", "consent.changed"})
"""The CRM sync the simulator sends at opening: the history week already carries it,
and a store's tills and cameras would never send it."""


@dataclass(frozen=True, slots=True)
class ReplayEvent:
    """One event as the server will read it (``raw``), and when it happened (``at``)."""

    at: datetime
    raw: bytes


def read_replay(path: Path, skip_types: Iterable[str] = CRM_TYPES) -> list[ReplayEvent]:
    """The events of a JSON Lines file in time order (ties keep file order)."""
    skipped = set(skip_types)
    out = []
    with path.open("rb") as fh:
        for line in fh:
            if not line.strip():
                continue
            event = orjson.loads(line)
            if event["type"] in skipped:
                continue
            out.append(ReplayEvent(datetime.fromisoformat(event["ts"]), line.strip()))
    out.sort(key=lambda e: e.at)
    return out


@dataclass
class ReplayReport:
    """What the server made of the replay so far."""

    posted: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    refused_batches: int = 0
    finished: bool = False
    last_event_at: datetime | None = None

    def add(self, answer: IngestResponse, sent: Sequence[ReplayEvent]) -> None:
        self.posted += len(sent)
        self.accepted += answer.accepted
        self.duplicates += answer.duplicates
        self.rejected += answer.rejected
        self.batches += 1
        self.last_event_at = sent[-1].at


class DayReplay:
    """Posts ``events`` (in time order) as the clock reaches them, ``speed`` times real time.

    ``post`` sends one JSON array and returns the server's count (an
    :class:`~storelens.ingest.client.IngestClient`'s ``post_events``). ``stop`` ends the
    replay at its next wait; :meth:`run` returns what was posted until then.
    """

    def __init__(
        self,
        events: Sequence[ReplayEvent],
        post: Callable[[bytes], IngestResponse],
        *,
        speed: float,
        clock: Clock = SYSTEM_CLOCK,
        stop: threading.Event | None = None,
        tick_s: float = 0.5,
        max_batch: int = MAX_BATCH,
        backoff: Backoff | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        if any(b.at < a.at for a, b in pairwise(events)):
            raise ValueError("events must be in time order")
        self.events = events
        self.post = post
        self.speed = speed
        self.clock = clock
        self.stop = stop or threading.Event()
        self.tick_s = tick_s
        self.max_batch = max_batch
        self.backoff = backoff or Backoff(initial=0.25, cap=5.0)
        self.report = ReplayReport()

    def wait_for_server(self) -> bool:
        """Post an empty batch until the server answers; False when stopped first."""
        return self._send([])

    def run(self) -> ReplayReport:
        """Replay from the first event's time; the clock starts once the server answers."""
        if not self.events or not self.wait_for_server():
            self.report.finished = not self.events
            return self.report
        began, first = self.clock.now(), self.events[0].at
        i, n = 0, len(self.events)
        while i < n:
            now = first + timedelta(seconds=(self.clock.now() - began) * self.speed)
            j = i
            while j < n and j - i < self.max_batch and self.events[j].at <= now:
                j += 1
            full = j - i >= self.max_batch  # more are due already: post them without waiting
            if j > i and not self._send(self.events[i:j]):
                return self.report
            i = j
            if i >= n:
                break
            due_in = (self.events[i].at - now).total_seconds() / self.speed
            if not full and self.clock.sleep(max(self.tick_s, due_in), self.stop):
                return self.report
            if self.stop.is_set():
                return self.report
        self.report.finished = True
        return self.report

    def _send(self, batch: Sequence[ReplayEvent]) -> bool:
        """Post one batch, waiting out an unavailable server; False when stopped."""
        body = b"[" + b",".join(e.raw for e in batch) + b"]"
        self.backoff.reset()
        while not self.stop.is_set():
            try:
                answer = self.post(body)
            except IngestAuthError:
                raise
            except IngestRefused as exc:
                log.warning("the server refused a replay batch of %d events: %s", len(batch), exc)
                self.report.refused_batches += 1
                return True
            except IngestUnavailable as exc:
                if self.clock.sleep(self.backoff.next(exc.retry_after), self.stop):
                    return False
                continue
            if batch:
                self.report.add(answer, batch)
            if answer.errors:  # locations and messages only: the server echoes no values
                first = answer.errors[0]
                log.warning(
                    "the server rejected %d replayed events; the first (%s): %s",
                    answer.rejected,
                    first.id,
                    first.errors[:2],
                )
            return True
        return False
