"""Zone traffic against sales: who came to each zone, who stopped, and what it sold.

Pure functions over closed facts (zone visits from the ops tracker, order lines from
the POS) and the catalogue's placement of products in zones, so the same numbers come
from the database, an events file or a test's hand-made list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from storelens.core.dayparts import daypart_of_hour, daypart_order
from storelens.instore.facts import ZoneVisit

__all__ = [
    "FloorZone",
    "SaleLine",
    "ZoneTraffic",
    "zone_traffic",
]


@dataclass(frozen=True, slots=True)
class FloorZone:
    """A zone of the layout as insights need it; ``area_m2`` turns heat into density."""

    zone_id: str
    name: str
    kind: str
    area_m2: float


@dataclass(frozen=True, slots=True)
class SaleLine:
    """One POS order line: ``qty`` units of a product for ``revenue`` (qty x unit price)."""

    ts: datetime
    product_id: str
    qty: int
    revenue: float
    channel: str = "in_store"


@dataclass(frozen=True, slots=True)
class ZoneTraffic:
    """One zone over one period (``period``: "all", a local date, or a daypart)."""

    zone_id: str
    name: str
    kind: str
    period: str
    visits: int
    unique_visitors: int
    dwell_total_s: float
    mean_dwell_s: float | None
    median_dwell_s: float | None
    passers_by: int
    stoppers: int
    merchandised: bool
    """True when the catalogue places at least one product here, so sales mean something."""
    units: int
    revenue: float

    @property
    def sales_per_100_visits(self) -> float | None:
        """Units sold per hundred visits. Not a conversion rate: zone visits are
        anonymous, so a sale cannot be tied to the visit that made it, and one basket of
        three counts three."""
        if not self.merchandised or self.visits == 0:
            return None
        return round(self.units * 100 / self.visits, 2)

    @property
    def revenue_per_visitor_minute(self) -> float | None:
        """Revenue for each minute people spent here: what the zone earns for attention."""
        if not self.merchandised or self.dwell_total_s <= 0:
            return None
        return round(self.revenue / (self.dwell_total_s / 60), 4)

    @property
    def stop_share(self) -> float | None:
        return None if self.visits == 0 else round(self.stoppers / self.visits, 4)

    def as_dict(self) -> dict[str, Any]:
        return {
            "zone_id": self.zone_id,
            "name": self.name,
            "kind": self.kind,
            "period": self.period,
            "visits": self.visits,
            "unique_visitors": self.unique_visitors,
            "mean_dwell_s": self.mean_dwell_s,
            "median_dwell_s": self.median_dwell_s,
            "passers_by": self.passers_by,
            "stoppers": self.stoppers,
            "stop_share": self.stop_share,
            "merchandised": self.merchandised,
            "units": self.units,
            "revenue": self.revenue,
            "sales_per_100_visits": self.sales_per_100_visits,
            "revenue_per_visitor_minute": self.revenue_per_visitor_minute,
        }


def _in_window(ts: datetime, since: datetime | None, until: datetime | None) -> bool:
    return (since is None or ts >= since) and (until is None or ts < until)


def zone_traffic(
    zones: Sequence[FloorZone],
    visits: Iterable[ZoneVisit],
    sales: Iterable[SaleLine],
    product_zones: Mapping[str, str | None],
    *,
    timezone: str,
    by: str = "all",
    since: datetime | None = None,
    until: datetime | None = None,
    stop_s: float = 10.0,
    sales_channels: Sequence[str] = ("in_store",),
) -> list[ZoneTraffic]:
    """One row per zone (and per day or daypart when ``by`` is "day" or "daypart").

    Staff tracks and staff-only zones are left out: a barista walking to the tables is
    not a customer drawn there. A visit belongs to the period it was entered in, a sale
    to the period it was paid in. Every zone gets a row for every period that saw any
    visit or sale, zeros included, so a cold zone shows as 0 rather than going missing.
    """
    tz = ZoneInfo(timezone)
    key = _period_key(by, tz)
    public = [z for z in zones if z.kind != "staff_only"]
    known = {z.zone_id for z in public}
    merchandised = {placed for placed in product_zones.values() if placed in known}
    dwell: dict[tuple[str, str], list[float]] = {}
    tracks: dict[tuple[str, str], set[str]] = {}
    for v in visits:
        if v.is_staff or v.zone_id not in known or not _in_window(v.enter, since, until):
            continue
        cell = (v.zone_id, key(v.enter))
        dwell.setdefault(cell, []).append(v.dwell_s)
        tracks.setdefault(cell, set()).add(v.track_id)
    sold: dict[tuple[str, str], tuple[int, float]] = {}
    channels = set(sales_channels)
    for line in sales:
        placed = product_zones.get(line.product_id)
        if placed is None or placed not in known or line.channel not in channels:
            continue
        if not _in_window(line.ts, since, until):
            continue
        cell = (placed, key(line.ts))
        units, revenue = sold.get(cell, (0, 0.0))
        sold[cell] = (units + line.qty, revenue + line.revenue)
    periods = sorted({p for _, p in dwell} | {p for _, p in sold}, key=_sort_key(by))
    if by == "all":
        periods = ["all"]
    rows = []
    for period in periods:
        for zone in public:
            times = dwell.get((zone.zone_id, period), [])
            units, revenue = sold.get((zone.zone_id, period), (0, 0.0))
            stoppers = sum(1 for t in times if t >= stop_s)
            rows.append(
                ZoneTraffic(
                    zone_id=zone.zone_id,
                    name=zone.name,
                    kind=zone.kind,
                    period=period,
                    visits=len(times),
                    unique_visitors=len(tracks.get((zone.zone_id, period), ())),
                    dwell_total_s=round(sum(times), 3),
                    mean_dwell_s=round(sum(times) / len(times), 1) if times else None,
                    median_dwell_s=round(median(times), 1) if times else None,
                    passers_by=len(times) - stoppers,
                    stoppers=stoppers,
                    merchandised=zone.zone_id in merchandised,
                    units=units,
                    revenue=round(revenue, 2),
                )
            )
    return rows


def _period_key(by: str, tz: ZoneInfo) -> Callable[[datetime], str]:
    if by == "all":
        return lambda ts: "all"
    if by == "day":
        return lambda ts: ts.astimezone(tz).date().isoformat()
    if by == "daypart":
        return lambda ts: daypart_of_hour(ts.astimezone(tz).hour)
    raise ValueError(f"by must be 'all', 'day' or 'daypart', got {by!r}")


def _sort_key(by: str) -> Callable[[str], Any]:
    if by == "daypart":
        return daypart_order
    return lambda period: period
