"""Daily aggregates for BI tools: the zone table, operations and heat of one store day.

Superset, Metabase and Power BI read flat, typed tables; they cannot run the
percentiles and zone attribution that :mod:`~storelens.instore.zone_traffic` and
:mod:`~storelens.instore.report` do. So each day is computed here by those same
functions and laid out as rows with a fixed Arrow schema: units are in the column
names (``_s``, ``_h``, ``_m``, ``_per_m2``) and in each field's metadata, and no row
carries a customer id, a loyalty id or a track id (only zones, registers and staff).

Every table has whole-day rows beside the parts (``daypart = "all"`` in ``zones`` and
``heat``, ``hour`` null in ``operations``): medians, percentiles, unique visitors and
densities do not add up across parts, so the day's own figure is there to read.
Filter on that column before summing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pyarrow as pa

from storelens.core.dayparts import DAYPARTS
from storelens.core.layout import StoreLayout
from storelens.instore.facts import OpsFacts, ZoneVisit
from storelens.instore.insights_heat import HeatSample, average_density
from storelens.instore.insights_settings import InsightSettings
from storelens.instore.report import ops_report, tracked_days
from storelens.instore.zone_traffic import FloorZone, SaleLine, zone_traffic

__all__ = [
    "EXPORT_TABLES",
    "WHOLE_DAY",
    "DayInputs",
    "ExportTable",
    "empty_table",
    "export_schema",
    "heat_table",
    "operations_table",
    "zones_table",
]

ExportTable = Literal["zones", "operations", "heat"]
EXPORT_TABLES: tuple[ExportTable, ...] = ("zones", "operations", "heat")
WHOLE_DAY = "all"
"""The ``daypart`` of a row that covers the whole local day."""


def _field(name: str, kind: pa.DataType, unit: str, doc: str, nullable: bool = True) -> pa.Field:
    return pa.field(name, kind, nullable=nullable, metadata={"unit": unit, "description": doc})


_KEYS = [
    _field("store_id", pa.string(), "", "store id", nullable=False),
    _field("date", pa.date32(), "local date", "the store's local calendar day", nullable=False),
]

_ZONES = [
    *_KEYS,
    _field("daypart", pa.string(), "", "morning/midday/afternoon/evening/night, or all", False),
    _field("zone_id", pa.string(), "", "zone id from the layout", nullable=False),
    _field("zone_name", pa.string(), "", "zone name from the layout", nullable=False),
    _field("zone_kind", pa.string(), "", "entrance, aisle, fixture, seating, queue, ...", False),
    _field("visits", pa.int64(), "count", "zone visits entered in the period", False),
    _field("unique_visitors", pa.int64(), "count", "distinct anonymous tracks", False),
    _field("dwell_total_s", pa.float64(), "seconds", "time spent in the zone", False),
    _field("mean_dwell_s", pa.float64(), "seconds", "mean stay; null without visits"),
    _field("median_dwell_s", pa.float64(), "seconds", "median stay; null without visits"),
    _field("passers_by", pa.int64(), "count", "visits shorter than stop_s", False),
    _field("stoppers", pa.int64(), "count", "visits of at least stop_s", False),
    _field("stop_share", pa.float64(), "ratio 0-1", "stoppers / visits"),
    _field("merchandised", pa.bool_(), "", "the catalogue places products here", False),
    _field("units", pa.int64(), "count", "units sold of products placed here", False),
    _field("revenue", pa.float64(), "store currency", "qty x unit price of those units", False),
    _field("sales_per_100_visits", pa.float64(), "units per 100 visits", "conversion proxy"),
    _field("revenue_per_visitor_minute", pa.float64(), "currency per minute", "per dwell minute"),
]

_OPERATIONS = [
    *_KEYS,
    _field("hour", pa.int8(), "local hour 0-23", "null: the whole day"),
    _field("dimension", pa.string(), "", "store, register or barista", nullable=False),
    _field("key", pa.string(), "", "all, a register id or a staff id", nullable=False),
    _field("orders", pa.int64(), "count", "orders paid (store rows only)"),
    _field(
        "incomplete_orders",
        pa.int64(),
        "count",
        "paid, never handed off, on a day with hand-offs (store rows)",
    ),
    _field("fulfilled_orders", pa.int64(), "count", "orders with a fulfillment time"),
    _field("fulfillment_p50_s", pa.float64(), "seconds", "payment to hand-off, median"),
    _field("fulfillment_p90_s", pa.float64(), "seconds", "payment to hand-off, 90th percentile"),
    _field("fulfillment_max_s", pa.float64(), "seconds", "payment to hand-off, longest"),
    _field("orders_made", pa.int64(), "count", "orders made ready (store, barista rows)"),
    _field("drinks", pa.int64(), "count", "drinks made ready (store, barista rows)"),
    _field("on_shift_h", pa.float64(), "hours", "barista time on shift"),
    _field("drinks_per_barista_hour", pa.float64(), "drinks per hour", "drinks / on_shift_h"),
    _field("utilisation", pa.float64(), "ratio 0-1", "making time / shift time"),
]

_HEAT = [
    *_KEYS,
    _field("daypart", pa.string(), "", "morning/midday/afternoon/evening/night, or all", False),
    _field("row", pa.int32(), "grid row", "cell row from the floor's top edge", nullable=False),
    _field("col", pa.int32(), "grid column", "cell column from the left", nullable=False),
    _field("x_m", pa.float64(), "metres", "cell centre, from the floor's left", nullable=False),
    _field("y_m", pa.float64(), "metres", "cell centre, from the floor's top", nullable=False),
    _field("cell_m", pa.float64(), "metres", "cell side", nullable=False),
    _field("zone_id", pa.string(), "", "zone holding the cell centre; null: none"),
    _field("people_per_m2", pa.float64(), "people per m²", "average over observed time", False),
    _field("observed_h", pa.float64(), "hours", "time the average covers", nullable=False),
]

_SCHEMAS: dict[str, list[pa.Field]] = {"zones": _ZONES, "operations": _OPERATIONS, "heat": _HEAT}
_GRAIN = {
    "zones": "store, date, daypart (all = whole day), zone",
    "operations": "store, date, hour (null = whole day), dimension, key",
    "heat": "store, date, daypart (all = whole day), grid cell; empty cells left out",
}


def export_schema(table: ExportTable) -> pa.Schema:
    """The fixed schema of ``table``, with its grain and a version in the metadata."""
    return pa.schema(
        _SCHEMAS[table],
        metadata={
            "storelens.table": table,
            "storelens.grain": _GRAIN[table],
            "storelens.schema_version": "1",
            "storelens.personal_data": "none: aggregates without customer or track ids",
        },
    )


def empty_table(table: ExportTable) -> pa.Table:
    return export_schema(table).empty_table()


@dataclass(frozen=True, eq=False)
class DayInputs:
    """One local day of a store: ``[since, until)`` and what happened in and around it."""

    layout: StoreLayout
    day: date
    since: datetime
    until: datetime
    visits: Sequence[ZoneVisit]
    sales: Sequence[SaleLine]
    product_zones: Mapping[str, str | None]
    heat: Sequence[HeatSample]
    facts: OpsFacts


def _rows_to_table(table: ExportTable, rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=export_schema(table))


def zones_table(inputs: DayInputs, settings: InsightSettings | None = None) -> pa.Table:
    """The zone table of the day and of each daypart that saw a visit or a sale."""
    settings = settings or InsightSettings()
    layout = inputs.layout
    zones = [FloorZone(z.id, z.name, z.kind, round(z.area_m2, 3)) for z in layout.zones]
    common: dict[str, Any] = {
        "timezone": layout.timezone,
        "since": inputs.since,
        "until": inputs.until,
        "stop_s": settings.stop_s,
        "sales_channels": settings.sales_channels,
    }
    whole = zone_traffic(zones, inputs.visits, inputs.sales, inputs.product_zones, **common)
    if not any(r.visits or r.units for r in whole):
        return empty_table("zones")
    parts = zone_traffic(
        zones, inputs.visits, inputs.sales, inputs.product_zones, by="daypart", **common
    )
    rows = []
    for r in [*whole, *parts]:
        row = r.as_dict()
        rows.append(
            {
                "store_id": layout.store_id,
                "date": inputs.day,
                "daypart": WHOLE_DAY if r.period == "all" else r.period,
                "zone_id": r.zone_id,
                "zone_name": r.name,
                "zone_kind": r.kind,
                "dwell_total_s": r.dwell_total_s,
                **{k: row[k] for k in _ZONE_COPIED},
            }
        )
    return _rows_to_table("zones", rows)


_ZONE_COPIED = (
    "visits",
    "unique_visitors",
    "mean_dwell_s",
    "median_dwell_s",
    "passers_by",
    "stoppers",
    "stop_share",
    "merchandised",
    "units",
    "revenue",
    "sales_per_100_visits",
    "revenue_per_visitor_minute",
)


def _ratio(num: float, den: float) -> float | None:
    return round(num / den, 3) if den > 0 else None


def _orders_and_shifts(facts: OpsFacts, since: datetime, until: datetime) -> OpsFacts:
    """The facts the window's fulfillment and barista figures can depend on: orders paid,
    handed off or made ready in it, shifts overlapping it. The report reads nothing
    else for them, so it gives the same figures faster (queue and dwell are not exported
    here; the zone table has them)."""

    def inside(ts: datetime | None) -> bool:
        return ts is not None and since <= ts < until

    return OpsFacts(
        orders=[
            o for o in facts.orders if inside(o.paid_at or o.handed_off_at) or inside(o.ready_at)
        ],
        shifts=[s for s in facts.shifts if s.start < until and s.end > since],
    )


def _window_rows(
    inputs: DayInputs, hour: int | None, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    layout = inputs.layout
    report = ops_report(
        _orders_and_shifts(inputs.facts, since, until),
        store_id=layout.store_id,
        since=since,
        until=until,
        timezone=layout.timezone,
        # The whole day's: an hour's rows add up to the day's (a review).
        tracked=tracked_days(inputs.facts.orders, ZoneInfo(layout.timezone)),
    )
    ful, baristas = report["fulfillment"], report["baristas"]
    on_shift = sum(b["on_shift_h"] for b in baristas)
    if ful["orders"] == 0 and not any(b["orders"] or b["on_shift_h"] for b in baristas):
        return []
    keys = {"store_id": layout.store_id, "date": inputs.day, "hour": hour}
    drinks = sum(b["drinks"] for b in baristas)
    busy = sum(b["busy_h"] for b in baristas)
    rows = [
        {
            **keys,
            "dimension": "store",
            "key": "all",
            "orders": ful["orders"],
            "incomplete_orders": ful["incomplete"],
            "fulfilled_orders": ful["count"],
            "fulfillment_p50_s": ful["p50_s"],
            "fulfillment_p90_s": ful["p90_s"],
            "fulfillment_max_s": ful["max_s"],
            "orders_made": sum(b["orders"] for b in baristas),
            "drinks": drinks,
            "on_shift_h": round(on_shift, 4),
            "drinks_per_barista_hour": _ratio(drinks, on_shift),
            "utilisation": round(busy / on_shift, 4) if on_shift > 0 else None,
        }
    ]
    for g in ful["by_register"]:
        rows.append(
            {
                **keys,
                "dimension": "register",
                "key": g["key"],
                "fulfilled_orders": g["count"],
                "fulfillment_p50_s": g["p50_s"],
                "fulfillment_p90_s": g["p90_s"],
                "fulfillment_max_s": g["max_s"],
            }
        )
    for b in baristas:
        rows.append(
            {
                **keys,
                "dimension": "barista",
                "key": b["staff_id"],
                "orders_made": b["orders"],
                "drinks": b["drinks"],
                "on_shift_h": b["on_shift_h"],
                "drinks_per_barista_hour": b["drinks_per_hour"],
                "utilisation": b["utilisation"],
            }
        )
    return rows


def operations_table(inputs: DayInputs) -> pa.Table:
    """Fulfillment and barista productivity for the day and each local hour with activity.

    Each window is one call of :func:`~storelens.instore.report.ops_report`, so the
    figures are the report's: orders by payment time, drinks by the time they were ready,
    shift hours by overlap with the window.
    """
    rows = _window_rows(inputs, None, inputs.since, inputs.until)
    if not rows:
        return empty_table("operations")
    start = inputs.since
    while start < inputs.until:
        # Hours step in UTC so a daylight-saving day has its 23 or 25 local hours.
        end = min(start + timedelta(hours=1), inputs.until)
        local_hour = start.astimezone(inputs.since.tzinfo).hour
        rows += _window_rows(inputs, local_hour, start, end)
        start = end
    return _rows_to_table("operations", rows)


def heat_table(inputs: DayInputs) -> pa.Table:
    """People per m² per grid cell for the day and each daypart with heat samples."""
    layout = inputs.layout
    rows: list[dict[str, Any]] = []
    parts: list[str | None] = [None, *(name for name, _, _ in DAYPARTS)]
    zone_of: dict[tuple[int, int], str | None] = {}
    for part in parts:
        heat = average_density(
            inputs.heat,
            timezone=layout.timezone,
            label=part or WHOLE_DAY,
            daypart=part,
            since=inputs.since,
            until=inputs.until,
            floor=layout.floor,
        )
        if heat is None:
            continue
        cell = heat.cell_m
        for r, c in zip(*heat.people_per_m2.nonzero(), strict=True):
            x, y = (int(c) + 0.5) * cell, (int(r) + 0.5) * cell
            if (int(r), int(c)) not in zone_of:
                zone_of[int(r), int(c)] = next(
                    (z.id for z in layout.zones if z.contains((x, y))), None
                )
            rows.append(
                {
                    "store_id": layout.store_id,
                    "date": inputs.day,
                    "daypart": part or WHOLE_DAY,
                    "row": int(r),
                    "col": int(c),
                    "x_m": round(x, 4),
                    "y_m": round(y, 4),
                    "cell_m": cell,
                    "zone_id": zone_of[int(r), int(c)],
                    "people_per_m2": float(heat.people_per_m2[r, c]),
                    "observed_h": round(heat.hours, 4),
                }
            )
    return _rows_to_table("heat", rows)
