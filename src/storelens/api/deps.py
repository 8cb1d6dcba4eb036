"""Annotated dependencies shared by the routers: storage handles and role gates."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from storelens.accounts import Role
from storelens.api.auth import Principal, allow
from storelens.config import Settings
from storelens.storage.eventlog import EventLog

__all__ = [
    "AdminOnly",
    "AnalystOrAdmin",
    "AnyPerson",
    "EngineDep",
    "EventLogDep",
    "EventWriter",
    "SettingsDep",
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


EngineDep = Annotated[Engine, Depends(_engine)]
EventLogDep = Annotated[EventLog, Depends(_event_log)]
SettingsDep = Annotated[Settings, Depends(_settings)]

AdminOnly = Annotated[Principal, allow(Role.admin)]
AnalystOrAdmin = Annotated[Principal, allow(Role.admin, Role.analyst)]
AnyPerson = Annotated[Principal, allow(Role.admin, Role.analyst, Role.staff)]
EventWriter = Annotated[Principal, allow(Role.admin, Role.device)]
