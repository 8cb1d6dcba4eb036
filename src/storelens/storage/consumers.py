"""How far each event-log consumer is behind the head, for /health and /metrics.

A projection that fails keeps its cursor where the failure happened while events
keep arriving, so the number that tells an operator something is wrong is its lag:
how many events wait for it, and how long the oldest of them has been waiting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from storelens.storage.tables import consumer_offsets, events

__all__ = ["LAG_COUNT_CAP", "ConsumerLag", "consumer_lag"]

# Counting stops here so a health poll stays cheap while a new projection replays a
# long log; beyond it the lag is reported as this many events ("at least").
LAG_COUNT_CAP = 1_000_000


@dataclass(frozen=True, slots=True)
class ConsumerLag:
    consumer: str
    position: int  # the last log position it committed (0: nothing yet)
    events: int  # events stored after that position (capped at LAG_COUNT_CAP)
    seconds: float  # how long the oldest of those has waited (0 when caught up)


def consumer_lag(conn: Connection, consumers: Sequence[str], now: datetime) -> list[ConsumerLag]:
    """The lag of each named consumer at ``now`` (the caller's clock, injectable)."""
    positions = dict(
        conn.execute(
            select(consumer_offsets.c.consumer, consumer_offsets.c.position).where(
                consumer_offsets.c.consumer.in_(list(consumers))
            )
        ).all()
    )
    out = []
    for name in consumers:
        position = int(positions.get(name) or 0)
        waiting = (
            select(events.c.seq).where(events.c.seq > position).limit(LAG_COUNT_CAP).subquery()
        )
        count = int(conn.execute(select(func.count()).select_from(waiting)).scalar() or 0)
        seconds = 0.0
        if count:
            oldest = conn.execute(
                select(events.c.received_at)
                .where(events.c.seq > position)
                .order_by(events.c.seq)
                .limit(1)
            ).scalar()
            if oldest is not None:
                seconds = max(0.0, (now - oldest).total_seconds())
        out.append(ConsumerLag(name, position, count, seconds))
    return out
