"""Alert delivery to an HTTP webhook (a chat channel, a pager), off the processing path.

Messages wait in a bounded queue and a single thread posts them with retries, so a
slow or dead webhook never holds up metric processing; what cannot be delivered
after the retries is logged and dropped (alerts are also stored and on the API).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpx

__all__ = ["Webhook"]

log = logging.getLogger(__name__)


class Webhook:
    def __init__(
        self,
        url: str,
        *,
        attempts: int = 4,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url, self.attempts, self.backoff_s = url, attempts, backoff_s
        self.client = httpx.Client(timeout=timeout_s, transport=transport)
        self.delivered = 0
        self.failed = 0
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
        self.client.close()

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            for attempt in range(self.attempts):
                try:
                    r = self.client.post(self.url, json=message)
                    if r.status_code < 500 and r.status_code != 429:
                        if r.is_success:
                            self.delivered += 1
                        else:
                            self.failed += 1
                            log.warning("alert webhook refused: %s", r.status_code)
                        break
                except httpx.HTTPError as exc:
                    log.info("alert webhook attempt %d failed: %s", attempt + 1, exc)
                time.sleep(self.backoff_s * 2**attempt)
            else:
                self.failed += 1
                log.warning("alert webhook gave up on %s", message.get("rule_id"))
