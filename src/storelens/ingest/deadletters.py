"""Messages no entry point could turn into events, kept so nothing is dropped unseen.

A device with buggy firmware must not stall ingestion, yet its messages are
evidence: they are stored as received (lossily decoded text), with the reason,
for an administrator to inspect and replay once the producer is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select

from storelens.storage.tables import dead_letters

__all__ = [
    "MAX_BODY_BYTES",
    "DeadLetter",
    "count_dead_letters",
    "list_dead_letters",
    "record_dead_letter",
]

MAX_BODY_BYTES = 64 * 1024
"""A flood of huge garbage messages must not fill the database; 64 KiB is plenty to debug."""

_ORIGIN_MAX = 512  # the column's width; MQTT topics may be far longer
_CHANNEL_MAX = 32


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_at: datetime
    channel: str
    origin: str | None
    reason: str
    body: str


def _storable(text: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing the row would turn one bad message
    # into a batch that can never be committed.
    return text.replace("\x00", "\\u0000")


def _capped(body: bytes | str) -> str:
    raw = body if isinstance(body, bytes) else body.encode("utf-8", errors="surrogatepass")
    if len(raw) <= MAX_BODY_BYTES:
        return _storable(raw.decode("utf-8", errors="replace"))
    note = f"\n[truncated: {len(raw)} bytes received, first {MAX_BODY_BYTES} kept]"
    keep = MAX_BODY_BYTES - len(note.encode())
    return _storable(raw[:keep].decode("utf-8", errors="ignore")) + note


def record_dead_letter(
    conn: Connection, channel: str, origin: str | None, reason: str, body: bytes | str
) -> None:
    """Store one unusable message inside the caller's transaction, so that it is
    dead-lettered together with (or not at all without) the rest of its batch."""
    conn.execute(
        dead_letters.insert(),
        {
            "received_at": datetime.now(UTC),
            "channel": channel[:_CHANNEL_MAX],
            "origin": None if origin is None else _storable(origin)[:_ORIGIN_MAX],
            "reason": _storable(reason),
            "body": _capped(body),
        },
    )


def list_dead_letters(
    engine: Engine, limit: int = 100, offset: int = 0, channel: str | None = None
) -> list[DeadLetter]:
    """Newest first: the latest failures are the ones someone is looking into."""
    stmt = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit).offset(offset)
    if channel is not None:
        stmt = stmt.where(dead_letters.c.channel == channel)
    with engine.connect() as conn:
        return [DeadLetter(**dict(r._mapping)) for r in conn.execute(stmt)]


def count_dead_letters(engine: Engine, channel: str | None = None) -> int:
    stmt = select(func.count()).select_from(dead_letters)
    if channel is not None:
        stmt = stmt.where(dead_letters.c.channel == channel)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())
