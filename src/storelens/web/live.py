"""Today's live stream: woken by the projection loop, never by polling the database.

The projection loop tells :meth:`LiveBoard.changed` (from its own thread) after every
pass that handled events; open Today pages are waiting on the board and each
recomputes its store's figures once per change, shared by every viewer of that store.
Between changes a stream sends only a keep-alive comment, so an idle store costs no
queries however many screens show it. Server-sent events rather than a WebSocket: the
page only listens, the browser reconnects by itself, and the cookie rides along.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime

__all__ = ["LiveBoard", "sse_stream"]

ViewJson = Callable[[], Awaitable[str]]


class LiveBoard:
    """A change counter that asyncio streams wait on and a worker thread bumps."""

    def __init__(self) -> None:
        self.version = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._changed: asyncio.Event | None = None
        self._cache: dict[str, tuple[int, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def _bind(self) -> asyncio.Event:
        if self._changed is None or self._loop is not asyncio.get_running_loop():
            self._loop = asyncio.get_running_loop()
            self._changed = asyncio.Event()
        return self._changed

    def changed(self, counts: Mapping[str, int] | None = None) -> None:
        """Thread-safe; a no-op until a stream has bound the board to its event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._bump)

    def _bump(self) -> None:
        self.version += 1
        event = self._bind()
        event.set()
        self._changed = asyncio.Event()  # later waiters wait for the next change

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it differs from ``seen``, or after ``timeout`` seconds."""
        event = self._bind()
        if self.version == seen:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        return self.version

    async def view(self, key: str, compute: ViewJson) -> str:
        """``compute()`` once per change and key, shared by everyone watching ``key``."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            version = self.version
            cached = self._cache.get(key)
            if cached is not None and cached[0] == version:
                return cached[1]
            body = await compute()
            self._cache[key] = (version, body)
            return body


async def sse_stream(
    board: LiveBoard,
    key: str,
    compute: ViewJson,
    *,
    heartbeat_s: float,
    expires_at: datetime | None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[str]:
    """``event: today`` with the figures at once and after every change; ``event:
    expired`` (and the end) once the session's token has run out, so a screen left on
    overnight stops showing figures to nobody in particular."""
    yield "retry: 2000\n\n"
    seen = -1
    while True:
        if expires_at is not None and now() >= expires_at:
            yield "event: expired\ndata: {}\n\n"
            return
        version = board.version
        if version != seen:
            seen = version
            yield f"event: today\ndata: {await board.view(key, compute)}\n\n"
        else:
            yield ": keep-alive\n\n"
        await board.wait(seen, heartbeat_s)
