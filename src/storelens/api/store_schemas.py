"""Response bodies of a store's sub-routes: its layout, alert rules, alerts and the
operations report, typed so that clients and the OpenAPI document see their fields."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AlertPublic",
    "AlertRuleIn",
    "AlertRuleSet",
    "LayoutPublic",
    "LayoutSaved",
    "OpsReport",
]


class LayoutPublic(BaseModel):
    version: int
    layout: dict[str, Any] = Field(description="the document as stored (TOML layout shape)")


class LayoutSaved(BaseModel):
    version: int
    zones: int
    cameras: int


class AlertRuleIn(BaseModel):
    """One alert rule of a store; see ``storelens.instore.alerts.AlertRule``."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: Literal["fulfillment_p90", "queue_length", "idle_barista"]
    threshold: float = Field(ge=0, allow_inf_nan=False)
    window_min: int = Field(default=15, ge=1, le=240)
    min_orders: int = Field(default=5, ge=1, le=1000)
    queue_min: int = Field(default=4, ge=0, le=1000)
    severity: Literal["info", "warning", "critical"] = "warning"
    raise_after_min: int = Field(default=2, ge=1, le=60)
    clear_after_min: int = Field(default=5, ge=1, le=240)


class AlertRuleSet(BaseModel):
    data: list[AlertRuleIn]
    count: int
    default: bool = Field(description="true while the store uses the built-in rules")


class AlertPublic(BaseModel):
    id: int
    store_id: str
    rule_id: str
    state: Literal["raised", "cleared"]
    at: datetime = Field(description="event time of the change")
    severity: str
    message: str
    value: float
    created_at: datetime


class _Stats(BaseModel):
    count: int
    p50_s: float | None
    p90_s: float | None
    max_s: float | None
    mean_s: float | None


class KeyedStats(_Stats):
    key: str


class IncompleteOrder(BaseModel):
    order_id: str
    missing: list[str]
    paid_at: datetime | None


class Fulfillment(_Stats):
    orders: int
    complete: int
    incomplete: int = Field(
        description="paid, never handed off, on a day the store recorded hand-offs"
    )
    untracked: int = Field(
        default=0,
        description="paid on a day the store recorded no hand-off at all (no order "
        "screens that day, or an imported till history): not counted as incomplete",
    )
    by_hour: list[KeyedStats]
    by_daypart: list[KeyedStats]
    by_register: list[KeyedStats]
    by_channel: list[KeyedStats]
    incomplete_orders: list[IncompleteOrder] = Field(description="at most 200")
    per_order: dict[str, float | None] | None = Field(default=None, description="with detail")


class BaristaFigures(BaseModel):
    staff_id: str
    on_shift_h: float
    orders: int
    drinks: int
    drinks_per_hour: float | None
    busy_h: float
    utilisation: float | None


class QueueBucket(BaseModel):
    t: datetime
    max: int
    mean: float


class QueueFigures(BaseModel):
    wait_count: int
    wait_p50_s: float | None
    wait_p90_s: float | None
    wait_max_s: float | None
    wait_mean_s: float | None
    length: list[QueueBucket]
    per_customer: dict[str, float] | None = Field(default=None, description="with detail")


class ZoneDwell(_Stats):
    zone_id: str


class DwellFigures(_Stats):
    """Time in the store per visit. ``count`` is visits: tracks that went past the
    entrance; ``walk_bys`` never did (a look through the door, a passer-by) and are in
    no figure but their own."""

    walk_bys: int = Field(description="customer tracks that never went past the entrance")
    by_zone: list[ZoneDwell]
    per_visit: dict[str, float] | None = Field(default=None, description="with detail")


class OpsReport(BaseModel):
    """Fulfillment, barista productivity, queue and dwell of one store over ``[from, to)``."""

    model_config = ConfigDict(populate_by_name=True)
    store_id: str
    since: datetime | None = Field(alias="from")
    until: datetime | None = Field(alias="to")
    timezone: str
    fulfillment: Fulfillment
    baristas: list[BaristaFigures]
    queue: QueueFigures
    dwell: DwellFigures
