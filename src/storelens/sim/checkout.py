"""The tills: a FIFO queue in front of a row of registers, shared by café and retail days."""

from __future__ import annotations

from collections import deque
from typing import Generic, Protocol, TypeVar

from storelens.sim.clock import SECOND, uniform_ms
from storelens.sim.day import DayContext, Track
from storelens.sim.truth import QueueTruth

__all__ = ["Checkout", "Queued"]


class Queued(Protocol):
    queue_enter: int
    track: Track


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

    def enter(self, ctx: DayContext, person: Q, ms: int) -> int:
        """Walk into the queue zone and join the line; returns when to call ``serve``."""
        person.track.move(ctx.zones.queue, ms)
        person.queue_enter = ms
        self.join(person)
        return ms + self.walk_ms

    def serve(
        self, ctx: DayContext, ms: int, service_s: tuple[int, int]
    ) -> list[tuple[int, int, Q]]:
        """Everyone a free register takes now, as (payment time, register, person); their
        queue wait goes into the truth as they step up to the counter."""
        out = []
        while (served := self.next(ms)) is not None:
            register, person = served
            person.track.move(ctx.zones.counter, ms)
            ctx.truth.queue.append(QueueTruth(person.track.track_id, person.queue_enter, ms))
            out.append((ms + uniform_ms(ctx.service_rng, *service_s), register, person))
        return out
