"""Recently built period views, reused while nothing they were built from has moved.

A week of Floor or Operations takes a second or so to build from facts; managers
open the same week again and again (switching pages, phones on the floor). A view is
keyed by its page, store and days, and by where the event log and the two projections
it reads (``ops`` facts, ``orders`` sales) stood: any new event or processed batch
makes a new key, so a cached view is never staler than a freshly built one would be.
Only built views are kept; a 404 or 422 is answered afresh every time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from storelens.storage.eventlog import EventLog

__all__ = ["ViewCache", "log_state"]

T = TypeVar("T")
SOURCES = ("ops", "orders")  # the projections Floor and Operations read


def log_state(event_log: EventLog) -> tuple[int, ...]:
    """The log's head and the positions of the projections the views read."""
    return (event_log.head(), *(event_log.position(name) for name in SOURCES))


class ViewCache:
    """A small thread-safe LRU of built views (request handlers run on worker threads)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get_or_build(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]  # type: ignore[return-value]
            self.misses += 1
        value = build()  # outside the lock: two builds of one key cost time, not correctness
        if self.size > 0:
            with self._lock:
                self._items[key] = value
                self._items.move_to_end(key)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return value
