"""Recommendations (storelens.recommend): stock, declines, learned lists, impressions.

An item a store marks out of stock (``store_stock``) is never suggested there, nor a
declined item (``recommend_declines``) to that customer again. ``recommend_blend``
holds each consenting customer's top items from the learned blend, replaced by every
``recommend train``; ``recommend_impressions`` logs the lists shown, a row per
answer. Declines, blend rows and impressions carry the customer id and are erased
with the customer.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table

from storelens.storage.tables.schema import Document, Id, Seq, UTCDateTime, metadata, utc_now

__all__ = ["recommend_blend", "recommend_declines", "recommend_impressions", "store_stock"]

store_stock = Table(
    "store_stock",
    metadata,
    Column("store_id", Id, primary_key=True),
    Column("product_id", Id, primary_key=True),
    Column("in_stock", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False, default=utc_now, onupdate=utc_now),
)

recommend_declines = Table(
    "recommend_declines",
    metadata,
    Column("customer_id", Id, primary_key=True),
    Column("product_id", Id, primary_key=True),
    Column("at", UTCDateTime, nullable=False, default=utc_now),
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
    Column("personalized", Boolean, nullable=False),
    Column("actor", String(128), nullable=False),
    # The list as shown, best first: [{"product_id", "rank", "confidence"}, ...]. One
    # row per answer, not per item: at k=10 a row per item made the log's writes a
    # quarter of a warm answer's cost, and ten times the rows to keep and erase.
    Column("shown", Document, nullable=False),
    Index(None, "customer_id", "ts"),
    Index(None, "ts"),  # the retention purge; rows come within a second of time order: its end
)
