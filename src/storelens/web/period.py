"""Which days a dashboard page shows: what the picker asked for, or the latest week of data.

A page opened without a period shows the ``web_default_days`` days up to the day of
the latest event the ops processor has seen from that store (in the store's zone; not
another store's, whose device may run ahead), not up to the
wall clock: a store whose cameras were off yesterday, or the demo's replayed week,
still opens on data rather than on an empty chart. Bad dates are refused as 422 with
the query field named, like the API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import Engine

from storelens import stores
from storelens.api.auth import settings_of
from storelens.core.errors import FieldError, InvalidInput
from storelens.instore.processor import NAME as OPS
from storelens.instore.store import load_state
from storelens.instore.tracker import store_time
from storelens.web.cache import ViewCache, log_state
from storelens.web.floor import floor_view
from storelens.web.operations import check_period, operations_view
from storelens.web.today import store_zone

__all__ = ["VIEWS", "Period", "latest_day", "parse_day", "period_view", "pick_period"]

Period = tuple[date, date]


def parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        message = f"{field} must be a date like 2026-11-02, got {value[:40]!r}"
        raise InvalidInput(message, [FieldError.at(("query", field), message, "date")]) from None


def latest_day(engine: Engine, store_id: str) -> date:
    """The store-local day of the store's latest event seen; today (UTC) before its
    first one."""
    with engine.connect() as conn:
        store = stores.get_store(conn, store_id)
        state = load_state(conn, OPS)
    mark = store_time(state, store_id)
    if mark is None:
        return datetime.now(UTC).date()
    return mark.astimezone(store_zone(store["timezone"])).date()


def pick_period(
    engine: Engine,
    store_id: str,
    since: str | None,
    until: str | None,
    *,
    default_days: int,
    max_days: int,
) -> Period:
    """The asked period, filling a missing end from the data and a missing start from
    ``default_days``; NotFound for an unknown store, InvalidInput for bad dates."""
    last = parse_day(until, "to") if until else None
    first = parse_day(since, "from") if since else None
    if last is None:
        last = (
            latest_day(engine, store_id)
            if first is None
            else first + timedelta(days=default_days - 1)
        )
    if first is None:
        first = last - timedelta(days=default_days - 1)
    check_period(first, last, max_days)
    return first, last


VIEWS: dict[str, Callable[[Engine, str, date, date], BaseModel]] = {
    "floor": floor_view,
    "operations": operations_view,
}
"""The period pages and what builds each."""


def period_view(
    request: Request, kind: str, store_id: str, since: str | None, until: str | None
) -> BaseModel:
    """The ``kind`` view of the asked (or default) period, reused from the app's
    :class:`ViewCache` while the log and the projections it reads stand still."""
    settings = settings_of(request)
    engine: Engine = request.app.state.engine
    first, last = pick_period(
        engine,
        store_id,
        since,
        until,
        default_days=settings.web_default_days,
        max_days=settings.web_max_days,
    )
    cache: ViewCache = request.app.state.view_cache
    key = (kind, store_id, first, last, log_state(request.app.state.event_log))
    return cache.get_or_build(key, lambda: VIEWS[kind](engine, store_id, first, last))
