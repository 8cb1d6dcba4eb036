"""Fan-out of store messages to connected staff devices over WebSocket.

Producers run on worker threads (the projection loop), consumers are WebSocket
handlers on the event loop: ``publish`` hands messages across with
``call_soon_threadsafe`` so neither side blocks the other. A slow device gets its
oldest messages dropped rather than growing memory without bound.

A message may name its ``audience`` (the logins that may see it, e.g. the staff on
shift for a notice): then only subscribers who said who they are when subscribing
and are in that list get it, and the key itself is not passed on.
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
        self._members: dict[asyncio.Queue[dict[str, Any]], str | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def subscribe(self, store_id: str, member: str | None = None) -> asyncio.Queue[dict[str, Any]]:
        """A queue of the store's messages; ``member`` (a login) for audience checks."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(self.queue_size)
        self._subscribers.setdefault(store_id, set()).add(queue)
        self._members[queue] = member
        return queue

    def unsubscribe(self, store_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._members.pop(queue, None)
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
            audience = message.get("audience")
            if "audience" in message:
                message = {k: v for k, v in message.items() if k != "audience"}
            for queue in list(self._subscribers.get(message.get("store_id", ""), ())):
                if audience is not None and self._members.get(queue) not in audience:
                    continue
                if queue.full():
                    queue.get_nowait()  # drop the oldest for a device that can't keep up
                queue.put_nowait(message)
