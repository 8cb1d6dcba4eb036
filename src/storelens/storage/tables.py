"""Table definitions (SQLAlchemy Core). API schemas live in ``storelens.api.schemas``.

The event log is the source of truth; every other table here is either reference
data (stores, layouts, products, staff, users) or a projection of the log that can
be rebuilt from it (orders, consent records). Personal data sits in ``customers``
and ``consent_records`` only, so erasure and access requests have two places to look.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Dialect,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = [
    "alerts",
    "api_keys",
    "audit_log",
    "cameras",
    "consent_records",
    "consumer_offsets",
    "customer_aliases",
    "customer_features",
    "customer_scores",
    "customers",
    "dead_letters",
    "events",
    "face_consents",
    "face_embeddings",
    "identity_changes",
    "identity_decisions",
    "identity_models",
    "identity_runs",
    "metadata",
    "notices",
    "ops_orders",
    "ops_queue_waits",
    "ops_shifts",
    "ops_visits",
    "ops_zone_visits",
    "order_lines",
    "orders",
    "predict_models",
    "processor_state",
    "products",
    "recommend_blend",
    "recommend_declines",
    "recommend_impressions",
    "segment_members",
    "segments",
    "staff",
    "store_alert_rules",
    "store_layouts",
    "store_recognition",
    "store_stock",
    "stores",
    "users",
    "zones",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC on every backend and always read back tz-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; storelens stores tz-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Document = JSON().with_variant(JSONB(), "postgresql")
Seq = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only auto-increments INTEGER keys
Id = String(128)


def _now() -> datetime:
    return datetime.now(UTC)


naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming)

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
    Index(None, "store_id", "type", "ts"),
    Index(None, "ts"),
    Index(None, "subject"),
)

consumer_offsets = Table(
    "consumer_offsets",
    metadata,
    Column("consumer", String(128), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=_now),
)

stores = Table(
    "stores",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("timezone", String(64), nullable=False, server_default="UTC"),
    Column("kind", String(32), nullable=False, server_default="other"),
    Column("created_at", UTCDateTime, nullable=False, default=_now),
)

store_layouts = Table(
    "store_layouts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", Document, nullable=False),
    Column("created_at", UTCDateTime, nullable=False, default=_now),
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
    Column("created_at", UTCDateTime, nullable=False, default=_now),
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
    Column("created_at", UTCDateTime, nullable=False, default=_now),
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
    Column("updated_at", UTCDateTime, nullable=False, default=_now, onupdate=_now),
)

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
    Column("created_at", UTCDateTime, nullable=False, default=_now),
    Column("updated_at", UTCDateTime, nullable=False, default=_now, onupdate=_now),
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
    Column("at", UTCDateTime, nullable=False, default=_now),
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
    Column("at", UTCDateTime, nullable=False, default=_now),
    UniqueConstraint("record_a", "record_b"),
)

customer_aliases = Table(
    "customer_aliases",
    metadata,
    Column("alias", Id, primary_key=True),  # a retired customer id
    Column("customer_id", Id, nullable=False),
    Column("at", UTCDateTime, nullable=False, default=_now),
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

# -- in-store operations: facts closed by the ops processor (storelens.instore) --------

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

processor_state = Table(
    "processor_state",
    metadata,
    Column("processor", String(128), primary_key=True),
    Column("state", Document, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=_now),
)

store_alert_rules = Table(
    "store_alert_rules",
    metadata,
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("rules", Document, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=_now),
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
    Column("created_at", UTCDateTime, nullable=False, default=_now),
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

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("received_at", UTCDateTime, nullable=False, default=_now),
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
    Column("ts", UTCDateTime, nullable=False, default=_now),
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
)

# -- returning-customer recognition (storelens.recognition): biometric data, opt-in only --

face_consents = Table(
    "face_consents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("customer_id", Id, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("text_version", String(40), nullable=False),  # the consent text the person read
    Column("store_ids", Document),  # stores it covers; NULL: every store of the chain
    Column("granted_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(128), nullable=False),  # the staff member or admin
    Column("withdrawn_at", UTCDateTime),
    Column("withdrawn_by", String(128)),
    Index(None, "customer_id"),
)

face_embeddings = Table(
    "face_embeddings",
    metadata,
    Column("id", Uuid, primary_key=True),  # also the AES-GCM associated data
    Column("consent_id", ForeignKey("face_consents.id", ondelete="CASCADE"), nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("key_id", String(16), nullable=False),  # which key encrypted it
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary, nullable=False),  # 128 float32 + the GCM tag
    Column("created_at", UTCDateTime, nullable=False, default=_now),
    Index(None, "customer_id"),
    Index(None, "consent_id"),
)

store_recognition = Table(
    "store_recognition",
    metadata,
    Column("store_id", ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True),
    Column("enabled", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=_now),
    Column("updated_by", String(128)),
)

# -- predictive analytics (storelens.predict.store) -------------------------------------
# Features, scores and segment membership are personal data (they carry the customer
# id): registered with privacy/registry.py, written only for customers with analytics
# consent, and replaced as a whole on every scoring run.

predict_models = Table(
    "predict_models",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),  # one scoring run: its as-of and a hash
    Column("kind", String(32), nullable=False),  # clv | churn | clusters | rfm
    Column("trained_at", UTCDateTime, nullable=False, default=_now),
    Column("data_from", UTCDateTime),
    Column("data_to", UTCDateTime, nullable=False),  # the as-of: nothing at or after it
    Column("params", Document, nullable=False),
    Column("metrics", Document, nullable=False),
    UniqueConstraint("version", "kind"),
)

customer_features = Table(
    "customer_features",
    metadata,
    Column("customer_id", Id, primary_key=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("features", Document, nullable=False),
)

customer_scores = Table(
    "customer_scores",
    metadata,
    Column("customer_id", Id, primary_key=True),
    Column("as_of", UTCDateTime, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("expected_purchases", Float),  # over the churn window; None when no fit
    Column("p_alive", Float),
    Column("churn_risk", Float),
    Column("clv", Float),
    Column("rfm", String(3), nullable=False),
    Column("rfm_segment", String(32), nullable=False),
    Column("cluster", String(32)),
)

segments = Table(
    "segments",
    metadata,
    Column("id", String(64), primary_key=True),  # rfm:champions, cluster:cluster-1
    Column("kind", String(16), nullable=False),  # rfm | cluster
    Column("name", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("customers", Integer, nullable=False),
    Column("revenue_share", Float, nullable=False),
    Column("revenue_trend_pct", Float),
    Column("as_of", UTCDateTime, nullable=False),
    Column("model_version", String(64), nullable=False),
)

segment_members = Table(
    "segment_members",
    metadata,
    Column("segment_id", String(64), primary_key=True),
    Column("customer_id", Id, primary_key=True),
    Index(None, "customer_id"),
)

# -- recommendations (storelens.recommend) ----------------------------------------------

store_stock = Table(
    "store_stock",
    metadata,
    Column("store_id", Id, primary_key=True),
    Column("product_id", Id, primary_key=True),
    Column("in_stock", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=_now, onupdate=_now),
)

recommend_declines = Table(
    "recommend_declines",
    metadata,
    Column("customer_id", Id, primary_key=True),
    Column("product_id", Id, primary_key=True),
    Column("at", UTCDateTime, nullable=False, default=_now),
)

recommend_blend = Table(
    "recommend_blend",
    metadata,
    Column("customer_id", Id, primary_key=True),
    Column("product_id", Id, primary_key=True),
    Column("score", Float, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("scored_at", UTCDateTime, nullable=False),
)

recommend_impressions = Table(
    "recommend_impressions",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("ts", UTCDateTime, nullable=False),
    Column("customer_id", Id, nullable=False),
    Column("store_id", Id, nullable=False),
    Column("product_id", Id, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("confidence", Float, nullable=False),
    Column("personalized", Boolean, nullable=False),
    Column("actor", String(128), nullable=False),
    Index(None, "customer_id", "ts"),
)
