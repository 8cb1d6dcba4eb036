"""In-store operations: the facts the ops processor closes, alerts, and staff notices.

The ``ops_*`` tables are facts the ops processor (storelens.instore) closes from the
event log: an order handed off, a zone or store visit ended, a queue wait, a shift.
Alert rules are a store's settings; ``alerts`` records each raise and clear at its
event time. A notice tells staff that a member arrived; the first to claim it serves
them (storelens.staff.notices).
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, String, Table, Text

from storelens.storage.tables.schema import Document, Id, Seq, UTCDateTime, metadata, utc_now

__all__ = [
    "alerts",
    "notices",
    "ops_orders",
    "ops_queue_waits",
    "ops_shifts",
    "ops_visits",
    "ops_zone_visits",
    "store_alert_rules",
]

ops_orders = Table(
    "ops_orders",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("store_id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("register_id", Id),
    Column("paid_at", UTCDateTime),
    Column("started_at", UTCDateTime),
    Column("ready_at", UTCDateTime),
    Column("handed_off_at", UTCDateTime),
    Column("barista", Id),
    Column("drinks", Integer, nullable=False),
    Column("items", Integer, nullable=False),
    Index(None, "store_id", "paid_at"),
)

ops_zone_visits = Table(
    "ops_zone_visits",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("store_id", Id, nullable=False),
    Column("track_id", Id, nullable=False),
    Column("zone_id", String(64), nullable=False),
    Column("enter", UTCDateTime, nullable=False),
    Column("exit", UTCDateTime, nullable=False),
    Column("is_staff", Boolean, nullable=False),
    Index(None, "store_id", "enter"),
)

ops_visits = Table(
    "ops_visits",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("store_id", Id, nullable=False),
    Column("track_id", Id, nullable=False),
    Column("enter", UTCDateTime, nullable=False),
    Column("exit", UTCDateTime, nullable=False),
    Column("zones", Integer, nullable=False),
    Column("closed_by", String(16), nullable=False),
    Index(None, "store_id", "enter"),
)

ops_queue_waits = Table(
    "ops_queue_waits",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("store_id", Id, nullable=False),
    Column("track_id", Id, nullable=False),
    Column("queue_enter", UTCDateTime, nullable=False),
    Column("counter_enter", UTCDateTime, nullable=False),
    Index(None, "store_id", "queue_enter"),
)

ops_shifts = Table(
    "ops_shifts",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("store_id", Id, nullable=False),
    Column("staff_id", Id, nullable=False),
    Column("start", UTCDateTime, nullable=False),
    Column("end", UTCDateTime, nullable=False),
    Index(None, "store_id", "start"),
)

store_alert_rules = Table(
    "store_alert_rules",
    metadata,
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("rules", Document, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now),
    Column("updated_by", String(128)),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("store_id", Id, nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # raised | cleared
    Column("at", UTCDateTime, nullable=False),  # event time of the change
    Column("severity", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("value", Float, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    Index(None, "store_id", "at"),
)

# -- staff notices: a member arrived, first staff member to claim serves them --------

notices = Table(
    "notices",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("trigger", String(16), nullable=False),  # recognition | loyalty_scan | app_checkin
    # open -> claimed -> closed (outcome recorded); claimed -> open (released);
    # open -> expired (nobody claimed it in time)
    Column("state", String(16), nullable=False),
    Column("raised_at", UTCDateTime, nullable=False),
    Column("raised_by", String(128), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(128)),
    Column("claimed_at", UTCDateTime),
    Column("releases", Integer, nullable=False, default=0, server_default="0"),
    Column("outcome", String(16)),  # served | purchase | declined
    Column("closed_at", UTCDateTime),
    Index(None, "store_id", "state"),
    Index(None, "customer_id"),
)
