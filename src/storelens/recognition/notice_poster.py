"""An edge box's :class:`ArrivalSink`: a recognised member becomes ``POST /v1/notices``.

The entrance camera may run on a small box beside the door rather than in the server.
There, a confirmed arrival is posted through the one ingest client
(:class:`~storelens.ingest.client.IngestClient`) with the box's device key, and the
server broadcasts the notice to the staff on shift exactly as for a loyalty scan.

An arrival is only worth announcing while the member is still near the door, so a
server that cannot be reached is retried with the shared backoff for at most
``faces_notice_retry_s`` and then given up (logged, never queued to disk: a stale
"Ada just walked in" helps nobody, and a queue would be one more place holding who
came in when). A refusal (unknown customer, a key for another store, consent withdrawn or
the store switched off meanwhile) is not retried.
Log lines name the store and the anonymous track, never the customer.

The camera loop must not wait on the network: :class:`NoticeCourier` takes arrivals
from the loop into a small in-memory queue and posts them on its own thread, each
within ``faces_notice_retry_s`` of when the member was seen, so a server that is down
costs the camera nothing and the queue forgets what is too old to announce.
"""

from __future__ import annotations

import logging
import queue
import threading
from types import TracebackType

from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock
from storelens.ingest.client import (
    IngestClient,
    IngestRefused,
    IngestUnavailable,
    NoticeReceipt,
)
from storelens.recognition.matcher import Arrival

__all__ = ["NoticeCourier", "NoticePoster"]

log = logging.getLogger(__name__)
TRIGGER = "recognition"


class NoticePoster:
    """Posts each arrival as a staff notice; see the module docstring."""

    def __init__(
        self,
        client: IngestClient,
        *,
        retry_for_s: float,
        backoff: Backoff | None = None,
        clock: Clock = SYSTEM_CLOCK,
        stop: threading.Event | None = None,
    ) -> None:
        self.client = client
        self.retry_for_s = retry_for_s
        self.backoff = backoff or Backoff(initial=0.2, cap=5.0)
        self.clock = clock
        self.stop = stop or threading.Event()
        self.sent: list[NoticeReceipt] = []  # the last answers, for status pages and tests
        self.given_up = 0

    def __call__(self, arrival: Arrival, *, seen_at: float | None = None) -> None:
        """Announce ``arrival``; returns when the server answered or the time ran out,
        ``retry_for_s`` after ``seen_at`` (the clock's reading when it was seen; now
        when not given)."""
        deadline = (self.clock.now() if seen_at is None else seen_at) + self.retry_for_s
        if self.clock.now() >= deadline:
            self._give_up(arrival, "too late to announce")
            return
        self.backoff.reset()
        while True:
            try:
                receipt = self.client.post_notice(arrival.store_id, arrival.customer_id, TRIGGER)
            except IngestUnavailable as exc:
                wait = self.backoff.next(exc.retry_after)
                if self.clock.now() + wait > deadline:
                    self._give_up(arrival, f"server unavailable ({exc.status or 'no answer'})")
                    return
                if self.clock.sleep(wait, self.stop):
                    self._give_up(arrival, "stopping")
                    return
                continue
            except IngestRefused as exc:  # 4xx: the same request would be refused again
                self._give_up(arrival, f"refused with {exc.status}")
                return
            self.sent = [*self.sent[-99:], receipt]
            return

    def _give_up(self, arrival: Arrival, why: str) -> None:
        self.given_up += 1
        log.warning(
            "arrival on track %s at store %s not announced: %s",
            arrival.track_id,
            arrival.store_id,
            why,
        )


class NoticeCourier:
    """Posts arrivals on its own thread so the camera loop never waits on the server.

    ``depth`` arrivals wait at most; when more come while the server is away, the oldest
    is given up (the newest member is the one still near the door). Use as a context
    manager, or call :meth:`close`, which announces nothing more once stopped.
    """

    def __init__(self, poster: NoticePoster, *, depth: int = 16) -> None:
        self.poster = poster
        self._queue: queue.Queue[tuple[Arrival, float] | None] = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._run, name="notice-courier", daemon=True)
        self._thread.start()

    @property
    def sent(self) -> list[NoticeReceipt]:
        return self.poster.sent

    @property
    def given_up(self) -> int:
        return self.poster.given_up

    def __call__(self, arrival: Arrival) -> None:
        item = (arrival, self.poster.clock.now())
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    oldest = self._queue.get_nowait()
                except queue.Empty:
                    continue
                if oldest is not None:
                    self.poster._give_up(oldest[0], "queue full while the server is away")

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            arrival, seen_at = item
            if self.poster.stop.is_set():
                self.poster._give_up(arrival, "stopping")
                continue
            self.poster(arrival, seen_at=seen_at)

    def close(self, *, wait_s: float | None = None) -> None:
        """Deliver what is queued (each still within its deadline), then stop.
        ``wait_s`` bounds the wait; after it, the poster is told to stop retrying."""
        self._queue.put(None)
        self._thread.join(wait_s)
        if self._thread.is_alive():
            self.poster.stop.set()
            self._thread.join()

    def __enter__(self) -> NoticeCourier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
