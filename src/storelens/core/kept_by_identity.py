"""Values kept per object, found by the object's identity instead of its value.

Serving keeps derived values of objects that are shared between requests and cost
more to hash and compare by value than to look up: a request context's filled form
(a pydantic model's hash and equality cost more than filling it), a shared shown
item's JSON text. An ``id()`` is only unique while its object lives, so each entry
holds its object beside the value: while kept, no other object can be given that id,
and a hit is confirmed with ``is``. Full, it starts afresh: entries are cheap to
rebuild and a bound matters more than keeping the old ones.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["KeptByIdentity"]

K = TypeVar("K")
V = TypeVar("V")


class KeptByIdentity(Generic[K, V]):
    """At most ``max_entries`` values, each under an object and an optional ``extra``
    key (a context's hour, say). Values are never None (None means not kept). Safe to
    share between threads: each step is one dict operation, and a race at worst builds
    an equal value twice."""

    __slots__ = ("_entries", "_max")

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._entries: dict[tuple[int, Hashable], tuple[K, V]] = {}
        self._max = max_entries

    def get(self, obj: K, extra: Hashable = None) -> V | None:
        held = self._entries.get((id(obj), extra))
        return held[1] if held is not None and held[0] is obj else None

    def keep(self, obj: K, value: V, extra: Hashable = None) -> V:
        """Keep ``value`` for ``obj`` (and ``extra``); returns it."""
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[(id(obj), extra)] = (obj, value)
        return value

    def values(self) -> list[V]:
        return [value for _, value in list(self._entries.values())]

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
