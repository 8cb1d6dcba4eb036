"""Fan-out of store messages to connected staff devices over WebSocket.

Producers run on worker threads (the projection loop), consumers are WebSocket
handlers on the event loop: ``publish`` hands messages across with
``call_soon_threadsafe`` so neither side blocks the other. A slow device gets its
oldest messages dropped rather than growing memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

__all__ = ["StoreHub"]

log = logging.getLogger(__name__)


class StoreHub:
    def __init__(self, queue_size: int = 100) -> None:
        self.queue_size = queue_size
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, store_id: str) -> asyncio.Queue[dict[str, Any]]:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.queue_size)
        self._subscribers.setdefault(store_id, set()).add(queue)
        return queue

    def unsubscribe(self, store_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        subs = self._subscribers.get(store_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subscribers[store_id]

    def subscribers(self, store_id: str) -> int:
        return len(self._subscribers.get(store_id, ()))

    def publish(self, messages: Iterable[dict[str, Any]]) -> None:
        """Thread-safe: deliver each message to the devices of its ``store_id``."""
        batch = list(messages)
        if not batch or self._loop is None or self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._deliver, batch)

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        for message in batch:
            for queue in list(self._subscribers.get(message.get("store_id", ""), ())):
                if queue.full():
                    queue.get_nowait()  # drop the oldest for a device that can't keep up
                queue.put_nowait(message)
