"""An edge box's :class:`ArrivalSink`: a recognised member becomes ``POST /v1/notices``.

The entrance camera may run on a small box beside the door rather than in the server.
There, a confirmed arrival is posted through the one ingest client
(:class:`~storelens.ingest.client.IngestClient`) with the box's device key, and the
server broadcasts the notice to the staff on shift exactly as for a loyalty scan.

An arrival is only worth announcing while the member is still near the door, so a
server that cannot be reached is retried with the shared backoff for at most
``faces_notice_retry_s`` and then given up (logged, never queued to disk: a stale
"Ada just walked in" helps nobody, and a queue would be one more place holding who
came in when). A refusal (unknown customer, a key for another store) is not retried.
Log lines name the store and the anonymous track, never the customer.
"""

from __future__ import annotations

import logging
import threading

from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock
from storelens.ingest.client import (
    IngestClient,
    IngestRefused,
    IngestUnavailable,
    NoticeReceipt,
)
from storelens.recognition.matcher import Arrival

__all__ = ["NoticePoster"]

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

    def __call__(self, arrival: Arrival) -> None:
        """Announce ``arrival``; returns when the server answered or the time ran out."""
        deadline = self.clock.now() + self.retry_for_s
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
