"""The Operations page: fulfillment and productivity over a period, and its alert history.

The period's figures are the ops report over :func:`facts_from_db`, which is what
``report_from_db`` (and so ``GET /v1/stores/{id}/ops``) computes, so the page shows
exactly what the API answers; the day-by-day series runs the same pure report once
per day over the facts read once.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine

from storelens import stores
from storelens.core.dayparts import day_bounds
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.instore.facts import OpsFacts
from storelens.instore.processor import facts_from_db
from storelens.instore.report import ops_report
from storelens.instore.store import list_alerts
from storelens.web.schemas import (
    AlertRow,
    AlertSummary,
    BaristaRow,
    DayFigures,
    OperationsView,
)
from storelens.web.today import barista_totals, keyed, queue_points, store_zone

__all__ = ["ALERT_HISTORY", "NoOperations", "alert_summary", "check_period", "operations_view"]

ALERT_HISTORY = 500


class NoOperations(NotFound):
    """The period has no orders, shifts or queue for the store: nothing to draw."""


def check_period(first: date, last: date, max_days: int) -> None:
    """Refuse a period the wrong way round or longer than ``max_days`` (422, naming the field)."""
    if first > last:
        message = f"the period starts ({first}) after it ends ({last})"
        raise InvalidInput(message, [FieldError.at(("query", "from"), message, "range")])
    if (last - first).days + 1 > max_days:
        message = f"the period is {(last - first).days + 1} days; at most {max_days} are shown"
        raise InvalidInput(message, [FieldError.at(("query", "to"), message, "range")])


def operations_view(engine: Engine, store_id: str, first: date, last: date) -> OperationsView:
    """NotFound for an unknown store; :class:`NoOperations` for a period without data."""
    with engine.connect() as conn:
        store = stores.get_store(conn, store_id)
        queue_zones = stores.queue_zone_ids(conn, store_id) or ["queue"]
    tz = store_zone(store["timezone"])
    days = (last - first).days + 1
    since, until = day_bounds(first, tz, days)
    # Facts are read once: the period's report is what report_from_db (and so the API)
    # gives, and each day's is the same pure report over the same facts.
    facts = facts_from_db(engine, store_id, since, until)
    report = ops_report(
        facts,
        store_id=store_id,
        since=since,
        until=until,
        timezone=str(tz),
        queue_zones=queue_zones,
    )
    fulfillment = report["fulfillment"]
    if not fulfillment["orders"] and not report["baristas"] and not report["queue"]["length"]:
        raise NoOperations(
            f"{store['name']} has no orders, shifts or queue from {first} to {last} "
            f"({tz}); pick a period with data"
        )
    # A day's row needs orders and shifts only: leaving out the (many) zone visits keeps
    # seven daily reports from re-reading a week of people seven times.
    staffing = OpsFacts(orders=facts.orders, shifts=facts.shifts)
    by_day = []
    for i in range(days):
        day = first + timedelta(days=i)
        lo, hi = day_bounds(day, tz)
        daily = ops_report(staffing, store_id=store_id, since=lo, until=hi, timezone=str(tz))
        drinks, hours, rate = barista_totals(daily["baristas"])
        by_day.append(
            DayFigures(
                day=day,
                recorded=bool(daily["fulfillment"]["orders"] or hours),
                orders=daily["fulfillment"]["orders"],
                p50_s=daily["fulfillment"]["p50_s"],
                p90_s=daily["fulfillment"]["p90_s"],
                drinks=drinks,
                barista_hours=hours,
                drinks_per_barista_hour=rate,
            )
        )
    alerts = [
        AlertRow.model_validate(r)
        for r in list_alerts(engine, store_id, limit=ALERT_HISTORY, since=since)
        if r["at"] is not None and _before(r["at"], until)
    ]
    return OperationsView(
        store_id=store_id,
        store_name=store["name"],
        timezone=str(tz),
        first=first,
        last=last,
        orders=fulfillment["orders"],
        complete=fulfillment["complete"],
        incomplete=fulfillment["incomplete"],
        untracked=fulfillment["untracked"],
        p50_s=fulfillment["p50_s"],
        p90_s=fulfillment["p90_s"],
        by_day=by_day,
        by_hour=keyed(fulfillment["by_hour"]),
        by_daypart=keyed(fulfillment["by_daypart"]),
        by_register=keyed(fulfillment["by_register"]),
        by_channel=keyed(fulfillment["by_channel"]),
        baristas=[BaristaRow.model_validate(b) for b in report["baristas"]],
        queue=queue_points(report["queue"]["length"]),
        queue_waits=report["queue"]["wait_count"],
        queue_wait_p50_s=report["queue"]["wait_p50_s"],
        queue_wait_p90_s=report["queue"]["wait_p90_s"],
        visits=report["dwell"]["count"],
        dwell_p50_s=report["dwell"]["p50_s"],
        dwell_p90_s=report["dwell"]["p90_s"],
        walk_bys=report["dwell"]["walk_bys"],
        alerts=alerts,
        alert_summary=alert_summary(alerts),
    )


def alert_summary(alerts: list[AlertRow]) -> list[AlertSummary]:
    """Raises per rule, most first: a week of 84 rows read as one long list."""
    raised: dict[str, list[AlertRow]] = {}
    for a in alerts:
        if a.state == "raised":
            raised.setdefault(a.rule_id, []).append(a)
    rows = [
        AlertSummary(
            rule_id=rule,
            severity=items[0].severity,
            raised=len(items),
            last_raised_at=max(a.at for a in items),
        )
        for rule, items in raised.items()
    ]
    return sorted(rows, key=lambda r: (-r.raised, r.rule_id))


def _before(at: datetime, until: datetime) -> bool:
    """SQLite hands back naive UTC times, PostgreSQL aware ones."""
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware < until
