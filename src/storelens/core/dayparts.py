"""The day's parts, one table for every page and model that splits a day.

The Floor page, the ops report, the exports and the recommender's context all speak of
"morning" or "evening"; each once had its own hours, so an order at 05:30 was morning
on one page and night on the next. Hours are in the store's own time zone.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

__all__ = [
    "DAYPARTS",
    "OFF_HOURS",
    "Daypart",
    "day_bounds",
    "daypart_of_hour",
    "daypart_order",
]

Daypart = Literal["morning", "midday", "afternoon", "evening", "night"]

DAYPARTS: tuple[tuple[Daypart, int, int], ...] = (
    ("morning", 6, 11),
    ("midday", 11, 14),
    ("afternoon", 14, 17),
    ("evening", 17, 22),
)
"""(name, first hour, end hour) in the store's own time zone; end hours are exclusive."""

OFF_HOURS: Daypart = "night"
"""The daypart of anything outside :data:`DAYPARTS` (a cleaner at 05:00, a late stock-take)."""

_NAMES: tuple[Daypart, ...] = (*(name for name, _, _ in DAYPARTS), OFF_HOURS)


def daypart_of_hour(hour: int) -> Daypart:
    return next((name for name, lo, hi in DAYPARTS if lo <= hour < hi), OFF_HOURS)


def daypart_order(name: str) -> int:
    """Sort key putting dayparts in the day's order, night last."""
    return _NAMES.index(name)


def day_bounds(day: date, tz: ZoneInfo, days: int = 1) -> tuple[datetime, datetime]:
    """Local midnight of ``day`` to local midnight ``days`` later (a day the clocks
    change has 23 or 25 hours)."""
    since = datetime.combine(day, time(0), tzinfo=tz)
    return since, datetime.combine(day + timedelta(days=days), time(0), tzinfo=tz)
