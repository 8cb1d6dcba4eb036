"""Predictive analytics (storelens.predict.store): scoring runs and what they produce.

Features, scores and segment membership are personal data (they carry the customer
id): registered with privacy/registry.py, written only for customers with analytics
consent, and replaced as a whole on every scoring run. ``predict_models`` says which
run, over which data, produced them.
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text, UniqueConstraint

from storelens.storage.tables.schema import Document, Id, Seq, UTCDateTime, metadata, utc_now

__all__ = ["customer_features", "customer_scores", "predict_models", "segment_members", "segments"]

predict_models = Table(
    "predict_models",
    metadata,
    Column("id", Seq, primary_key=True, autoincrement=True),
    Column("version", String(64), nullable=False),  # one scoring run: its as-of and a hash
    Column("kind", String(32), nullable=False),  # clv | churn | clusters | rfm
    Column("trained_at", UTCDateTime, nullable=False, default=utc_now),
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
    Column("revenue_share", Float),  # None: withdrawn after a member left (0017)
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
