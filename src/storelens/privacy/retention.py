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

__all__ = [
    "PURGE_BATCH",
    "RAW_TRACKING_TYPES",
    "PurgeResult",
    "purge_impressions",
    "purge_raw_tracking",
]

PURGE_BATCH = 10_000  # rows per transaction

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
    batch: int,
) -> PurgeResult:
    """Delete ``table``'s rows that are ``due``, ``batch`` rows per transaction, each
    with its audit row (none where nothing was due).

    In batches because a first purge can be large (shown lists were kept forever), and
    on SQLite one delete of all of it would hold the only write lock for its whole run:
    every other writer waits, past its busy timeout (a review)."""
    if dry_run:
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(table).where(*due))
            return PurgeResult(cutoff, int(count.scalar_one()), dry_run=True)
    key = next(iter(table.primary_key.columns))
    total = 0
    while True:
        with engine.begin() as conn:
            some = select(key).where(*due).limit(batch)
            deleted = conn.execute(delete(table).where(key.in_(some))).rowcount
            if deleted:
                audit.record(
                    conn,
                    actor,
                    "retention.purge",
                    table.name,
                    None,
                    {"cutoff": cutoff.isoformat(), "deleted": deleted, **detail},
                )
        total += deleted
        if deleted < batch:
            return PurgeResult(cutoff, total, dry_run=False)


def purge_raw_tracking(
    engine: Engine,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: audit.Actor = audit.SYSTEM,
    batch: int = PURGE_BATCH,
) -> PurgeResult:
    """Delete raw tracking events older than ``days``; audited unless nothing was due."""
    cutoff = _cutoff(days, now)
    due = (events.c.type.in_(RAW_TRACKING_TYPES), events.c.ts < cutoff)
    detail = {"types": list(RAW_TRACKING_TYPES)}
    return _purge(engine, events, due, cutoff, dry_run, actor, detail, batch)


def purge_impressions(
    engine: Engine,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: audit.Actor = audit.SYSTEM,
    batch: int = PURGE_BATCH,
) -> PurgeResult:
    """Delete shown lists older than ``days`` (by the index on their time, so a purge
    reads only what it deletes); audited unless nothing was due."""
    cutoff = _cutoff(days, now)
    due = (recommend_impressions.c.ts < cutoff,)
    return _purge(engine, recommend_impressions, due, cutoff, dry_run, actor, {}, batch)
