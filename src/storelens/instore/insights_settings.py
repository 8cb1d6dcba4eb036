"""The thresholds behind store insights, in one place with their reasons.

A manager who disagrees with a finding should be able to read why a zone was called
cold or a fixture "high traffic, low sales" here, and change it, rather than find a
number buried in code.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["InsightSettings"]


@dataclass(frozen=True, slots=True)
class InsightSettings:
    """Every threshold a finding depends on; the defaults suit a small shop or café.

    ``stop_s``: a visit of at least this many seconds is a *stopper* (someone who looked),
    shorter ones are *passers-by*; 10 s is about the time it takes to read a shelf label.

    ``cold_share``: a zone is *cold* when its visits are below this share of the median
    zone's (0.5: fewer than half the visits of a typical zone).

    ``poi_count``: how many *points of interest* to name (zones ranked by stoppers, then
    visits): the places where an advert or a promotion is seen by people who stop.

    ``placement_count``: how many zones to suggest for a new product: the busiest zones
    whose kind is in ``shelf_kinds`` (where there is shelf or display space to put it).

    ``browse_kinds``: zones whose traffic shows how much a place draws people, as opposed
    to places everyone must pass (entrance, queue, checkout); only these can be cold.

    ``min_visits``: a zone with fewer visits in the period is too thin to call
    "high traffic, low sales" (a quiet week is not a verdict on a fixture).

    ``busy_share`` and ``weak_share``: "high traffic, low sales" means at least
    ``busy_share`` times the median merchandised zone's visits (1.25: a quarter more)
    and at most ``weak_share`` of its items sold per 100 visits (0.5: half). Gaps, not
    ranks: zones a few visits or sales apart swap ranks from one day to the next by
    chance, and a rank-based rule called one of them a problem on ordinary days.

    ``sales_channels``: which orders count as a zone's sales; mobile and web orders were
    chosen away from the shelf, so they do not measure what the shelf sold.
    """

    stop_s: float = 10.0
    cold_share: float = 0.5
    poi_count: int = 3
    placement_count: int = 2
    shelf_kinds: tuple[str, ...] = ("fixture",)
    browse_kinds: tuple[str, ...] = ("aisle", "fixture", "seating")
    min_visits: int = 20
    busy_share: float = 1.25
    weak_share: float = 0.5
    sales_channels: tuple[str, ...] = ("in_store",)

    def __post_init__(self) -> None:
        if not self.stop_s >= 0:
            raise ValueError(f"stop_s must be a number of seconds >= 0, got {self.stop_s!r}")
        if not 0 < self.cold_share <= 1:
            raise ValueError(f"cold_share must lie in (0, 1], got {self.cold_share!r}")
        if self.poi_count < 1 or self.placement_count < 1 or self.min_visits < 1:
            raise ValueError("poi_count, placement_count and min_visits must be at least 1")
        if not self.busy_share > 1:
            raise ValueError(f"busy_share must be above 1, got {self.busy_share!r}")
        if not 0 < self.weak_share < 1:
            raise ValueError(f"weak_share must lie in (0, 1), got {self.weak_share!r}")
