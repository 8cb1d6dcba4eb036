"""The event log, its readers' bookkeeping, and the two trails written beside it.

``events`` is the source of truth that every projection can be rebuilt from;
``consumer_offsets`` and ``processor_state`` are how far each reader got and what it
keeps in flight, committed in the same transaction as its writes. ``dead_letters``
keeps what could not enter the log, so a bad device message can be inspected rather
than lost, and ``audit_log`` what people and keys did. Both trails are written by
appending; only an erasure touches their rows (privacy/spine.py). ``audit_subjects``
names the customers a bulk read returned, one narrow row per customer, so an access
request finds every read of a person by index instead of searching ids in JSON.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, String, Table, Text, Uuid

from storelens.storage.tables.schema import Document, Id, Seq, UTCDateTime, metadata, utc_now

__all__ = [
    "audit_log",
    "audit_subjects",
    "consumer_offsets",
    "dead_letters",
    "events",
    "processor_state",
]

events = Table(
    "events",
    metadata,
    Column("seq", Seq, primary_key=True, autoincrement=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("ts", UTCDateTime, nullable=False),
    Column("store_id", Id),
    Column("source", Id, nullable=False),
    Column("subject", Id),
    Column("payload", Document, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    # Who handed the event in: ``key:{prefix}``, a user's name, ``mqtt:{store}/{source}``,
    # ``cli:{login}``. Set by the server, never by the sender; null for events stored
    # before it was recorded and for the demo's simulated history.
    Column("sent_by", String(128)),
    Index(None, "store_id", "type", "ts"),
    Index(None, "ts"),
    Index(None, "subject"),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("consumer", String(128), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now),
)

processor_state = Table(
    "processor_state",
    metadata,
    Column("processor", String(128), primary_key=True),
    Column("state", Document, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now),
)

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False, default=utc_now),
    Column("channel", String(32), nullable=False),  # mqtt, edge, http …
    Column("origin", String(512)),  # e.g. the MQTT topic
    Column("reason", Text, nullable=False),
    Column("body", Text, nullable=False),  # the message as received (decoded lossily)
    Index(None, "received_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime, nullable=False, default=utc_now),
    Column("actor", String(128), nullable=False),
    Column("actor_kind", String(16), nullable=False),
    Column("role", String(16)),
    Column("action", String(64), nullable=False),
    Column("resource", String(64), nullable=False),
    Column("resource_id", String(256)),
    Column("detail", Document),
    Column("ip", String(64)),
    Index(None, "resource", "resource_id"),
    Index(None, "ts"),
    # Every impression write asks for the newest erasure since its last one: without
    # this it scanned every audit row since (a review: 76 ms a write at 1M rows).
    Index(None, "action", "id"),
)

audit_subjects = Table(
    "audit_subjects",
    metadata,
    # Seq's own type: SQLite keys are INTEGER, PostgreSQL's BIGINT, as audit_log.id is.
    Column(
        "audit_id",
        Seq,
        ForeignKey("audit_log.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    # The current customer id when read (a ``source:record`` key, up to 193 characters,
    # while its record awaits the projection); the pseudonym once erased.
    Column("customer_id", String(256), primary_key=True),
    Index(None, "customer_id"),
)
