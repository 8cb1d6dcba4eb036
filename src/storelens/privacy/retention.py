"""Retention: raw tracking data (anonymous positions and zone crossings) is deleted
after a fixed number of days, by event time.

Aggregates computed from it (occupancy, dwell, heatmaps) are kept; the raw points
are what could re-identify a person's path through a store, so they do not outlive
their use. Projections that need raw tracking must consume it within the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select

from storelens.privacy import audit
from storelens.storage.tables import events

__all__ = ["RAW_TRACKING_TYPES", "PurgeResult", "purge_raw_tracking"]

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


def purge_raw_tracking(
    engine: Engine,
    days: int,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    actor: audit.Actor = audit.SYSTEM,
) -> PurgeResult:
    """Delete raw tracking events older than ``days``; audited unless nothing was due."""
    if days < 1:
        raise ValueError("retention must be at least one day")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    due = (events.c.type.in_(RAW_TRACKING_TYPES), events.c.ts < cutoff)
    with engine.begin() as conn:
        if dry_run:
            count = conn.execute(select(func.count()).select_from(events).where(*due))
            return PurgeResult(cutoff, int(count.scalar_one()), dry_run=True)
        deleted = conn.execute(delete(events).where(*due)).rowcount
        if deleted:
            audit.record(
                conn,
                actor,
                "retention.purge",
                "events",
                None,
                {
                    "cutoff": cutoff.isoformat(),
                    "deleted": deleted,
                    "types": list(RAW_TRACKING_TYPES),
                },
            )
    return PurgeResult(cutoff, deleted, dry_run=False)
