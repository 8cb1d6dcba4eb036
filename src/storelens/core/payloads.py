"""Event payloads: what each event type carries, validated field by field.

Split from the envelope (:mod:`storelens.core.events`, which re-exports every name
here, so callers import from there as always) because the payloads are the part that
grows with each new source, and the envelope is the part every path depends on.
Payloads refuse unknown fields, carry times as UTC (checked against the ingest
window), bound money so totals stay finite, and refuse person ids spelled like an
erasure's pseudonym.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from storelens.core.event_time import WINDOW_KEY, EventTimeWindow

__all__ = [
    "CONSENT_PURPOSES",
    "HEAT_PEOPLE_PER_CELL",
    "HEAT_PEOPLE_PER_M2",
    "PSEUDONYM_PREFIX",
    "ConsentChanged",
    "ConsentPurpose",
    "CustomerUpserted",
    "EspressoShot",
    "HeatmapGrid",
    "Identifier",
    "LineCrossing",
    "OrderHandedOff",
    "OrderLine",
    "OrderPaid",
    "OrderReady",
    "OrderStarted",
    "StaffShift",
    "StoreVisitEnded",
    "TrackPoint",
    "UtcDatetime",
    "WebEvent",
    "ZoneCrossing",
    "ZoneOccupancy",
    "heat_cell_limit",
]


def _to_utc(value: datetime, info: ValidationInfo) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 has no UTC time: not a batch failure
        raise PydanticCustomError(
            "event_time_out_of_range", "time is out of range once converted to UTC"
        ) from None
    window = info.context.get(WINDOW_KEY) if isinstance(info.context, dict) else None
    if isinstance(window, EventTimeWindow):
        window.check(utc)
    return utc


Identifier = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]
"""Ids from source systems: any non-blank token, no whitespace, at most 128 characters."""

PSEUDONYM_PREFIX = "erased-"
"""What an erasure's pseudonym begins with: such ids name nobody, so the privacy
routes answer 404 for them (``privacy/subject.py``)."""


def _not_a_pseudonym(value: str) -> str:
    if value.startswith(PSEUDONYM_PREFIX):
        raise PydanticCustomError(
            "pseudonym_prefix",
            "must not begin with {prefix!r}: erasure pseudonyms do",
            {"prefix": PSEUDONYM_PREFIX},
        )
    return value


PersonKey = Annotated[Identifier, AfterValidator(_not_a_pseudonym)]
"""An id a customer record gives its person. One spelled like a pseudonym made a
customer that analysts could read but whose access and erasure requests, by that id,
answered "nobody"."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# Bounded so that qty x price x lines stays finite: an unbounded price let an order total
# overflow to infinity, which JSON carries as null (the schema fuzz found it).
Money = Annotated[float, Field(ge=0, le=1_000_000_000, allow_inf_nan=False)]
ConsentPurpose = Literal["analytics", "personalization", "marketing", "recognition"]
CONSENT_PURPOSES: tuple[str, ...] = ("analytics", "personalization", "marketing", "recognition")


class _Payload(BaseModel):
    """Payloads refuse unknown fields: a typo in a device's firmware should fail loudly."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class OrderLine(_Payload):
    product_id: Identifier
    qty: int = Field(gt=0, le=10_000)
    unit_price: Money
    name: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)  # as the POS knows it


class OrderPaid(_Payload):
    order_id: Identifier
    lines: list[OrderLine] = Field(min_length=1, max_length=500)
    register_id: Identifier | None = None
    channel: Literal["in_store", "mobile", "web"] = "in_store"
    customer_id: Identifier | None = None
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    payment_method: Literal["card", "cash", "mobile", "voucher", "other"] | None = None

    @property
    def total(self) -> float:
        return round(sum(line.qty * line.unit_price for line in self.lines), 2)


class OrderStarted(_Payload):
    order_id: Identifier
    staff_id: Identifier | None = None
    station: Identifier | None = None


class OrderReady(_Payload):
    order_id: Identifier
    staff_id: Identifier | None = None


class OrderHandedOff(_Payload):
    order_id: Identifier
    staff_id: Identifier


class EspressoShot(_Payload):
    machine_id: Identifier
    staff_id: Identifier | None = None
    duration_s: float | None = Field(default=None, gt=0, le=600)


class StaffShift(_Payload):
    """A clock-in or clock-out at the POS; a break is a clock-out and a clock-in."""

    staff_id: Identifier
    role: Literal["barista", "cashier", "sales", "manager", "runner", "other"] = "barista"


class TrackPoint(_Payload):
    """One sampled floor position of an anonymous track, in metres on the floor plan."""

    camera_id: Identifier
    track_id: Identifier
    x: float = Field(allow_inf_nan=False)
    y: float = Field(allow_inf_nan=False)
    confidence: float | None = Field(default=None, ge=0, le=1)


class ZoneCrossing(_Payload):
    """A track entered or left a zone; an exit carries the zone visit's dwell."""

    zone_id: Identifier
    track_id: Identifier
    camera_id: Identifier | None = None
    dwell_s: float | None = Field(default=None, ge=0, le=86_400 * 2, allow_inf_nan=False)


class LineCrossing(_Payload):
    """A track crossed a count line; ``direction`` follows the line's in/out sides."""

    line_id: Identifier
    track_id: Identifier
    direction: Literal["in", "out"]
    camera_id: Identifier | None = None


class StoreVisitEnded(_Payload):
    """One visit to the store, door to door, that ended at the event's ``ts``.

    Anonymous: ``visit_id`` is as random as the track ids it was chained from, and no
    positions are kept. ``entered_by``/``left_by`` name the count line crossed, or are
    ``None`` where the visit began or ended out of sight of a door.
    """

    visit_id: Identifier
    started_at: UtcDatetime
    dwell_s: float = Field(ge=0, le=86_400 * 2, allow_inf_nan=False)
    entered_by: Identifier | None = None
    left_by: Identifier | None = None
    tracks: int = Field(default=1, ge=1, le=100_000)
    camera_id: Identifier | None = None


class ZoneOccupancy(_Payload):
    """How many people a zone held at ``ts``, sampled every few seconds."""

    zone_id: Identifier
    count: int = Field(ge=0, le=100_000)
    camera_id: Identifier | None = None


HEAT_PEOPLE_PER_M2 = 10.0
"""More people per m² than a crush (about 7): no floor cell holds more at once."""
HEAT_PEOPLE_PER_CELL = 4.0
"""The least a cell may claim, however small: the simulator's seated pairs put two
people's floor points in one 0.25 m cell for a whole quarter hour, and trackers jitter."""


def heat_cell_limit(cell_m: float) -> float:
    """The most people one ``cell_m`` cell of a heat grid may hold at once: a grid's cell
    claims at most this times ``period_s`` person-seconds, and an averaged heatmap no
    more than this over the cell's area. One source claiming a crowd no shop can hold
    would otherwise outweigh every camera of the store."""
    return max(HEAT_PEOPLE_PER_CELL, HEAT_PEOPLE_PER_M2 * cell_m * cell_m)


class HeatmapGrid(_Payload):
    """Person-seconds per floor cell over ``period_s``, row-major from the plan's origin.

    Cells are squares of ``cell_m`` metres; ``values`` has ``rows * cols`` entries, each
    at most :func:`heat_cell_limit` people for the whole period. Heat is anonymous by
    construction: no track ids, only time spent per cell.
    """

    period_s: float = Field(gt=0, le=86_400 * 31)
    cell_m: float = Field(gt=0, le=100)
    rows: int = Field(gt=0, le=4_000)
    cols: int = Field(gt=0, le=4_000)
    values: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]]
    camera_id: Identifier | None = None

    @field_validator("values")
    @classmethod
    def _people_fit(cls, values: list[float], info: ValidationInfo) -> list[float]:
        period_s, cell_m = info.data.get("period_s"), info.data.get("cell_m")
        if period_s is None or cell_m is None or not values:
            return values  # their own errors are reported
        most = period_s * heat_cell_limit(cell_m)
        if max(values) <= most:  # one pass in C: a grid holds up to 16 million cells
            return values
        cell = next(i for i, v in enumerate(values) if v > most)
        raise PydanticCustomError(
            "heat_cell_limit",
            "cell {cell} holds {value} person-seconds; at most {most} fit in a {cell_m} m "
            "cell over {period_s} s ({people} people at once)",
            {"cell": cell, "value": f"{values[cell]:g}", "most": f"{most:g}",
             "cell_m": f"{cell_m:g}", "period_s": f"{period_s:g}",
             "people": f"{heat_cell_limit(cell_m):g}"},
        )  # fmt: skip

    @model_validator(mode="after")
    def _grid_shape(self) -> HeatmapGrid:
        if len(self.values) != self.rows * self.cols:
            raise ValueError(
                f"values has {len(self.values)} entries; rows x cols is {self.rows * self.cols}"
            )
        return self


class CustomerUpserted(_Payload):
    """A customer record as a source system holds it; identity resolution links them."""

    source_system: PersonKey
    source_record_id: Identifier
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    email: EmailStr | None = None
    phone: str | None = Field(default=None, max_length=40)
    address: str | None = Field(default=None, max_length=400)
    postcode: str | None = Field(default=None, max_length=20)
    city: str | None = Field(default=None, max_length=120)
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    dob: date | None = None
    loyalty_id: PersonKey | None = None
    greeting_name: str | None = Field(
        default=None,
        max_length=100,
        description="how the customer asked staff to greet them (the staff app shows this)",
    )


class WebEvent(_Payload):
    session_id: Identifier
    action: Literal[
        "page_view", "product_view", "search", "add_to_cart", "remove_from_cart", "checkout"
    ]
    page: str | None = Field(default=None, max_length=2000)
    product_id: Identifier | None = None
    query: str | None = Field(default=None, max_length=500)


class ConsentChanged(_Payload):
    """A customer's choice for one purpose; the envelope's ``subject`` is the customer."""

    purpose: ConsentPurpose
    granted: bool
    channel: Literal["app", "web", "in_store", "email", "crm", "staff"] = "app"
    policy_version: str | None = Field(default=None, max_length=40)
