"""Annotated dependencies shared by the routers: storage handles, settings, the clock
and role gates. Routers reach settings only through :data:`SettingsDep`, and "now"
only through :data:`Now`, so a test overrides either with ``dependency_overrides``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic import AfterValidator, AwareDatetime, BeforeValidator
from pydantic_core import PydanticCustomError
from sqlalchemy import Engine

from storelens import stores
from storelens.accounts import Role
from storelens.api.auth import Principal, allow, settings_of
from storelens.config import Settings
from storelens.core.events import EventTimeWindow
from storelens.storage.eventlog import EventLog

__all__ = [
    "MAX_ROW_ID",
    "MAX_ROW_NUMBER",
    "QUERY_TIME_RANGE",
    "AdminOnly",
    "After",
    "AnalystOrAdmin",
    "AnyPerson",
    "EngineDep",
    "EventLogDep",
    "EventWindow",
    "EventWriter",
    "KnownStore",
    "Now",
    "Offset",
    "QueryTime",
    "SettingsDep",
    "current_time",
]


# The handles below are async because they never block: a sync dependency costs each
# request a hop through the threadpool (tens of microseconds, more under load).
async def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


async def _event_log(request: Request) -> EventLog:
    event_log: EventLog = request.app.state.event_log
    return event_log


async def _settings(request: Request) -> Settings:
    return settings_of(request)


async def current_time() -> datetime:
    """The server clock; override it in tests instead of sleeping or freezing time."""
    return datetime.now(UTC)


EngineDep = Annotated[Engine, Depends(_engine)]
EventLogDep = Annotated[EventLog, Depends(_event_log)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Now = Annotated[datetime, Depends(current_time)]


async def _event_window(settings: SettingsDep, now: Now) -> EventTimeWindow:
    return EventTimeWindow(
        now=now, max_future=settings.event_max_future, earliest=settings.earliest_event_time
    )


EventWindow = Annotated[EventTimeWindow, Depends(_event_window)]

AdminOnly = Annotated[Principal, allow(Role.admin)]
AnalystOrAdmin = Annotated[Principal, allow(Role.admin, Role.analyst)]
AnyPerson = Annotated[Principal, allow(Role.admin, Role.analyst, Role.staff)]
EventWriter = Annotated[Principal, allow(Role.admin, Role.device)]


MAX_ROW_NUMBER = 2**62
"""Bound on offsets and positions: SQLite integers are signed 64-bit, and
``offset + limit`` must not overflow either."""

MAX_ROW_ID = 2**31 - 1
"""Bound on ids of ``Integer`` primary keys: PostgreSQL's ``integer`` is 32-bit, and a
larger id cast to it fails in the database instead of simply finding nothing."""

Offset = Annotated[int, Query(ge=0, le=MAX_ROW_NUMBER, description="rows to skip")]
After = Annotated[
    int,
    Query(ge=0, le=MAX_ROW_NUMBER, description="return events after this log position"),
]

QUERY_TIME_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
"""Times a query may name. Outside it no data exists, and near year 1 or 9999 a
conversion to UTC or to the store's zone overflows."""


def _in_query_range(value: datetime) -> datetime:
    lo, hi = QUERY_TIME_RANGE
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"must be between {lo.isoformat()} and {hi.isoformat()}") from None
    if not lo <= utc <= hi:
        raise ValueError(f"must be between {lo.isoformat()} and {hi.isoformat()}")
    return utc


def _iso_only(value: object) -> object:
    """A bare number would pass as Unix seconds (``since=2159`` is 1970-01-01T00:35:59Z):
    the schema promises an ISO 8601 date-time, so only that is read."""
    if isinstance(value, str) and value.strip().lstrip("+-").replace(".", "", 1).isdigit():
        raise PydanticCustomError(
            "datetime_iso", "expected an ISO 8601 date-time with a UTC offset, not a number"
        )
    return value


QueryTime = Annotated[AwareDatetime, BeforeValidator(_iso_only), AfterValidator(_in_query_range)]
"""A time query parameter: with a UTC offset (a naive time is ambiguous) and in range."""


def _known_store(engine: EngineDep, store_id: Annotated[str, Path(max_length=64)]) -> str:
    with engine.connect() as conn:
        stores.get_store(conn, store_id)  # NotFound -> 404, for deleted stores too
    return store_id


KnownStore = Annotated[str, Depends(_known_store)]
"""The ``{store_id}`` of a store sub-route, checked to exist. Put it after the route's
role gate: FastAPI resolves parameters in order, and a store check first would answer
404 or 200 to a caller without credentials (``tests/api/test_auth.py`` walks them all)."""
