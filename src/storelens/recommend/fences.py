"""Customers whose lists must not be cached, or their impressions logged, for a while.

An erasure deletes a person's cached candidates and queued impressions inside its
transaction, before it commits. A request that started a moment earlier, or that reads
the tables before the commit, still sees the person's orders and consent: it used to
put their entry back into the cache and log impressions under their id after the
erasure had cleaned up, so the person kept getting personal answers for the cache's
ten minutes and rows about them outlived the erasure (found by a security review).
A consent withdrawal had the same race with a request filling the cache.

A fence closes on the person's ids when the erasure starts and stays closed until a
grace period after it has committed (``hold``): any cache fill or impression in that
time comes from a read that may predate the commit, so it is dropped. A request takes
milliseconds; the grace (30 s) is far longer than any of them. Dropping a fill costs a
rebuild from the tables, never a wrong answer.

A withdrawal holds the person's ids too, but it is a weaker fence: it only refuses
fills that may have read "granted". The withdrawal's own marker entry (consent off,
nothing to personalise with) must still get through it, and so must a decline added
to that marker a moment later; before, the decline was refused and the marker went on
without it, so the declined item could show in the non-personal list for the cache's
ten minutes. An erasure's fence on the person refuses markers as well (a marker keeps
the person's declines), and a withdrawal never shortens or weakens an erasure's fence.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable

__all__ = ["FENCE_GRACE_S", "Fences"]

FENCE_GRACE_S = 30.0
"""How long after an erasure commits (or a withdrawal is applied) fills stay refused."""


class Fences:
    """Per-customer fences, thread-safe; ``clock`` is monotonic seconds."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, grace_s: float = FENCE_GRACE_S
    ) -> None:
        self._clock, self._grace = clock, grace_s
        self._until: dict[str, tuple[float, bool]] = {}  # id -> (until, an erasure's)
        self._everyone_until = -math.inf
        self._pruned = -math.inf
        self._lock = threading.Lock()

    def close(self, customer_ids: Iterable[str]) -> None:
        """Refuse these customers until :meth:`hold` opens the fence after a grace."""
        with self._lock:
            for c in customer_ids:
                self._until[c] = (math.inf, True)

    def hold(self, customer_ids: Iterable[str]) -> None:
        """Refuse these customers for the grace period from now (and then let them be):
        an erasure has committed."""
        now = self._clock()
        until = now + self._grace
        with self._lock:
            for c in customer_ids:
                self._until[c] = (until, True)
            self._prune(now)

    def hold_withdrawn(self, customer_ids: Iterable[str]) -> None:
        """Refuse fills of these customers, but not their markers, for the grace period
        from now: a consent withdrawal. A fence already standing for longer, or an
        erasure's, stays as it is."""
        now = self._clock()
        until = now + self._grace
        with self._lock:
            for c in customer_ids:
                held = self._until.get(c)
                if held is None or held[0] <= now:
                    self._until[c] = (until, False)
                elif held[0] < until:
                    self._until[c] = (until, held[1])
            self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget fences long past, so the map does not grow with every erasure; at most
        once a grace period (a scan per hold cost seconds at 20,000 holds). Locked."""
        if now >= self._pruned + self._grace:
            self._pruned = now
            for c in [c for c, (t, _) in self._until.items() if t < now]:
                del self._until[c]

    def hold_everyone(self, seconds: float | None = None) -> None:
        """Refuse every customer for ``seconds`` (default: the grace period) from now: an
        erasure elsewhere, ids unknown."""
        until = self._clock() + (self._grace if seconds is None else seconds)
        with self._lock:
            self._everyone_until = max(self._everyone_until, until)

    def blocks(self, customer_id: str, *, marker: bool = False) -> bool:
        """Whether a fill (or, with ``marker``, a withdrawal's marker) of this customer
        is refused now."""
        now = self._clock()
        with self._lock:
            # An erasure elsewhere (ids unknown) refuses fills, not markers: a marker is
            # built from what the tables hold now, and refusing it lost a withdrawal
            # (the next fill read a lagging consent table: an attacker review).
            if now < self._everyone_until and not marker:
                return True
            held = self._until.get(customer_id)
        return held is not None and now < held[0] and (held[1] or not marker)
