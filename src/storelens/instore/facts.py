"""Closed facts about a store's operations: what the tracker emits and reports read.

A fact is final when emitted (an order handed off, a zone left, a shift ended), so
facts can be appended to tables and aggregated any way later; anything still in
flight lives in the tracker's state instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "WALK_BY",
    "OpsFacts",
    "OrderFact",
    "QueueWait",
    "ShiftFact",
    "VisitFact",
    "ZoneVisit",
]

WALK_BY = "walk_by"
"""How a customer track that never went past the entrance ends (``VisitFact.closed_by``).
Counted apart from visits: a look through the door held the store's dwell down (and
its visit count up) by one short "visit" per passer-by."""


@dataclass(frozen=True, slots=True)
class OrderFact:
    """An order from payment to hand-off; ``paid_at`` is None when the payment was never seen."""

    store_id: str
    order_id: str
    channel: str
    register_id: str | None
    paid_at: datetime | None
    started_at: datetime | None
    ready_at: datetime | None
    handed_off_at: datetime | None
    barista: str | None
    drinks: int
    items: int

    @property
    def complete(self) -> bool:
        return self.paid_at is not None and self.handed_off_at is not None

    @property
    def fulfillment_s(self) -> float | None:
        if self.paid_at is None or self.handed_off_at is None:
            return None
        return round((self.handed_off_at - self.paid_at).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class ZoneVisit:
    store_id: str
    track_id: str
    zone_id: str
    enter: datetime
    exit: datetime
    is_staff: bool

    @property
    def dwell_s(self) -> float:
        return round((self.exit - self.enter).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class VisitFact:
    """One person's time in the store, first zone entered to last zone left."""

    store_id: str
    track_id: str
    enter: datetime
    exit: datetime
    zones: int
    closed_by: str
    """``left`` through the entrance, ``timeout`` (a lost track), or ``walk_by``: the
    track never went past the entrance and was gone within a minute (:data:`WALK_BY`),
    which is not a visit."""

    @property
    def came_in(self) -> bool:
        return self.closed_by != WALK_BY

    @property
    def dwell_s(self) -> float:
        return round((self.exit - self.enter).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class QueueWait:
    store_id: str
    track_id: str
    queue_enter: datetime
    counter_enter: datetime

    @property
    def wait_s(self) -> float:
        return round((self.counter_enter - self.queue_enter).total_seconds(), 3)


@dataclass(frozen=True, slots=True)
class ShiftFact:
    store_id: str
    staff_id: str
    start: datetime
    end: datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


Fact = OrderFact | ZoneVisit | VisitFact | QueueWait | ShiftFact


@dataclass
class OpsFacts:
    """Facts grouped by kind: the input of every report."""

    orders: list[OrderFact] = field(default_factory=list)
    zone_visits: list[ZoneVisit] = field(default_factory=list)
    visits: list[VisitFact] = field(default_factory=list)
    queue_waits: list[QueueWait] = field(default_factory=list)
    shifts: list[ShiftFact] = field(default_factory=list)

    def add(self, facts: list[Fact]) -> None:
        for f in facts:
            if isinstance(f, OrderFact):
                self.orders.append(f)
            elif isinstance(f, ZoneVisit):
                self.zone_visits.append(f)
            elif isinstance(f, VisitFact):
                self.visits.append(f)
            elif isinstance(f, QueueWait):
                self.queue_waits.append(f)
            else:
                self.shifts.append(f)

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "orders": [asdict(o) for o in self.orders],
            "zone_visits": [asdict(z) for z in self.zone_visits],
            "visits": [asdict(v) for v in self.visits],
            "queue_waits": [asdict(q) for q in self.queue_waits],
            "shifts": [asdict(s) for s in self.shifts],
        }
