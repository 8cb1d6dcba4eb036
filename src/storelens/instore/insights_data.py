"""Store insights' I/O half: facts, sales, placements, layout and heat for a period.

The pure half (:mod:`~storelens.instore.insights`, :mod:`~storelens.instore.zone_traffic`,
:mod:`~storelens.instore.insights_heat`) never touches a database; this module gathers
its inputs from one, or from an events file, and refuses a period it cannot answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from storelens import catalogue, stores
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.core.layout import StoreLayout, parse_layout
from storelens.instore.facts import ZoneVisit
from storelens.instore.insights import BREAKDOWNS, StoreInsights, store_insights
from storelens.instore.insights_heat import HeatSample, heat_sample
from storelens.instore.insights_settings import InsightSettings
from storelens.instore.store import load_facts
from storelens.instore.zone_traffic import FloorZone, SaleLine
from storelens.storage.eventlog import EventLog, EventQuery
from storelens.storage.tables import order_lines, orders

__all__ = [
    "InsightInputs",
    "NoInsightData",
    "floor_zones",
    "insights_of",
    "load_heat",
    "load_inputs",
    "load_sales",
    "local_period",
    "sale_lines",
]


class NoInsightData(NotFound):
    """The period has no zone visits, sales or heat for the store: nothing to say."""


class _Event(Protocol):
    type: str
    ts: datetime
    store_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True, eq=False)
class InsightInputs:
    """Everything the pure half needs for one store and period."""

    layout: StoreLayout
    since: datetime
    until: datetime
    visits: list[ZoneVisit]
    sales: list[SaleLine]
    product_zones: Mapping[str, str | None]
    heat: list[HeatSample]


def local_period(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """``first`` to ``last`` inclusive, as local midnights; refuses a range the wrong way round."""
    if first > last:
        message = f"the period starts ({first}) after it ends ({last})"
        raise InvalidInput(message, [FieldError.at(("query", "from"), message, "range")])
    tz = ZoneInfo(timezone)
    since = datetime.combine(first, time(0), tzinfo=tz)
    return since, datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz)


def floor_zones(layout: StoreLayout) -> list[FloorZone]:
    return [FloorZone(z.id, z.name, z.kind, round(z.area_m2, 3)) for z in layout.zones]


def sale_lines(events: Iterable[_Event], store_id: str) -> list[SaleLine]:
    """Order lines of ``pos.order_paid`` events (a file, or the log read directly)."""
    out = []
    for ev in events:
        if ev.type != "pos.order_paid" or ev.store_id != store_id:
            continue
        channel = ev.payload.get("channel", "in_store")
        for li in ev.payload["lines"]:
            revenue = round(li["qty"] * li["unit_price"], 2)
            out.append(SaleLine(ev.ts, li["product_id"], li["qty"], revenue, channel))
    return out


def load_sales(engine: Engine, store_id: str, since: datetime, until: datetime) -> list[SaleLine]:
    """In-store and other order lines of the store paid in ``[since, until)``."""
    stmt = (
        select(
            orders.c.ts,
            orders.c.channel,
            order_lines.c.product_id,
            order_lines.c.qty,
            order_lines.c.unit_price,
        )
        .join(
            order_lines,
            (order_lines.c.store_id == orders.c.store_id)
            & (order_lines.c.order_id == orders.c.order_id),
        )
        .where(orders.c.store_id == store_id, orders.c.ts >= since, orders.c.ts < until)
    )
    with engine.connect() as conn:
        return [
            SaleLine(ts, pid, qty, round(qty * price, 2), channel)
            for ts, channel, pid, qty, price in conn.execute(stmt)
        ]


def load_heat(engine: Engine, store_id: str, since: datetime, until: datetime) -> list[HeatSample]:
    """Heat grids whose period ends in the window (plus one period's grace at the end)."""
    log, after = EventLog(engine), 0
    out: list[HeatSample] = []
    while True:
        query = EventQuery(
            store_id=store_id,
            types=("vision.heatmap",),
            since=since,
            until=until + timedelta(hours=1),
            after_seq=after,
            limit=2000,
        )
        batch = log.query(query)
        if not batch:
            return out
        out.extend(heat_sample(ev.ts, ev.payload, source=ev.source) for ev in batch)
        after = batch[-1].seq


def load_inputs(engine: Engine, store_id: str, first: date, last: date) -> InsightInputs:
    """Read one store's period; NotFound for an unknown store or one with no layout."""
    with engine.connect() as conn:
        stores.get_store(conn, store_id)
        _, document = stores.get_layout(conn, store_id)
        placed = catalogue.product_zones(conn)
    layout = parse_layout(document, path=f"layout of {store_id}")
    since, until = local_period(first, last, layout.timezone)
    facts = load_facts(engine, store_id, since, until, kinds=(ZoneVisit,))
    return InsightInputs(
        layout=layout,
        since=since,
        until=until,
        visits=facts.zone_visits,
        sales=load_sales(engine, store_id, since, until),
        product_zones=placed,
        heat=load_heat(engine, store_id, since, until),
    )


def insights_of(
    inputs: InsightInputs,
    settings: InsightSettings | None = None,
    breakdowns: Collection[str] = BREAKDOWNS,
) -> StoreInsights:
    """The findings for the inputs; NoInsightData when the period saw nothing at all.
    ``breakdowns``: which of the by-day and by-daypart tables to build."""
    layout = inputs.layout
    result = store_insights(
        store_id=layout.store_id,
        store_name=layout.name,
        timezone=layout.timezone,
        since=inputs.since,
        until=inputs.until,
        zones=floor_zones(layout),
        visits=inputs.visits,
        sales=inputs.sales,
        product_zones=inputs.product_zones,
        settings=settings,
        breakdowns=breakdowns,
    )
    seen = any(z.visits or z.units for z in result.zones)
    heat = any(inputs.since <= s.middle < inputs.until for s in inputs.heat)
    if not seen and not heat:
        raise NoInsightData(
            f"{layout.store_id} has no zone visits, sales or heatmaps from "
            f"{inputs.since:%Y-%m-%d} to {inputs.until - timedelta(days=1):%Y-%m-%d} "
            f"({layout.timezone}); pick a period with data"
        )
    return result
