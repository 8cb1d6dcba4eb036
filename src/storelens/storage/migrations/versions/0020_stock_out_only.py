"""store_stock keeps only items out of stock: rows marked available are deleted

No row already meant "available", and ``PUT /v1/stores/{id}/stock`` now deletes the row
of an item marked back in stock instead of keeping it with ``in_stock = true``. A
security review's analyst key had sent a million made-up ids; rows like those that say
"available" are dropped here. Rows that say "out of stock" are kept whatever their
number (each is a claim someone made): a store over ``STORELENS_RECOMMEND_STOCK_MAX_OUT``
can mark items back in stock, and only a write that adds items out is refused. A
downgrade has nothing to restore (the deleted rows said what no row says).

Revision ID: 0020_stock_out_only
Revises: 0019_face_approval
Create Date: 2026-12-07 18:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020_stock_out_only"
down_revision: str | None = "0019_face_approval"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    stock = sa.table("store_stock", sa.column("in_stock", sa.Boolean()))
    op.execute(sa.delete(stock).where(stock.c.in_stock.is_(True)))


def downgrade() -> None:
    """Nothing to restore: a deleted row said "available", as no row does."""
