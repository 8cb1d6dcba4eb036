"""Reference data: the stores and their plans, the catalogue, and who may act.

None of this is a projection of the event log: it is written directly, and the other
tables refer to it by id. People sign in as ``users``; ``staff`` are the people on the
floor, linked to a user when they have one; ``api_keys`` are the devices.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from storelens.storage.tables.schema import Document, Id, UTCDateTime, metadata, utc_now

__all__ = ["api_keys", "cameras", "products", "staff", "store_layouts", "stores", "users", "zones"]

stores = Table(
    "stores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("kind", String(32), nullable=False, server_default="other"),
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
)

store_layouts = Table(
    "store_layouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Document, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    Column("created_by", String(128)),
    UniqueConstraint("store_id", "version"),
)

zones = Table(
    "zones",
    metadata,
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("zone_id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("polygon", Document, nullable=False),
)

cameras = Table(
    "cameras",
    metadata,
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("camera_id", String(64), primary_key=True),
    Column("name", String(200)),
    Column("source", Text, nullable=False),
    Column("fps", Float, nullable=False),
    Column("calibration", Document, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(128), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    Column("last_login_at", UTCDateTime),
    # Bumped on password reset, disable and role change: tokens carrying an older
    # version are refused, so those changes end every session at once.
    Column("token_version", Integer, nullable=False, default=0, server_default="0"),
)

staff = Table(
    "staff",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("store_id", ForeignKey("stores.id", ondelete="SET NULL")),
    Column("name", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("user_id", ForeignKey("users.id", ondelete="SET NULL")),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE")),
    Column("created_at", UTCDateTime, nullable=False, default=utc_now),
    Column("created_by", String(128)),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
    # The event types the key may send (a JSON list); NULL on keys made before scopes
    # existed, read as the store-level operational types.
    Column("event_types", Document),
)

products = Table(
    "products",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(100), nullable=False),
    Column("brand", String(100)),
    Column("price", Float, nullable=False),
    Column("attributes", Document, nullable=False, default=dict),
    Column("zone_id", String(64)),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now, onupdate=utc_now),
)
