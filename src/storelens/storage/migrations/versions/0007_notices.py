"""staff notices (first to claim) and the customer's chosen greeting name

Revision ID: 0007_notices
Revises: 0006
Create Date: 2026-12-04 09:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storelens.storage.tables

revision: str = "0007_notices"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notices",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("raised_at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=False),
        sa.Column("raised_by", sa.String(length=128), nullable=False),
        sa.Column(
            "expires_at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("claimed_at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.Column("releases", sa.Integer(), server_default="0", nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("closed_at", storelens.storage.tables.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_notices_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notices")),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notices_customer_id"), ["customer_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_notices_store_id_state"), ["store_id", "state"], unique=False
        )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("greeting_name", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("greeting_name")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notices_store_id_state"))
        batch_op.drop_index(batch_op.f("ix_notices_customer_id"))
    op.drop_table("notices")
