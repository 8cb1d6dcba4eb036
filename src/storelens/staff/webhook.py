"""Alert delivery to an HTTP webhook (a chat channel, a pager), off the processing path.

Messages wait in a bounded queue and a single thread posts them with retries, so a
slow or dead webhook never holds up metric processing; what cannot be delivered
after the retries is logged and dropped (alerts are also stored and on the API).
"""

from __future__ import annotations

import logging
import queue
import random
import threading
from collections.abc import Iterable
from typing import Any

import httpx

from storelens.core.retry import SYSTEM_CLOCK, Backoff, Clock, parse_retry_after

__all__ = ["Webhook"]

log = logging.getLogger(__name__)


class Webhook:
    """Posts alert messages from a background thread; ``delivered``/``failed`` count them.

    Network errors, 429 and 5xx are retried up to ``attempts`` tries in all, waiting by
    :class:`~storelens.core.retry.Backoff` (``Retry-After`` honoured, at most
    ``max_retry_after_s``); other answers are final. ``transport``, ``clock`` and
    ``rng`` are for tests.
    """

    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        max_retry_after_s: float = 60.0,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.url, self.attempts = url, attempts
        self.backoff = Backoff(
            backoff_s, max_backoff_s, jitter="equal", max_retry_after=max_retry_after_s, rng=rng
        )
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self.delivered = 0
        self.failed = 0
        self._clock = clock
        self._stop = threading.Event()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=1000)
        self._thread = threading.Thread(target=self._run, name="alert-webhook", daemon=True)
        self._thread.start()

    def publish(self, messages: Iterable[dict[str, Any]]) -> None:
        for m in messages:
            try:
                self._queue.put_nowait(m)
            except queue.Full:
                self.failed += 1
                log.warning("alert webhook queue full; dropping %s", m.get("rule_id"))

    def close(self, timeout: float = 5.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
        self._stop.set()  # a retry wait still running after the timeout ends now
        self._thread.join(1.0)
        self.client.close()

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        self.backoff.reset()
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                r = self.client.post(self.url, json=message)
            except httpx.HTTPError as exc:
                log.info("alert webhook attempt %d failed: %s", attempt, exc)
            else:
                if r.status_code < 500 and r.status_code != 429:
                    if r.is_success:
                        self.delivered += 1
                    else:
                        self.failed += 1
                        log.warning("alert webhook refused: %s", r.status_code)
                    return
                retry_after = parse_retry_after(r.headers.get("retry-after"))
                log.info("alert webhook attempt %d answered %d", attempt, r.status_code)
            if attempt < self.attempts and self._clock.sleep(
                self.backoff.next(retry_after), self._stop
            ):
                break
        self.failed += 1
        log.warning("alert webhook gave up on %s", message.get("rule_id"))
