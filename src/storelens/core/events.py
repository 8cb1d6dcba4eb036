"""The event envelope: the one contract between every source and every projection.

Each event type is its own envelope class whose ``type`` literal selects the payload
model, so pydantic validates the right payload in one pass and reports errors at the
field (``payload.lines.0.qty``) rather than "one of 11 union members failed".
Store-bound types (POS, orders, sensors, vision) require ``store_id``; chain-wide
ones (CRM records, web sessions, consent) may leave it empty. The payload models are
in :mod:`storelens.core.payloads` and re-exported here.

Timestamps must carry a timezone and are normalised to UTC, so time-range queries
compare like with like on every backend. Validated with an :class:`EventTimeWindow`
in the pydantic context (every ingest path passes one), a time too far in the future
or before the floor date is refused for that event alone: one event stamped 2099
would otherwise drag every time-driven projection decades ahead.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

from storelens.core.event_time import EventTimeWindow
from storelens.core.payloads import (
    CONSENT_PURPOSES,
    HEAT_PEOPLE_PER_CELL,
    HEAT_PEOPLE_PER_M2,
    PSEUDONYM_PREFIX,
    ConsentChanged,
    ConsentPurpose,
    CustomerUpserted,
    EspressoShot,
    HeatmapGrid,
    Identifier,
    LineCrossing,
    OrderHandedOff,
    OrderLine,
    OrderPaid,
    OrderReady,
    OrderStarted,
    StaffShift,
    StoreVisitEnded,
    TrackPoint,
    UtcDatetime,
    WebEvent,
    ZoneCrossing,
    ZoneOccupancy,
    heat_cell_limit,
)

__all__ = [
    "CONSENT_PURPOSES",
    "EVENT_TYPES",
    "HEAT_PEOPLE_PER_CELL",
    "HEAT_PEOPLE_PER_M2",
    "PSEUDONYM_PREFIX",
    "STORE_BOUND_TYPES",
    "ClockInEvent",
    "ClockOutEvent",
    "ConsentChanged",
    "ConsentChangedEvent",
    "ConsentPurpose",
    "CustomerUpserted",
    "CustomerUpsertedEvent",
    "EspressoShot",
    "EspressoShotEvent",
    "Event",
    "EventBase",
    "EventTimeWindow",
    "HeatmapEvent",
    "HeatmapGrid",
    "LineCrossedEvent",
    "LineCrossing",
    "OrderHandedOff",
    "OrderHandedOffEvent",
    "OrderLine",
    "OrderPaid",
    "OrderPaidEvent",
    "OrderReady",
    "OrderReadyEvent",
    "OrderStarted",
    "OrderStartedEvent",
    "StaffShift",
    "StoreVisitEnded",
    "StoreVisitEvent",
    "TrackPoint",
    "TrackPointEvent",
    "WebEvent",
    "WebEventEvent",
    "ZoneCrossing",
    "ZoneEnterEvent",
    "ZoneExitEvent",
    "ZoneOccupancy",
    "ZoneOccupancyEvent",
    "event_adapter",
    "event_batch_adapter",
    "heat_cell_limit",
    "make_event",
]


_Trail = tuple[Any, "_Trail"] | None  # (key, the parent's trail): a path built only if needed


def _dotted(trail: _Trail, last: str | None = None) -> str:
    parts = [] if last is None else [last]
    while trail is not None:
        key, trail = trail
        parts.append(str(key))
    return ".".join(reversed(parts))


def _nul_path(value: Any) -> str | None:
    """Where a NUL character sits in raw event data (dotted path), or None.

    A loop over an explicit stack, not recursion: the JSON parsers accept nesting
    about 1,000 levels deep, which is Python's recursion limit, so a recursive walk
    let one crafted event answer 500 (and stop a file import or an MQTT batch)
    before validation could refuse it on its own. Paths are kept as linked trails and
    joined only for the answer, since a heatmap grid holds millions of numbers.
    """
    stack: list[tuple[Any, _Trail]] = [(value, None)]
    while stack:
        item, trail = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return _dotted(trail) or "(event)"
            continue
        if isinstance(item, dict):
            pairs: Any = item.items()
        elif isinstance(item, list):
            pairs = enumerate(item)
        else:
            continue
        children = []
        for key, child in pairs:
            if isinstance(key, str) and "\x00" in key:
                return _dotted(trail, repr(key))
            if isinstance(child, str | dict | list):
                children.append((child, (key, trail)))
        stack.extend(reversed(children))
    return None


class EventBase(BaseModel):
    """Fields every envelope shares. ``id`` is chosen by the producer: it is the idempotency key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        """PostgreSQL text cannot hold U+0000 (SQLite can): refused here, per event, so
        one such event neither fails its batch on one backend nor is kept on the other."""
        where = _nul_path(data)
        if where is not None:
            raise PydanticCustomError(
                "string_nul", "{field} must not contain a NUL character", {"field": where}
            )
        return data

    id: uuid.UUID
    ts: UtcDatetime
    source: Identifier
    subject: Identifier | None = None
    store_id: Identifier | None = None

    store_bound: ClassVar[bool] = False
    restamped: ClassVar[bool] = False
    """Whether every send stamps ``ts`` anew (an import's run time) while the id names
    the content: then a later ``ts`` under a known id is still the same event."""


class _StoreEvent(EventBase):
    store_id: Identifier  # narrowed: required for in-store events

    store_bound: ClassVar[bool] = True


class OrderPaidEvent(_StoreEvent):
    type: Literal["pos.order_paid"] = "pos.order_paid"
    payload: OrderPaid


class OrderStartedEvent(_StoreEvent):
    type: Literal["order.started"] = "order.started"
    payload: OrderStarted


class OrderReadyEvent(_StoreEvent):
    type: Literal["order.ready"] = "order.ready"
    payload: OrderReady


class OrderHandedOffEvent(_StoreEvent):
    type: Literal["order.handed_off"] = "order.handed_off"
    payload: OrderHandedOff


class EspressoShotEvent(_StoreEvent):
    type: Literal["sensor.espresso_shot"] = "sensor.espresso_shot"
    payload: EspressoShot


class ClockInEvent(_StoreEvent):
    type: Literal["staff.clock_in"] = "staff.clock_in"
    payload: StaffShift


class ClockOutEvent(_StoreEvent):
    type: Literal["staff.clock_out"] = "staff.clock_out"
    payload: StaffShift


class TrackPointEvent(_StoreEvent):
    type: Literal["vision.track"] = "vision.track"
    payload: TrackPoint


class ZoneEnterEvent(_StoreEvent):
    type: Literal["vision.zone_enter"] = "vision.zone_enter"
    payload: ZoneCrossing


class ZoneExitEvent(_StoreEvent):
    type: Literal["vision.zone_exit"] = "vision.zone_exit"
    payload: ZoneCrossing


class LineCrossedEvent(_StoreEvent):
    type: Literal["vision.line_crossed"] = "vision.line_crossed"
    payload: LineCrossing


class StoreVisitEvent(_StoreEvent):
    type: Literal["vision.visit"] = "vision.visit"
    payload: StoreVisitEnded


class ZoneOccupancyEvent(_StoreEvent):
    type: Literal["vision.occupancy"] = "vision.occupancy"
    payload: ZoneOccupancy


class HeatmapEvent(_StoreEvent):
    type: Literal["vision.heatmap"] = "vision.heatmap"
    payload: HeatmapGrid


class CustomerUpsertedEvent(EventBase):
    type: Literal["customer.upserted"] = "customer.upserted"
    payload: CustomerUpserted

    restamped: ClassVar[bool] = True  # ts: when the import ran (cdp/records.py)


class WebEventEvent(EventBase):
    type: Literal["web.event"] = "web.event"
    payload: WebEvent


class ConsentChangedEvent(EventBase):
    type: Literal["consent.changed"] = "consent.changed"
    subject: Identifier  # consent always belongs to someone
    payload: ConsentChanged


Event = Annotated[
    Union[  # noqa: UP007  # a discriminated union needs the Union form for pydantic
        OrderPaidEvent,
        OrderStartedEvent,
        OrderReadyEvent,
        OrderHandedOffEvent,
        EspressoShotEvent,
        ClockInEvent,
        ClockOutEvent,
        TrackPointEvent,
        ZoneEnterEvent,
        ZoneExitEvent,
        LineCrossedEvent,
        StoreVisitEvent,
        ZoneOccupancyEvent,
        HeatmapEvent,
        CustomerUpsertedEvent,
        WebEventEvent,
        ConsentChangedEvent,
    ],
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["type"].default: cls
    for cls in (
        OrderPaidEvent,
        OrderStartedEvent,
        OrderReadyEvent,
        OrderHandedOffEvent,
        EspressoShotEvent,
        ClockInEvent,
        ClockOutEvent,
        TrackPointEvent,
        ZoneEnterEvent,
        ZoneExitEvent,
        LineCrossedEvent,
        StoreVisitEvent,
        ZoneOccupancyEvent,
        HeatmapEvent,
        CustomerUpsertedEvent,
        WebEventEvent,
        ConsentChangedEvent,
    )
}
STORE_BOUND_TYPES: frozenset[str] = frozenset(t for t, c in EVENT_TYPES.items() if c.store_bound)

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
event_batch_adapter: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


def make_event(type_: str, payload: dict[str, Any], **envelope: Any) -> Event:
    """Build a validated event, filling ``id`` (uuid4) and ``ts`` (now) when not given."""
    envelope.setdefault("id", uuid.uuid4())
    envelope.setdefault("ts", datetime.now(UTC))
    return event_adapter.validate_python({"type": type_, "payload": payload, **envelope})
