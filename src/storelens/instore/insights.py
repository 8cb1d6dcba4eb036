"""Store insights: what the zone table means, said as a manager would say it.

Each finding carries the numbers it rests on and one sentence, so a report can show
the sentence and a reader who doubts it can check the figures. Thresholds come from
:class:`~storelens.instore.insights_settings.InsightSettings`, never from this code.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import median
from typing import Any, Literal

from storelens.instore.facts import ZoneVisit
from storelens.instore.insights_settings import InsightSettings
from storelens.instore.zone_traffic import FloorZone, SaleLine, ZoneTraffic, zone_traffic

__all__ = [
    "BREAKDOWNS",
    "Finding",
    "FindingKind",
    "StoreInsights",
    "cold_zones",
    "find_insights",
    "high_traffic_low_sales",
    "new_product_spots",
    "points_of_interest",
    "store_insights",
]

BREAKDOWNS: tuple[str, ...] = ("day", "daypart")
"""The zone tables besides the whole period's: per local day and per daypart."""

FindingKind = Literal[
    "point_of_interest", "cold_zone", "high_traffic_low_sales", "new_product_spot"
]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    zone_id: str
    zone_name: str
    sentence: str
    numbers: dict[str, float | int | None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "zone_id": self.zone_id,
            "zone_name": self.zone_name,
            "sentence": self.sentence,
            "numbers": dict(self.numbers),
        }


@dataclass(frozen=True, slots=True)
class StoreInsights:
    """A store's zone tables and findings for ``[since, until)``."""

    store_id: str
    store_name: str
    timezone: str
    since: datetime
    until: datetime
    settings: InsightSettings
    zones: list[ZoneTraffic]
    by_day: list[ZoneTraffic]
    by_daypart: list[ZoneTraffic]
    findings: list[Finding]
    extra: dict[str, Any] = field(default_factory=dict)

    def of_kind(self, kind: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        return {
            "store_id": self.store_id,
            "store_name": self.store_name,
            "timezone": self.timezone,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "settings": {
                "stop_s": self.settings.stop_s,
                "cold_share": self.settings.cold_share,
                "poi_count": self.settings.poi_count,
                "placement_count": self.settings.placement_count,
                "shelf_kinds": list(self.settings.shelf_kinds),
                "browse_kinds": list(self.settings.browse_kinds),
                "min_visits": self.settings.min_visits,
                "busy_share": self.settings.busy_share,
                "weak_share": self.settings.weak_share,
                "sales_channels": list(self.settings.sales_channels),
            },
            "findings": [f.as_dict() for f in self.findings],
            "zones": [z.as_dict() for z in self.zones],
            "by_day": [z.as_dict() for z in self.by_day],
            "by_daypart": [z.as_dict() for z in self.by_daypart],
            **self.extra,
        }


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{share:.0%}"


def _secs(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def points_of_interest(rows: Sequence[ZoneTraffic], settings: InsightSettings) -> list[Finding]:
    """The zones most people stop in (then the busiest): where an advert is seen."""
    ranked = sorted(
        (r for r in rows if r.stoppers > 0), key=lambda r: (-r.stoppers, -r.visits, r.zone_id)
    )
    return [
        Finding(
            "point_of_interest",
            r.zone_id,
            r.name,
            f"{r.name} is a point of interest: {r.visits:,} visits, and {r.stoppers:,} "
            f"({_pct(r.stop_share)}) stopped for {settings.stop_s:g} s or more (median stay "
            f"{_secs(r.median_dwell_s)}). A good place for an advert or a promotion.",
            {
                "visits": r.visits,
                "stoppers": r.stoppers,
                "stop_share": r.stop_share,
                "median_dwell_s": r.median_dwell_s,
            },
        )
        for r in ranked[: settings.poi_count]
    ]


def cold_zones(rows: Sequence[ZoneTraffic], settings: InsightSettings) -> list[Finding]:
    """Browse zones with well under the typical zone's traffic (``cold_share`` of the median)."""
    browse = [r for r in rows if r.kind in settings.browse_kinds]
    if len(browse) < 2:
        return []
    typical = median(r.visits for r in browse)
    limit = settings.cold_share * typical
    # Named, since the median is over these kinds only: "a typical zone" read as the
    # whole floor's, whose busy entrance and counter are far above it.
    kinds = " and ".join(sorted({r.kind for r in browse}))
    return [
        Finding(
            "cold_zone",
            r.zone_id,
            r.name,
            f"{r.name} is a cold zone: {r.visits:,} visits against {typical:,.0f}, the "
            f"median of the store's {len(browse)} {kinds} zones ({r.visits / typical:.0%} of "
            f"it, below {settings.cold_share:.0%}). Check what leads people there: sightlines, "
            "lighting, signage and what is on display.",
            {
                "visits": r.visits,
                "median_zone_visits": typical,
                "share_of_median": round(r.visits / typical, 4),
            },
        )
        for r in sorted(browse, key=lambda r: (r.visits, r.zone_id))
        if r.visits < limit
    ]


def high_traffic_low_sales(rows: Sequence[ZoneTraffic], settings: InsightSettings) -> list[Finding]:
    """Zones clearly busier than the typical zone that sell clearly less per visit.

    Only zones the catalogue places products in are compared (an entrance sells nothing
    by design), and at least three of them are needed for a typical zone to mean
    anything. Both gaps are shares of the median zone (``busy_share``, ``weak_share``),
    not ranks: ranks always put some zone on top and some at the bottom, and on an
    ordinary day zones a few visits apart swap places by chance, which named a fixture
    "does not sell" on about one simulated day in eight with nothing wrong with it.
    """
    shelves = [r for r in rows if r.merchandised and r.visits >= settings.min_visits]
    if len(shelves) < 3:
        return []
    rate = {r.zone_id: r.sales_per_100_visits or 0.0 for r in shelves}
    typical_visits = median(r.visits for r in shelves)
    typical = median(rate.values())
    flagged = [
        r
        for r in shelves
        if r.visits >= settings.busy_share * typical_visits
        and rate[r.zone_id] <= settings.weak_share * typical
    ]
    return [
        Finding(
            "high_traffic_low_sales",
            r.zone_id,
            r.name,
            f"{r.name} draws people but does not sell: {r.visits:,} visits "
            f"({r.visits / typical_visits:.1f}x the typical zone's {typical_visits:,.0f}), "
            f"yet only {rate[r.zone_id]:.1f} items sold per 100 visits "
            f"({_share(rate[r.zone_id], typical)} of the typical zone's {typical:.1f}). "
            "Look at price, stock and how the products are presented.",
            {
                "visits": r.visits,
                "median_zone_visits": typical_visits,
                "units": r.units,
                "revenue": r.revenue,
                "sales_per_100_visits": rate[r.zone_id],
                "median_sales_per_100_visits": typical,
            },
        )
        for r in sorted(flagged, key=lambda r: (-r.visits, r.zone_id))
    ]


def _share(value: float, of: float) -> str:
    return f"{value / of:.0%}" if of > 0 else "–"


def new_product_spots(rows: Sequence[ZoneTraffic], settings: InsightSettings) -> list[Finding]:
    """The busiest zones with shelf or display space: where a new product is seen most."""
    shelves = [r for r in rows if r.kind in settings.shelf_kinds and r.visits > 0]
    ranked = sorted(shelves, key=lambda r: (-r.visits, -r.stoppers, r.zone_id))
    return [
        Finding(
            "new_product_spot",
            r.zone_id,
            r.name,
            f"A new product would be seen most at {r.name}: {r.visits:,} visits, "
            f"{_pct(r.stop_share)} of them stopping.",
            {"visits": r.visits, "stoppers": r.stoppers, "stop_share": r.stop_share},
        )
        for r in ranked[: settings.placement_count]
    ]


def find_insights(rows: Sequence[ZoneTraffic], settings: InsightSettings) -> list[Finding]:
    """All findings over one period's zone rows, most actionable first."""
    return [
        *high_traffic_low_sales(rows, settings),
        *cold_zones(rows, settings),
        *points_of_interest(rows, settings),
        *new_product_spots(rows, settings),
    ]


def store_insights(
    *,
    store_id: str,
    store_name: str,
    timezone: str,
    since: datetime,
    until: datetime,
    zones: Sequence[FloorZone],
    visits: Iterable[ZoneVisit],
    sales: Iterable[SaleLine],
    product_zones: Mapping[str, str | None],
    settings: InsightSettings | None = None,
    breakdowns: Collection[str] = BREAKDOWNS,
) -> StoreInsights:
    """Zone tables for the whole period, by day and by daypart, and the findings.

    ``breakdowns`` names the tables besides the whole period's to build ("day",
    "daypart"); one left out is an empty list (a page that shows no daily table does
    not pay for one)."""
    settings = settings or InsightSettings()
    visit_list, sale_list = list(visits), list(sales)

    def table(by: str) -> list[ZoneTraffic]:
        return zone_traffic(
            zones,
            visit_list,
            sale_list,
            product_zones,
            timezone=timezone,
            by=by,
            since=since,
            until=until,
            stop_s=settings.stop_s,
            sales_channels=settings.sales_channels,
        )

    overall = table("all")
    return StoreInsights(
        store_id=store_id,
        store_name=store_name,
        timezone=timezone,
        since=since,
        until=until,
        settings=settings,
        zones=overall,
        by_day=table("day") if "day" in breakdowns else [],
        by_daypart=table("daypart") if "daypart" in breakdowns else [],
        findings=find_insights(overall, settings),
    )
