"""Ground truth: what really happened in the simulated store, to score metrics against.

Records hold integer milliseconds, the same numbers the events were stamped with, and
derive every duration from them, so a metric computed from the events can match the
truth to the millisecond. ``truth.json`` has one record per line inside each list: easy
to diff, grep and read, and still one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from storelens.sim.clock import iso_ms, seconds
from storelens.sim.paths import Stay

__all__ = [
    "BaristaTruth",
    "OrderTruth",
    "QueueTruth",
    "Truth",
    "VisitTruth",
]


@dataclass(slots=True)
class OrderTruth:
    """One order from payment to hand-off; café-only times are None in a retail store."""

    order_id: str
    store_id: str
    channel: str
    register_id: str | None
    customer_id: str | None
    paid: int
    drinks: int
    items: int
    started: int | None = None
    ready: int | None = None
    handed_off: int | None = None
    barista: str | None = None

    def to_json(self) -> dict[str, Any]:
        end = self.handed_off
        return {
            "order_id": self.order_id,
            "store_id": self.store_id,
            "channel": self.channel,
            "register_id": self.register_id,
            "customer_id": self.customer_id,
            "paid_at": iso_ms(self.paid),
            "started_at": _iso(self.started),
            "ready_at": _iso(self.ready),
            "handed_off_at": _iso(end),
            "barista": self.barista,
            "drinks": self.drinks,
            "items": self.items,
            "fulfillment_s": None if end is None else seconds(end - self.paid),
        }


@dataclass(slots=True)
class VisitTruth:
    """One customer visit, one track; ``customer_id`` is who it really was (members only).

    The visit runs from the moment the person appears on the street side of the door to
    the moment they are gone from it; ``door_in`` and ``door_out`` are when they are on
    the door line itself, what a door counter stamps its crossings with (None: no door).
    """

    track_id: str
    customer_id: str | None
    channel: str
    stays: list[Stay] = field(default_factory=list)
    door_in: int | None = None
    door_out: int | None = None

    def to_json(self) -> dict[str, Any]:
        enter, exit_ = self.stays[0].enter, self.stays[-1].exit
        return {
            "track_id": self.track_id,
            "customer_id": self.customer_id,
            "channel": self.channel,
            "enter": iso_ms(enter),
            "exit": iso_ms(exit_),
            "dwell_s": seconds(exit_ - enter),
            "door_in": _iso(self.door_in),
            "door_out": _iso(self.door_out),
            "zones": [
                {"zone_id": s.zone_id, "enter": iso_ms(s.enter), "exit": iso_ms(s.exit)}
                for s in self.stays
            ],
        }


@dataclass(frozen=True, slots=True)
class QueueTruth:
    track_id: str
    queue_enter: int
    counter_enter: int

    def to_json(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "queue_enter": iso_ms(self.queue_enter),
            "counter_enter": iso_ms(self.counter_enter),
            "wait_s": seconds(self.counter_enter - self.queue_enter),
        }


@dataclass(slots=True)
class BaristaTruth:
    """Shifts are clock-in to clock-out segments: a break ends one and starts the next."""

    staff_id: str
    shifts: list[tuple[int, int]] = field(default_factory=list)
    busy_ms: int = 0
    drinks: int = 0
    orders: int = 0

    def to_json(self) -> dict[str, Any]:
        on_shift_s = seconds(sum(end - start for start, end in self.shifts))
        busy_s = seconds(self.busy_ms)
        return {
            "staff_id": self.staff_id,
            "shifts": [[iso_ms(start), iso_ms(end)] for start, end in self.shifts],
            "on_shift_s": on_shift_s,
            "busy_s": busy_s,
            "drinks": self.drinks,
            "orders": self.orders,
            "drinks_per_hour": round(self.drinks / (on_shift_s / 3600), 3) if on_shift_s else 0.0,
            "utilisation": round(busy_s / on_shift_s, 4) if on_shift_s else 0.0,
        }


@dataclass(slots=True)
class Truth:
    """Everything one run knows; lists are kept in time order as the days are simulated."""

    seed: int
    days: int
    store_id: str
    layout: str
    start_date: date
    orders: list[OrderTruth] = field(default_factory=list)
    visits: list[VisitTruth] = field(default_factory=list)
    queue: list[QueueTruth] = field(default_factory=list)
    baristas: dict[str, BaristaTruth] = field(default_factory=dict)
    staff_tracks: list[str] = field(default_factory=list)
    events: int = 0
    planted: dict[str, str] = field(default_factory=dict)
    """Zones planted for insights (role -> zone id); written only when there are some."""

    def write(self, path: Path) -> None:
        head: dict[str, Any] = {
            "seed": self.seed,
            "days": self.days,
            "store_id": self.store_id,
            "layout": self.layout,
            "start_date": self.start_date.isoformat(),
        }
        if self.planted:
            head["planted"] = dict(self.planted)
        summary = {"visits": len(self.visits), "orders": len(self.orders), "events": self.events}
        parts = [json.dumps(head)[:-1]]
        parts.append(_records("orders", (o.to_json() for o in self.orders)))
        parts.append(_records("visits", (v.to_json() for v in self.visits)))
        parts.append(_records("queue", (q.to_json() for q in self.queue)))
        parts.append(_records("baristas", (b.to_json() for b in self.baristas.values())))
        parts.append(f'"staff_tracks": {json.dumps(self.staff_tracks)}')
        parts.append(f'"summary": {json.dumps(summary)}}}\n')
        path.write_text(",\n".join(parts), encoding="utf-8")


def _records(key: str, records: Iterable[dict[str, Any]]) -> str:
    lines = ",\n".join(f"  {json.dumps(record)}" for record in records)
    return f'"{key}": [\n{lines}\n]' if lines else f'"{key}": []'


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)
