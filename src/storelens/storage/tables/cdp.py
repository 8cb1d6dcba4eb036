"""Customer 360 (storelens.cdp): source records, orders, who is who, and consent.

Personal data starts here. ``customers`` holds one row per source record, joined
into people by identity resolution (storelens.cdp.resolution), whose runs, model,
merges and splits, analyst decisions and retired ids are kept beside it so a merge can
be explained and undone. ``orders``/``order_lines`` and ``consent_records`` are
projections of the event log, rebuilt from it like any other.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)

from storelens.storage.tables.schema import Document, Id, Seq, UTCDateTime, metadata, utc_now

__all__ = [
    "consent_records",
    "customer_aliases",
    "customers",
    "identity_changes",
    "identity_decisions",
    "identity_models",
    "identity_runs",
    "order_lines",
    "orders",
]

customers = Table(
    "customers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source_system", String(64), nullable=False),
    Column("source_record_id", Id, nullable=False),
    Column("customer_id", Id),  # resolved person; set by identity resolution
    Column("first_name", String(200)),
    Column("last_name", String(200)),
    Column("email", String(320)),
    Column("phone", String(40)),
    Column("address", String(400)),
    Column("postcode", String(20)),
    Column("city", String(120)),
    Column("country", String(2)),
    Column("dob", Date),
    Column("loyalty_id", Id),
    # How the customer asked to be greeted by staff ("Ada", "Dr Lovelace"); staff use it
    # instead of guessing from the legal name (storelens.staff claimer view).
    Column("greeting_name", String(100)),
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now, onupdate=utc_now),
    # Identity resolution: when this record got its customer id (None: provisional) and
    # the strongest link holding it in that customer (None: a customer of one record).
    Column("resolved_at", UTCDateTime),
    Column("match_probability", Float),
    UniqueConstraint("source_system", "source_record_id"),
    Index(None, "customer_id"),
    Index(None, "loyalty_id"),
    Index(None, "email"),
)

orders = Table(
    "orders",
    metadata,
    Column("store_id", Id, primary_key=True),
    Column("order_id", Id, primary_key=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("register", Id),
    Column("channel", String(16), nullable=False),
    Column("customer_id", Id),
    Column("total", Float, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("event_id", Uuid, nullable=False),
    Index(None, "customer_id"),
    Index(None, "store_id", "ts"),
)

order_lines = Table(
    "order_lines",
    metadata,
    Column("store_id", Id, primary_key=True),
    Column("order_id", Id, primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("product_id", Id, nullable=False),
    Column("qty", Integer, nullable=False),
    Column("unit_price", Float, nullable=False),
    ForeignKeyConstraint(
        ["store_id", "order_id"], ["orders.store_id", "orders.order_id"], ondelete="CASCADE"
    ),
    Index(None, "product_id"),  # co-purchase: the orders that hold a product
)

# -- identity resolution (storelens.cdp.resolution) -------------------------------------

identity_runs = Table(
    "identity_runs",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("mode", String(16), nullable=False),  # full | incremental
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("records", Integer, nullable=False),
    Column("new_records", Integer, nullable=False),
    Column("pairs", Integer, nullable=False),
    Column("customers", Integer, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("info", Document, nullable=False, default=dict),
)

identity_models = Table(
    "identity_models",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("trained_at", UTCDateTime, nullable=False),
    Column("records", Integer, nullable=False),
    Column("settings", Document, nullable=False),  # the trained Splink model as JSON
)

identity_changes = Table(
    "identity_changes",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("run_id", Integer),  # None for an analyst's unmerge
    # new | merge | split | merge_suggested | unmerge | chain_cut
    Column("kind", String(24), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("others", Document, nullable=False, default=list),
    Column("records", Document, nullable=False, default=list),
    Column("evidence", Document, nullable=False, default=list),
    Column("actor", String(128)),
    Column("at", UTCDateTime, nullable=False, default=utc_now),
    Index(None, "customer_id"),
)

identity_decisions = Table(
    "identity_decisions",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("record_a", Id, nullable=False),  # source:record keys, a < b
    Column("record_b", Id, nullable=False),
    Column("kind", String(16), nullable=False),  # separate
    Column("actor", String(128), nullable=False),
    Column("reason", String(400)),
    Column("at", UTCDateTime, nullable=False, default=utc_now),
    UniqueConstraint("record_a", "record_b"),
)

customer_aliases = Table(
    "customer_aliases",
    metadata,
    Column("alias", Id, primary_key=True),  # a retired customer id
    Column("customer_id", Id, nullable=False),
    Column("at", UTCDateTime, nullable=False, default=utc_now),
)

consent_records = Table(
    "consent_records",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", Id, nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("granted", Boolean, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("policy_version", String(40)),
    Column("ts", UTCDateTime, nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Index(None, "subject", "purpose", "ts"),
)
