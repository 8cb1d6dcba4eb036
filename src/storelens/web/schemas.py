"""What each dashboard page shows, as typed models: the page renders them and the JSON
routes behind the pages return them, so a chart and ``/web/api`` never disagree."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

__all__ = [
    "AlertRow",
    "BaristaRow",
    "ClvBar",
    "CustomersView",
    "DayFigures",
    "FindingRow",
    "FloorView",
    "HeatGrid",
    "KeyedFigures",
    "MemberRow",
    "MembersView",
    "OperationsView",
    "QueuePoint",
    "SegmentHeader",
    "SegmentRow",
    "StoreChoice",
    "TodayView",
    "ZoneOutline",
    "ZoneRow",
]


class StoreChoice(BaseModel):
    id: str
    name: str


class AlertRow(BaseModel):
    rule_id: str
    state: str
    at: datetime
    severity: str
    message: str
    value: float


class AlertSummary(BaseModel):
    """One rule's alerts in a period: what a manager reads before the history."""

    rule_id: str
    severity: str
    raised: int
    last_raised_at: datetime


class QueuePoint(BaseModel):
    t: datetime
    max: int
    mean: float


class KeyedFigures(BaseModel):
    """Fulfillment of one hour, daypart, register or channel."""

    key: str
    count: int
    p50_s: float | None
    p90_s: float | None


class TodayView(BaseModel):
    """The store right now: live counts from the ops processor's in-flight state, and
    the day so far (the store-local day of the latest event, i.e. today when live)."""

    store_id: str
    store_name: str
    timezone: str
    day: date | None = Field(description="null until the store has sent any event")
    behind: bool = Field(
        default=False,
        description="the latest events are from before today by the server's clock, in the "
        "store's time zone: the figures are that day's, not today's",
    )
    as_of: datetime | None = Field(description="event time the figures stand at")
    occupancy: int = Field(description="customers in the store now (staff left out)")
    queue_length: int = Field(description="customers in queue zones now")
    staff_on_shift: int
    orders: int
    fulfillment_p50_s: float | None
    fulfillment_p90_s: float | None
    orders_waiting: int | None = Field(
        description="paid orders not yet handed off, now (one without a drink only where "
        "such orders are handed off); null where the store reported no hand-off today or in "
        "the 14 days before and has no order in the making (tills without an order screen)"
    )
    longest_wait_s: float | None = Field(
        description="how long the oldest of those has waited since payment; null if none"
    )
    drinks: int
    barista_hours: float
    drinks_per_barista_hour: float | None
    open_alerts: list[AlertRow]
    queue: list[QueuePoint]
    by_hour: list[KeyedFigures]


class BaristaRow(BaseModel):
    staff_id: str
    on_shift_h: float
    orders: int
    drinks: int
    drinks_per_hour: float | None
    utilisation: float | None


class DayFigures(BaseModel):
    day: date
    # False when the day has no order and no shift: a closed day or a gap in the feeds,
    # which the chart leaves blank rather than drawing as a day of zero sales.
    recorded: bool
    orders: int
    p50_s: float | None
    p90_s: float | None
    drinks: int
    barista_hours: float
    drinks_per_barista_hour: float | None


class OperationsView(BaseModel):
    store_id: str
    store_name: str
    timezone: str
    first: date
    last: date
    orders: int
    complete: int
    incomplete: int
    untracked: int = Field(
        default=0, description="paid on a day the store recorded no hand-off at all"
    )
    p50_s: float | None
    p90_s: float | None
    by_day: list[DayFigures]
    by_hour: list[KeyedFigures]
    by_daypart: list[KeyedFigures]
    by_register: list[KeyedFigures]
    by_channel: list[KeyedFigures]
    baristas: list[BaristaRow]
    queue: list[QueuePoint]
    queue_waits: int = Field(default=0, description="customers who queued")
    queue_wait_p50_s: float | None = None
    queue_wait_p90_s: float | None = None
    visits: int = Field(default=0, description="store visits (customers past the entrance)")
    dwell_p50_s: float | None = None
    dwell_p90_s: float | None = None
    walk_bys: int = Field(default=0, description="looked in from the door and left")
    alerts: list[AlertRow] = Field(description="raised and cleared, newest first (at most 500)")
    alert_summary: list[AlertSummary] = Field(
        default_factory=list, description="per rule, most raised first, over ``alerts``"
    )


class ZoneRow(BaseModel):
    zone_id: str
    name: str
    kind: str
    visits: int
    unique_visitors: int
    mean_dwell_s: float | None
    median_dwell_s: float | None
    passers_by: int
    stoppers: int
    units: int
    revenue: float
    sales_per_100_visits: float | None
    revenue_per_visitor_minute: float | None


class FindingRow(BaseModel):
    kind: str
    title: str
    zone_id: str
    zone_name: str
    sentence: str


class HeatGrid(BaseModel):
    """People per m² averaged over ``hours`` of observed time, row 0 at the floor's top."""

    key: str = Field(description="'all' or a daypart name")
    label: str
    hours: float
    cell_m: float
    peak: float
    scale_max: float = Field(
        description="top of the colour scale: the 99th percentile of cells anyone stood in, "
        "as in the mailed report, so one chair sat in all day does not wash out the rest"
    )
    values: list[list[float]]


class ZoneOutline(BaseModel):
    zone_id: str
    name: str
    kind: str
    polygon: list[tuple[float, float]]


class FloorView(BaseModel):
    store_id: str
    store_name: str
    timezone: str
    first: date
    last: date
    width_m: float
    height_m: float
    zones: list[ZoneRow]
    findings: list[FindingRow]
    outlines: list[ZoneOutline]
    heat: list[HeatGrid] = Field(description="the whole day first, then each daypart seen")
    heat_note: str | None = None
    currencies: list[str] = Field(
        default_factory=list,
        description="the currencies the store's orders were paid in; several are summed "
        "as sent, not converted",
    )


class SegmentHeader(BaseModel):
    """What a segment is, as its member page heads it."""

    id: str
    kind: str = Field(description="rfm or cluster")
    name: str
    description: str
    customers: int
    revenue_share: float | None = Field(
        description="of the scored customers' revenue in the window; null when the figures "
        "were withdrawn after a member left (the next scoring run describes it again)"
    )
    revenue_trend_pct: float | None = Field(
        description="revenue of the latest window against the one before, in percent"
    )


class SegmentRow(SegmentHeader):
    """One segment as the Customers page lists it (no member ids: those are a click away,
    on an audited page)."""

    customer_share: float = Field(description="of all scored customers")
    total_clv: float | None = Field(description="expected value of all members over the horizon")
    mean_clv: float | None
    mean_churn_risk: float | None
    high_risk_share: float | None = Field(description="members with churn risk above high_risk")


class ClvBar(BaseModel):
    low: float
    high: float | None = Field(description="null for the open top bar (the top 1 %)")
    customers: int


class CustomersView(BaseModel):
    """The latest scoring run, in aggregate: segments, the CLV distribution, churn risk."""

    store_id: str
    store_name: str
    timezone: str = Field(default="UTC", description="the store's, for the times shown")
    scored: bool = Field(description="false until `storelens predict score` has run")
    as_of: datetime | None
    model_version: str | None
    customers: int
    mean_clv: float | None
    clv_months: int = Field(description="the run's CLV horizon")
    cluster_quality: dict[str, float] | None = Field(
        description="k, silhouette, davies_bouldin, stability_ari of the clustering, and "
        "min_stability and stable (1 or 0: whether any k reached min_stability)"
    )
    high_risk: float
    high_risk_customers: int | None = Field(
        description="scored customers above high_risk; null when the run has no churn risk"
    )
    clv_quantiles: dict[str, float]
    clv_bars: list[ClvBar]
    rfm: list[SegmentRow]
    clusters: list[SegmentRow]
    has_clv: bool = Field(description="false when the run has no lifetime value")
    no_clv_reason: str | None = Field(
        default=None,
        description="why the run has no lifetime value, as its model registry row says",
    )
    has_churn: bool = Field(description="false when the run has no churn risk")
    currencies: list[str] = Field(
        default_factory=list,
        description="the currencies orders were paid in; several are summed as sent, not converted",
    )


class MemberRow(BaseModel):
    customer_id: str
    rfm: str | None
    clv: float | None
    churn_risk: float | None
    p_alive: float | None
    orders: int | None = Field(default=None, description="orders before the run's as-of")


class MembersView(BaseModel):
    """A page of one segment's members (analysts and admins; each read is audited)."""

    store_id: str
    segment: SegmentHeader
    pages: int
    members: list[MemberRow]
    page: int = Field(description="1 for the first page")
    has_next: bool
