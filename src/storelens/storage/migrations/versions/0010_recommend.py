"""recommendations: stock per store, declined items, logged impressions; order lines by product

Revision ID: 0010_recommend
Revises: 0009_predict
Create Date: 2026-12-04 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storelens.storage.tables

revision: str = "0010_recommend"
down_revision: str | None = "0009_predict"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "store_stock",
        sa.Column("store_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("in_stock", sa.Boolean(), nullable=False),
        sa.Column(
            "updated_at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("store_id", "product_id", name=op.f("pk_store_stock")),
    )
    op.create_table(
        "recommend_declines",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "product_id", name=op.f("pk_recommend_declines")),
    )
    op.create_table(
        "recommend_impressions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ts", storelens.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("store_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("personalized", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recommend_impressions")),
    )
    op.create_index(
        op.f("ix_recommend_impressions_customer_id_ts"),
        "recommend_impressions",
        ["customer_id", "ts"],
        unique=False,
    )
    op.create_index(op.f("ix_order_lines_product_id"), "order_lines", ["product_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_order_lines_product_id"), table_name="order_lines")
    op.drop_index(
        op.f("ix_recommend_impressions_customer_id_ts"), table_name="recommend_impressions"
    )
    op.drop_table("recommend_impressions")
    op.drop_table("recommend_declines")
    op.drop_table("store_stock")
