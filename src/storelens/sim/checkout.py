"""The tills: a FIFO queue in front of a row of registers, shared by café and retail days."""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

from storelens.sim.clock import SECOND

__all__ = ["Checkout", "Queued"]


class Queued(Protocol):
    queue_enter: int


Q = TypeVar("Q", bound=Queued)


class Checkout(Generic[Q]):
    """Whoever queued first is served by the first free register, once they have walked
    up to the front (``walk_ms`` after joining): that keeps queue waits FIFO and > 0."""

    __slots__ = ("busy", "waiting", "walk_ms")

    def __init__(self, registers: int, walk_ms: int = 3 * SECOND) -> None:
        self.busy = [False] * registers
        self.waiting: deque[Q] = deque()
        self.walk_ms = walk_ms

    def join(self, person: Q) -> None:
        self.waiting.append(person)

    def next(self, ms: int) -> tuple[int, Q] | None:
        """The register and the person it serves now, or None (nobody ready, all busy)."""
        if not self.waiting or all(self.busy):
            return None
        if self.waiting[0].queue_enter + self.walk_ms > ms:
            return None  # still walking up; a call is due when they reach the front
        register = self.busy.index(False)
        self.busy[register] = True
        return register, self.waiting.popleft()

    def release(self, register: int) -> None:
        self.busy[register] = False
