"""The bound on event times that every ingest validates against.

One event stamped 2099 once dragged the ops projection decades ahead inside one write
transaction and left its watermark there; a device clock can also simply be wrong.
Events outside ``[earliest, now + max_future]`` are refused one by one, never their
batch. ``now`` is taken once per batch by the caller, from a clock it can inject.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic_core import PydanticCustomError

__all__ = ["EARLIEST_EVENT_TIME", "MAX_FUTURE_SKEW", "WINDOW_KEY", "EventTimeWindow"]

EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW = timedelta(minutes=5)
WINDOW_KEY = "event_time_window"
"""Where :class:`EventTimeWindow` sits in a pydantic validation context."""


@dataclass(frozen=True, slots=True)
class EventTimeWindow:
    """The event times an ingest accepts: from ``earliest`` to ``now + max_future``.

    ``now`` is taken once per batch by the caller (a clock it can inject), not read
    inside the validator, so a test or a replay decides what "now" is.
    """

    now: datetime
    max_future: timedelta = MAX_FUTURE_SKEW
    earliest: datetime = EARLIEST_EVENT_TIME

    @property
    def latest(self) -> datetime:
        return self.now + self.max_future

    def context(self) -> dict[str, Any]:
        """The pydantic validation context that applies this window."""
        return {WINDOW_KEY: self}

    def check(self, ts: datetime) -> None:
        if ts < self.earliest:
            raise PydanticCustomError(
                "event_time_too_early",
                "event time {ts} is before the earliest accepted time {earliest}",
                {"ts": ts.isoformat(), "earliest": self.earliest.isoformat()},
            )
        if ts > self.latest:
            raise PydanticCustomError(
                "event_time_in_future",
                "event time {ts} is more than {skew_s} s ahead of the server clock ({now})",
                {
                    "ts": ts.isoformat(),
                    "skew_s": int(self.max_future.total_seconds()),
                    "now": self.now.isoformat(),
                },
            )
