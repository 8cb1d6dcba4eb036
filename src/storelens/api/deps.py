"""Annotated dependencies shared by the routers: storage handles, settings, the clock
and role gates. Routers reach settings only through :data:`SettingsDep`, and "now"
only through :data:`Now`, so a test overrides either with ``dependency_overrides``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
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
    "StaffPace",
    "current_time",
    "hold_staff_to_rate",
    "paced_for_staff",
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


def hold_staff_to_rate(request: Request, principal: Principal) -> None:
    """A staff login's write about a customer by id (a face enrollment, a withdrawal)
    counts against its rate (``STORELENS_STAFF_CUSTOMER_WRITES_PER_MINUTE``); past it,
    429. Staff get one answer for known and unknown ids where they can, but a known id
    takes longer (the write happens), and an enrollment's 404 says outright, so
    unthrottled probes told customers from strangers (security reviews). Admins and
    analysts are told outright (404) and are not held."""
    if principal.role is not Role.staff:
        return
    if not request.app.state.staff_write_limiter.hit(f"staff-write:{principal.actor.name}"):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many writes about customers from this login; try again in a minute",
            headers={"Retry-After": "60"},
        )


@dataclass(frozen=True, slots=True)
class StaffPace:
    """How long a staff login's write about a customer by id takes at the least
    (``STORELENS_STAFF_CUSTOMER_WRITE_FLOOR_MS``), and the step its answer keeps to
    beyond that. Clock and sleep are injected so a test can check the wait without
    timing anything."""

    floor_s: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    def wait_out(self, started: float) -> None:
        """Answers at the first whole multiple of the floor after the work ended.

        A floor alone hid only work shorter than itself: on a slow database a known id's
        write showed through again in full. Rounded up to the floor's step, a known and an
        unknown id answer at the same time unless their work falls either side of a step,
        which a difference of ``d`` does about ``d / floor`` of the time."""
        if self.floor_s <= 0:
            return
        elapsed = self.clock() - started
        steps = max(1, math.ceil(elapsed / self.floor_s - 1e-9))
        left = steps * self.floor_s - elapsed
        if left > 0:
            self.sleep(left)


@contextmanager
def paced_for_staff(request: Request, principal: Principal) -> Iterator[None]:
    """Holds a staff login to its rate, then answers no sooner than the floor, for a
    known id (a row is written) and an unknown one (nothing is) alike.

    The rate alone left the difference: a known id took about 1 ms longer (medians 3.96
    against 2.79 ms, a security review), enough for a few hundred probes to tell card
    numbers of customers from strangers'. A floor well above the write's cost hides
    it; a tap in the staff app does not notice 40 ms. Sync routes only: the wait
    sleeps a threadpool thread, never the event loop."""
    hold_staff_to_rate(request, principal)
    if principal.role is not Role.staff:
        yield
        return
    pace: StaffPace = request.app.state.staff_pace
    started = pace.clock()
    try:
        yield
    finally:
        pace.wait_out(started)
