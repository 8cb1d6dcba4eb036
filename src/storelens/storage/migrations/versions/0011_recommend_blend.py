"""recommendations: each consenting customer's top items scored by the learned blend

Revision ID: 0011_recommend_blend
Revises: 0010_recommend
Create Date: 2026-12-04 16:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storelens.storage.tables

revision: str = "0011_recommend_blend"
down_revision: str | None = "0010_recommend"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "recommend_blend",
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=64), nullable=False),
        sa.Column("scored_at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("customer_id", "product_id", name=op.f("pk_recommend_blend")),
    )


def downgrade() -> None:
    op.drop_table("recommend_blend")
