"""Annotated dependencies shared by the routers: storage handles, settings, the clock
and role gates. Routers reach settings only through :data:`SettingsDep`, and "now"
only through :data:`Now`, so a test overrides either with ``dependency_overrides``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from storelens.accounts import Role
from storelens.api.auth import Principal, allow
from storelens.config import Settings
from storelens.core.events import EventTimeWindow
from storelens.storage.eventlog import EventLog

__all__ = [
    "AdminOnly",
    "AnalystOrAdmin",
    "AnyPerson",
    "EngineDep",
    "EventLogDep",
    "EventWindow",
    "EventWriter",
    "Now",
    "SettingsDep",
    "current_time",
]


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _event_log(request: Request) -> EventLog:
    event_log: EventLog = request.app.state.event_log
    return event_log


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def current_time() -> datetime:
    """The server clock; override it in tests instead of sleeping or freezing time."""
    return datetime.now(UTC)


EngineDep = Annotated[Engine, Depends(_engine)]
EventLogDep = Annotated[EventLog, Depends(_event_log)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Now = Annotated[datetime, Depends(current_time)]


def _event_window(settings: SettingsDep, now: Now) -> EventTimeWindow:
    return EventTimeWindow(
        now=now, max_future=settings.event_max_future, earliest=settings.earliest_event_time
    )


EventWindow = Annotated[EventTimeWindow, Depends(_event_window)]

AdminOnly = Annotated[Principal, allow(Role.admin)]
AnalystOrAdmin = Annotated[Principal, allow(Role.admin, Role.analyst)]
AnyPerson = Annotated[Principal, allow(Role.admin, Role.analyst, Role.staff)]
EventWriter = Annotated[Principal, allow(Role.admin, Role.device)]
