"""Retention: raw tracking data (anonymous positions and zone crossings) is deleted
after a fixed number of days, by event time, and so are the logged recommendation
lists (impressions), by the time they were shown.

Aggregates computed from raw tracking (occupancy, dwell, heatmaps) are kept; the raw
points are what could re-identify a person's path through a store, so they do not
outlive their use. Projections that need raw tracking must consume it within the
window. Impressions say what a named customer was shown, for access requests and
campaign attribution; past that use they are personal data kept for nothing (they
were kept forever until December 2026).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, Table, delete, func, select

from storelens.privacy import audit
from storelens.storage.tables import events, recommend_impressions

__all__ = ["RAW_TRACKING_TYPES", "PurgeResult", "purge_impressions", "purge_raw_tracking"]

RAW_TRACKING_TYPES = (
    "vision.track",
    "vision.zone_enter",
    "vision.zone_exit",
    "vision.line_crossed",
)


@dataclass(frozen=True, slots=True)
class PurgeResult:
    cutoff: datetime
    deleted: int
    dry_run: bool


def _cutoff(days: int, now: datetime | None) -> datetime:
    if days < 1:
        raise ValueError("retention must be at least one day")
    return (now or datetime.now(UTC)) - timedelta(days=days)


def _purge(
    engine: Engine,
    table: Table,
    due: tuple[ColumnElement[bool], ...],
    cutoff: datetime,
    dry_run: bool,
    actor: audit.Actor,
    detail: dict[str, Any],
) -> PurgeResult:
    """Delete ``table``'s rows that are ``due``; audited unless nothing was."""
    with engine.begin() as conn:
        if dry_run:
            count = conn.execute(select(func.count()).select_from(table).where(*due))
            return PurgeResult(cutoff, int(count.scalar_one()), dry_run=True)
        deleted = conn.execute(delete(table).where(*due)).rowcount
        if deleted:
            audit.record(
                conn,
                actor,
                "retention.purge",
                table.name,
                None,
                {"cutoff": cutoff.isoformat(), "deleted": deleted, **detail},
            )
    return PurgeResult(cutoff, deleted, dry_run=False)


def purge_raw_tracking(
    engine: Engine,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: audit.Actor = audit.SYSTEM,
) -> PurgeResult:
    """Delete raw tracking events older than ``days``; audited unless nothing was due."""
    cutoff = _cutoff(days, now)
    due = (events.c.type.in_(RAW_TRACKING_TYPES), events.c.ts < cutoff)
    return _purge(engine, events, due, cutoff, dry_run, actor, {"types": list(RAW_TRACKING_TYPES)})


def purge_impressions(
    engine: Engine,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: audit.Actor = audit.SYSTEM,
) -> PurgeResult:
    """Delete shown lists older than ``days`` (by the index on their time, so a purge
    reads only what it deletes); audited unless nothing was due."""
    cutoff = _cutoff(days, now)
    due = (recommend_impressions.c.ts < cutoff,)
    return _purge(engine, recommend_impressions, due, cutoff, dry_run, actor, {})
