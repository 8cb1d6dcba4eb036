"""The Floor page: heat over the floor plan, the zone table and the findings for a period.

Nothing here is computed twice: the zone table and findings are store insights
(:func:`~storelens.instore.insights_data.insights_of`, as ``storelens insights`` prints
them) and the heat is :func:`~storelens.instore.insights_heat.average_density`, the
same people-per-m² average the mailed HTML report draws. Only the drawing differs: the
browser draws the grids with plotly over the zone outlines, so switching daypart needs
no round trip and the picture scales to a phone.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from storelens.core.dayparts import DAYPARTS
from storelens.instore.insights import StoreInsights
from storelens.instore.insights_data import InsightInputs, insights_of, load_inputs
from storelens.instore.insights_heat import HeatDensity, average_density, scale_top
from storelens.instore.insights_html import KIND_TITLES
from storelens.sales import order_currencies
from storelens.web.schemas import FindingRow, FloorView, HeatGrid, ZoneOutline, ZoneRow

__all__ = ["HEAT_DIGITS", "floor_view", "heat_grids"]

HEAT_DIGITS = 4
"""People per m² are shown to 0.0001: finer figures are noise and only grow the page."""


def _grid(key: str, density: HeatDensity) -> HeatGrid:
    values = [[round(float(v), HEAT_DIGITS) for v in row] for row in density.people_per_m2]
    return HeatGrid(
        key=key,
        label=density.label,
        hours=round(density.hours, 2),
        cell_m=density.cell_m,
        peak=round(density.peak, HEAT_DIGITS),
        scale_max=round(scale_top([density]), HEAT_DIGITS),
        values=values,
    )


def heat_grids(inputs: InsightInputs) -> list[HeatGrid]:
    """The whole day first, then each daypart that has heat (in the store's time)."""
    parts: list[tuple[str, str | None, str]] = [("all", None, "Whole day")]
    parts += [(name, name, f"{name.title()} ({lo:02d}–{hi:02d} h)") for name, lo, hi in DAYPARTS]
    out = []
    for key, daypart, label in parts:
        density = average_density(
            inputs.heat,
            timezone=inputs.layout.timezone,
            label=label,
            daypart=daypart,
            since=inputs.since,
            until=inputs.until,
            floor=inputs.layout.floor,
        )
        if density is not None:
            out.append(_grid(key, density))
    return out


def _zone_rows(result: StoreInsights) -> list[ZoneRow]:
    return [
        ZoneRow(
            zone_id=z.zone_id,
            name=z.name,
            kind=z.kind,
            visits=z.visits,
            unique_visitors=z.unique_visitors,
            mean_dwell_s=z.mean_dwell_s,
            median_dwell_s=z.median_dwell_s,
            passers_by=z.passers_by,
            stoppers=z.stoppers,
            units=z.units,
            revenue=z.revenue,
            sales_per_100_visits=z.sales_per_100_visits,
            revenue_per_visitor_minute=z.revenue_per_visitor_minute,
        )
        for z in result.zones
    ]


def floor_view(engine: Engine, store_id: str, first: date, last: date) -> FloorView:
    """NotFound (404) for an unknown store or one without a layout; NoInsightData (404)
    for a period with no zone visits, sales or heat; InvalidInput (422) for a range the
    wrong way round."""
    inputs = load_inputs(engine, store_id, first, last)
    result = insights_of(inputs, breakdowns=("daypart",))  # no daily table on this page
    layout = inputs.layout
    heat = heat_grids(inputs)
    with engine.connect() as conn:
        currencies = order_currencies(conn, store_id)
    return FloorView(
        currencies=currencies,
        store_id=store_id,
        store_name=layout.name,
        timezone=layout.timezone,
        first=first,
        last=last,
        width_m=layout.floor.width_m,
        height_m=layout.floor.height_m,
        zones=_zone_rows(result),
        findings=[
            FindingRow(
                kind=f.kind,
                title=KIND_TITLES[f.kind],
                zone_id=f.zone_id,
                zone_name=f.zone_name,
                sentence=f.sentence,
            )
            for f in result.findings
        ],
        outlines=[
            ZoneOutline(
                zone_id=z.id,
                name=z.name,
                kind=z.kind,
                polygon=[(float(x), float(y)) for x, y in z.polygon],
            )
            for z in layout.zones
        ],
        heat=heat,
        heat_note=None
        if heat
        else "No heatmaps in this period: cameras send them (vision.heatmap) while the "
        "vision pipeline runs.",
    )
