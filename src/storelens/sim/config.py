"""What a simulated week looks like: demand, staffing, customers and sampling rates.

Every knob lives here with a default that produces a believable independent café, so a
test or benchmark can change one thing (a slower barista, a third register) and see
only that effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

__all__ = [
    "DEFAULT_BARISTAS",
    "WEEKDAY_PROFILE",
    "WEEKEND_PROFILE",
    "BaristaPlan",
    "SimConfig",
]

# Relative arrival intensity per half hour from opening (07:00): the morning rush
# 07:30-09:30, lunch 12:00-13:30 and a quiet afternoon; weekends start later and softer.
WEEKDAY_PROFILE: tuple[float, ...] = (
    *(4, 8, 10, 10, 8, 5),  # 07:00-10:00
    *(4, 3.5, 3.5, 4.5),  # 10:00-12:00
    *(7.5, 8, 7),  # 12:00-13:30
    *(4, 3, 2.5, 2.5, 3, 3, 3, 3, 2.5, 2, 1.5),  # 13:30-19:00
)
WEEKEND_PROFILE: tuple[float, ...] = (
    *(1.5, 3, 4.5, 6, 7, 7.5),  # 07:00-10:00
    *(7.5, 7, 6.5, 6),  # 10:00-12:00
    *(7, 7, 6),  # 12:00-13:30
    *(4.5, 4, 4, 4.5, 4.5, 4, 3.5, 3, 2.5, 2, 1.5),  # 13:30-19:00
)


@dataclass(frozen=True, slots=True)
class BaristaPlan:
    """One barista's day: a shift with one unpaid break that splits it in two clock-ins.

    ``speed`` multiplies drink make times, so 1.25 is a quarter slower than the base.
    """

    staff_id: str
    speed: float
    start: time
    end: time
    break_start: time
    break_minutes: int = 30

    def __post_init__(self) -> None:
        if not self.start < self.break_start < self.end:
            raise ValueError(f"{self.staff_id}: the break must fall inside the shift")
        if self.speed <= 0 or self.break_minutes <= 0:
            raise ValueError(f"{self.staff_id}: speed and break length must be positive")


DEFAULT_BARISTAS: tuple[BaristaPlan, ...] = (
    BaristaPlan("barista-ana", 1.0, time(6, 45), time(15, 15), time(11, 0)),
    BaristaPlan("barista-ben", 1.25, time(7, 15), time(15, 45), time(10, 0)),
    BaristaPlan("barista-chloe", 0.9, time(10, 45), time(19, 15), time(14, 30)),
)


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Defaults give about 450 visits on a weekday; see the module docstring."""

    start_date: date = date(2026, 11, 2)
    days: int = 7
    seed: int = 7
    opens: time = time(7, 0)
    closes: time = time(19, 0)
    weekday_profile: tuple[float, ...] = WEEKDAY_PROFILE
    weekend_profile: tuple[float, ...] = WEEKEND_PROFILE
    weekday_visits: float = 450.0
    weekend_visits: float = 400.0
    registers: int = 2
    mobile_share: float = 0.15
    seat_share: float = 0.45
    baristas: tuple[BaristaPlan, ...] = DEFAULT_BARISTAS
    table_rounds: int = 2
    """Table-clearing walks per barista shift segment (attempted; skipped when busy)."""
    population_size: int = 1500
    loyalty_share: float = 0.4
    scan_share: float = 0.9
    """Share of member visits where the loyalty card is scanned at the register."""
    consent_share: float = 0.3
    track_interval_s: float = 15.0
    attractive_fixture: str | None = None
    """Plant a known answer for store insights (retail layouts): a browse zone most shoppers
    visit (``attractive_share`` of them) whose products rarely sell (only ``attractive_keep``
    of the basket lines placed there are bought; the rest are put back)."""
    attractive_share: float = 0.8
    attractive_keep: float = 0.1
    cold_zone: str | None = None
    """Plant a zone few people visit: nobody browses it on the way, and only ``cold_keep``
    of the basket lines placed there are bought (the buyers are its only visitors)."""
    cold_keep: float = 0.5
    heatmap_every_s: float | None = None
    """Also send ``vision.heatmap`` grids of this period (900: every quarter hour), built
    from the sampled positions; off by default, as the event files stay smaller."""
    heatmap_cell_m: float = 0.25

    def __post_init__(self) -> None:
        slots = self.slots
        if slots <= 0:
            raise ValueError("closing time must be after opening time, on whole half hours")
        for name, profile in (("weekday", self.weekday_profile), ("weekend", self.weekend_profile)):
            if len(profile) != slots or min(profile) < 0 or sum(profile) <= 0:
                raise ValueError(
                    f"{name}_profile needs {slots} non-negative half-hour weights, "
                    f"one per half hour from {self.opens:%H:%M} to {self.closes:%H:%M}"
                )
        if self.days < 1 or self.registers < 1 or not self.baristas:
            raise ValueError("days, registers and baristas must be at least 1")
        shares = (
            self.mobile_share, self.seat_share, self.loyalty_share, self.scan_share,
            self.attractive_share, self.attractive_keep, self.cold_keep,
        )  # fmt: skip
        if not all(0 <= share <= 1 for share in (*shares, self.consent_share)):
            raise ValueError("shares must lie between 0 and 1")
        if self.track_interval_s <= 0:
            raise ValueError("track_interval_s must be positive")
        if self.heatmap_every_s is not None and not self.heatmap_every_s >= self.track_interval_s:
            raise ValueError("heatmap_every_s must be at least track_interval_s")
        if not self.heatmap_cell_m > 0:
            raise ValueError("heatmap_cell_m must be positive")
        if len({plan.staff_id for plan in self.baristas}) != len(self.baristas):
            raise ValueError("barista staff ids must be unique")
        if self.attractive_fixture is not None and self.attractive_fixture == self.cold_zone:
            raise ValueError("one zone cannot be planted both attractive and cold")

    @property
    def planted(self) -> dict[str, str]:
        """The planted zones by role, as written to ``truth.json``; empty when none."""
        roles = (("attractive_fixture", self.attractive_fixture), ("cold_zone", self.cold_zone))
        return {role: zone for role, zone in roles if zone is not None}

    @property
    def slots(self) -> int:
        """Half hours between opening and closing."""
        minutes = (self.closes.hour * 60 + self.closes.minute) - (
            self.opens.hour * 60 + self.opens.minute
        )
        return minutes // 30 if minutes % 30 == 0 else 0
