"""The store data every answer shares (store row, popularity, catalogue, stock), per process.

None of it is personal, and each piece is reloaded once its time to live has passed.
How it is reloaded decides the tail latency of a busy server. Reloading inline meant
that when the stock (``STOCK_TTL_S``, one second) expired, every request in flight
found it expired at once, and an answer that may not do I/O on the event loop had to
go to the threadpool. Measured with one uvicorn worker under wrk: about every second
all 16 requests in flight went to threads, waited for the one reload, and then
competed with the event loop for the GIL. They finished 80-240 ms late on a loaded
machine and were almost all of the requests over 60 ms (warm answers: 11 of 19,000).

So an expired value that is not too old is served while **one** reload runs in the
background (stale while revalidate). A request on the event loop gets the old value
instead of a trip to a thread. The value is at most ``ttl`` plus ``grace_s`` old. Past
that, or when the value is missing, the warm path still refuses (the caller loads it
in a thread, one load per key). A value dropped on purpose (:meth:`SharedCache.drop`,
e.g. after a stock ``PUT`` in this process) is never brought back by a reload that
started before the drop.

Stale-while-revalidate alone still left the first requests after a quiet spell to the
threads: past ``ttl + grace_s`` the warm path refuses. ``benchmarks/serving.py`` idles
each server 30-60 s between its windows, and every window that came more than a minute
after the last one opened with all 16 requests in flight reloading the store's
popularity in threads, 110-125 ms each; wrk's correction for the requests they held up
made that the window's p99 (85 ms where the other windows had 11 ms). So every value a
warm read used is also reloaded *before* it expires, on a timer
(:meth:`SharedCache.refresh_due`, run by the candidate follower's thread) for as long
as warm reads keep using it (:data:`FRESH_WHILE_USED_S`). A value nobody read for
that long is left to expire and is loaded on demand again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["FRESH_WHILE_USED_S", "Cold", "SharedCache", "in_a_thread"]

log = logging.getLogger(__name__)

FRESH_WHILE_USED_S = 600.0
"""A value a warm read used within this long is reloaded ahead of its expiry."""


class Cold(Exception):
    """A warm-only answer needs something this process does not hold (I/O)."""


def in_a_thread(refresh: Callable[[], None]) -> None:
    """The default way to run a background reload: a short-lived daemon thread."""
    threading.Thread(target=refresh, name="shared-cache-refresh", daemon=True).start()


class SharedCache:
    """Keyed values with a load time; thread-safe.

    ``monotonic`` is the clock ages are measured by; ``background`` runs a reload off
    the caller's thread (tests pass one that records or runs it at once)."""

    def __init__(
        self,
        monotonic: Callable[[], float],
        background: Callable[[Callable[[], None]], None] = in_a_thread,
        grace_s: float = 1.0,
    ) -> None:
        self._monotonic, self._background, self._grace = monotonic, background, grace_s
        self._values: dict[str, tuple[float, Any]] = {}
        self._loading: dict[str, threading.Lock] = {}
        # Keys whose background reload is under way, or failed (then the warm path
        # stops serving the old value after the grace and the next load is inline).
        self._refreshing: set[str] = set()
        # Keys warm reads use: how to load each, its TTL, and when a warm read last used
        # it (what :meth:`refresh_due` reloads ahead of expiry).
        self._used: dict[str, tuple[Callable[[], Any], float, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any], ttl: float, warm: bool = False) -> Any:
        """The value for ``key``, loaded when missing or older than ``ttl``.

        ``warm``: never load here (raise :class:`Cold` instead); an expired value
        younger than ``ttl + grace_s`` is returned and one background reload started."""
        now = self._monotonic()
        with self._lock:
            hit = self._values.get(key)
            if warm:
                self._used[key] = (load, ttl, now)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        if warm:
            if hit is None or now - hit[0] >= ttl + self._grace:
                raise Cold(key)
            self._refresh_later(key, load, ttl, hit)
            return hit[1]
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        # One load per key at a time: when an entry expires under load every request
        # in flight misses it at once, and all but one wait for that one's result.
        with loading:
            with self._lock:
                hit = self._values.get(key)
            if hit is not None and self._monotonic() - hit[0] < ttl:
                return hit[1]
            started = self._monotonic()
            value = load()
            with self._lock:
                self._values[key] = (started, value)
                self._refreshing.discard(key)  # a failed background reload is superseded
        return value

    def _refresh_later(
        self, key: str, load: Callable[[], Any], ttl: float, seen: tuple[float, Any]
    ) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def refresh() -> None:
            try:
                self._reload(key, load, seen)
            except Exception:  # kept marked: no retry storm; inline load after the grace
                log.exception("reloading %s in the background failed", key)

        self._background(refresh)

    def _reload(self, key: str, load: Callable[[], Any], seen: tuple[float, Any]) -> None:
        """Load ``key`` and keep the value, unless it was reloaded or dropped since
        ``seen`` was read (then a drop stays a drop). Clears the key's refresh mark."""
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if self._values.get(key) is not seen:  # reloaded or dropped meanwhile
                    self._refreshing.discard(key)
                    return
            started = self._monotonic()
            value = load()
            with self._lock:
                if self._values.get(key) is seen:  # not dropped while loading
                    self._values[key] = (started, value)
                self._refreshing.discard(key)

    def refresh_due(self, lead_s: float, used_within_s: float = FRESH_WHILE_USED_S) -> int:
        """Start a reload of every value a warm read used in the last ``used_within_s``
        that expires within ``lead_s`` (or a tenth of its TTL, if longer); the number
        started.

        Run on a timer at least every ``lead_s / 2``, it keeps such values from ever
        expiring, so no warm read meets one it must refuse. Each reload runs on its own
        (``background``): under load the popularity's reload took 1-2 s of wall clock,
        and run one after another on the timer's thread it held up the stock's, which
        then expired (16 requests to threads, one round in three of the Redis
        benchmark). A key whose reload is under way is left to it; a dropped key is
        loaded on demand (its next read); a failed reload is logged and tried again on
        a later call."""
        now = self._monotonic()
        due: list[tuple[str, Callable[[], Any], tuple[float, Any]]] = []
        with self._lock:
            for key, (load, ttl, used) in list(self._used.items()):
                if now - used > used_within_s:
                    del self._used[key]  # nobody reads it: let it expire
                    continue
                hit = self._values.get(key)
                ahead = max(lead_s, ttl / 10)
                if hit is None or key in self._refreshing or now - hit[0] < ttl - ahead:
                    continue
                self._refreshing.add(key)
                due.append((key, load, hit))
        for key, load, seen in due:
            self._background(self._ahead(key, load, seen))
        return len(due)

    def _ahead(
        self, key: str, load: Callable[[], Any], seen: tuple[float, Any]
    ) -> Callable[[], None]:
        def reload() -> None:
            try:
                self._reload(key, load, seen)
            except Exception:
                with self._lock:
                    self._refreshing.discard(key)  # the timer tries again
                log.exception("reloading %s ahead of its expiry failed", key)

        return reload

    def held(self, key: str) -> Any | None:
        """The value kept under ``key`` by :meth:`keep`, whatever its age."""
        with self._lock:
            hit = self._values.get(key)
        return None if hit is None else hit[1]

    def keep(self, key: str, value: Any) -> None:
        """Keep ``value`` (a result derived from other cached values; never expires)."""
        with self._lock:
            self._values[key] = (0.0, value)

    def drop(self, key: str) -> None:
        """Forget ``key``: the next request loads it (a reload under way keeps nothing)."""
        with self._lock:
            self._values.pop(key, None)

    def clear(self) -> None:
        """Forget every value (tests that change the catalogue under a running engine)."""
        with self._lock:
            self._values.clear()
