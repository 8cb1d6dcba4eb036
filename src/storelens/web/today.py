"""The Today page's figures: what the ops processor holds in flight, and the day so far.

Live counts (people in the store, in the queue, staff on shift) come from the ops
processor's committed snapshot, the same in-flight state its alerts are computed from,
so the page and the alerts never disagree. "Today" is the store-local day of the
latest event the processor has seen from this store (each store has its own clock,
so another store's device running ahead cannot move this page's "now"): today when
the store is live, the replayed day in a demo, and a clear "no events yet" before its
first one (or after a day of silence, once the processor has closed it out), never an
empty chart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine

from storelens import stores
from storelens.core.dayparts import day_bounds
from storelens.instore.processor import NAME as OPS
from storelens.instore.processor import report_from_db
from storelens.instore.store import (
    HandOffs,
    list_alerts,
    load_state,
    recent_hand_offs,
    zone_kinds,
)
from storelens.instore.tracker import OpsTracker, TrackerConfig
from storelens.web.schemas import AlertRow, KeyedFigures, QueuePoint, TodayView

__all__ = [
    "barista_totals",
    "customers_inside",
    "keyed",
    "open_alerts",
    "orders_waiting",
    "queue_points",
    "store_zone",
    "today_view",
]


def store_zone(name: str) -> ZoneInfo:
    """The store's time zone; UTC for a store saved before zones were checked."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return ZoneInfo("UTC")


def customers_inside(tracker: OpsTracker, store_id: str) -> int:
    """Customers in the store now: open customer tracks that are in a zone or have been
    past the entrance. A track that stepped into the entrance zone and back out (a look
    through the door) stays open for the visit timeout in case it comes in; counting it
    kept a passer-by "in the store" for half an hour."""
    return sum(
        1 for _, t in tracker.tracks.of(store_id) if not t.is_staff and (t.inside or t.been_inside)
    )


def orders_waiting(
    tracker: OpsTracker, store_id: str, now: datetime, hand_offs: HandOffs
) -> tuple[int | None, float | None]:
    """(paid orders not yet handed off, seconds the oldest has waited) at ``now``.

    Fulfillment percentiles count only orders handed off, so while the bar falls behind
    they still show the calm of an hour ago: five orders waiting 15 minutes are in no
    percentile until they are served. The manager needs that backlog now.

    ``(None, None)`` where the store does not report hand-offs (a shop with tills and
    no order screen), where every sale would otherwise "wait" until the order timeout:
    no hand-off in the last two weeks and no order in the making. (Judging by today
    alone showed nothing at opening, when the first queue is building.) An order with
    no drink waits only in a store that hands such orders off; elsewhere a pastry sold
    at the till "waited" four hours, until the order timeout."""
    open_orders = [o for _, o in tracker.orders.of(store_id)]
    in_making = any(o.started_at is not None or o.ready_at is not None for o in open_orders)
    if not hand_offs.reported and not in_making:
        return None, None
    waits = [
        (now - o.paid_at).total_seconds()
        for o in open_orders
        if o.paid_at is not None
        and o.paid_at <= now
        and (o.drinks or hand_offs.without_drinks or o.started_at or o.ready_at)
    ]
    return len(waits), (max(waits) if waits else None)


def barista_totals(baristas: Iterable[Mapping[str, Any]]) -> tuple[int, float, float | None]:
    """(drinks, on-shift hours, drinks per barista-hour) over the report's baristas."""
    rows = list(baristas)
    drinks = sum(int(b["drinks"]) for b in rows)
    hours = sum(float(b["on_shift_h"]) for b in rows)
    return drinks, round(hours, 3), (round(drinks / hours, 2) if hours > 0 else None)


def open_alerts(rows: Iterable[Mapping[str, Any]]) -> list[AlertRow]:
    """Alerts whose latest change is "raised", from rows newest first."""
    latest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        latest.setdefault(str(row["rule_id"]), row)
    return [AlertRow.model_validate(dict(r)) for r in latest.values() if r["state"] == "raised"]


def keyed(rows: Iterable[Mapping[str, Any]]) -> list[KeyedFigures]:
    return [KeyedFigures.model_validate(dict(r)) for r in rows]


def queue_points(rows: Iterable[Mapping[str, Any]]) -> list[QueuePoint]:
    return [QueuePoint.model_validate(dict(r)) for r in rows]


def today_view(engine: Engine, store_id: str, wall_clock: datetime | None = None) -> TodayView:
    """The Today page for ``store_id``; NotFound (404) for an unknown store.

    The page is the store's latest day of events: today while the store sends them. With
    ``wall_clock`` (the server's clock), a latest day before today is marked ``behind``: a
    closed store, or a feed that stopped, showed yesterday's figures under "Today"."""
    with engine.connect() as conn:
        store = stores.get_store(conn, store_id)
        kinds = zone_kinds(conn).get(store_id, {})
        state = load_state(conn, OPS)
    tz = store_zone(store["timezone"])
    tracker = OpsTracker.from_state(TrackerConfig(zone_kinds={store_id: kinds}), state)
    empty = TodayView(
        store_id=store_id,
        store_name=store["name"],
        timezone=str(tz),
        day=None,
        as_of=None,
        occupancy=0,
        queue_length=0,
        staff_on_shift=0,
        orders=0,
        fulfillment_p50_s=None,
        fulfillment_p90_s=None,
        orders_waiting=None,
        longest_wait_s=None,
        drinks=0,
        barista_hours=0.0,
        drinks_per_barista_hour=None,
        open_alerts=[],
        queue=[],
        by_hour=[],
    )
    now = tracker.clock(store_id)
    if now is None:
        return empty
    day = now.astimezone(tz).date()
    since, until = day_bounds(day, tz)
    queue_zones = [z for z, kind in kinds.items() if kind == "queue"]
    report = report_from_db(
        engine,
        store_id,
        timezone=str(tz),
        queue_zones=queue_zones or ["queue"],
        since=since,
        until=until,
    )
    live = tracker.live(store_id)
    drinks, hours, rate = barista_totals(report["baristas"])
    fulfillment = report["fulfillment"]
    with engine.connect() as conn:
        hand_offs = recent_hand_offs(conn, store_id, since)
    waiting, longest = orders_waiting(tracker, store_id, now, hand_offs)
    return empty.model_copy(
        update={
            "day": day,
            "behind": wall_clock is not None and day < wall_clock.astimezone(tz).date(),
            "as_of": now,
            "occupancy": customers_inside(tracker, store_id),
            "queue_length": live.queue_length if live is not None else 0,
            "staff_on_shift": sum(1 for s, _ in tracker.shifts if s == store_id),
            "orders": fulfillment["orders"],
            "fulfillment_p50_s": fulfillment["p50_s"],
            "fulfillment_p90_s": fulfillment["p90_s"],
            "orders_waiting": waiting,
            "longest_wait_s": longest,
            "drinks": drinks,
            "barista_hours": hours,
            "drinks_per_barista_hour": rate,
            "open_alerts": open_alerts(list_alerts(engine, store_id, limit=500)),
            "queue": queue_points(report["queue"]["length"]),
            "by_hour": keyed(fulfillment["by_hour"]),
        }
    )
