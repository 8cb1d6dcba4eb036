"""returning-customer recognition: biometric consents, encrypted face embeddings, store switch

Revision ID: 0008_recognition
Revises: 0007_notices
Create Date: 2026-12-04 09:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import storelens.storage.tables

revision: str = "0008_recognition"
down_revision: str | None = "0007_notices"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = storelens.storage.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "face_consents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("text_version", sa.String(length=40), nullable=False),
        sa.Column(
            "store_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("granted_at", UTC_TIME, nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("withdrawn_at", UTC_TIME, nullable=True),
        sa.Column("withdrawn_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_consents")),
    )
    op.create_index(
        op.f("ix_face_consents_customer_id"), "face_consents", ["customer_id"], unique=False
    )
    op.create_table(
        "face_embeddings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("consent_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["consent_id"],
            ["face_consents.id"],
            name=op.f("fk_face_embeddings_consent_id_face_consents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_embeddings")),
    )
    op.create_index(
        op.f("ix_face_embeddings_customer_id"), "face_embeddings", ["customer_id"], unique=False
    )
    op.create_index(
        op.f("ix_face_embeddings_consent_id"), "face_embeddings", ["consent_id"], unique=False
    )
    op.create_table(
        "store_recognition",
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", UTC_TIME, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_store_recognition_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("store_id", name=op.f("pk_store_recognition")),
    )


def downgrade() -> None:
    op.drop_table("store_recognition")
    op.drop_index(op.f("ix_face_embeddings_consent_id"), table_name="face_embeddings")
    op.drop_index(op.f("ix_face_embeddings_customer_id"), table_name="face_embeddings")
    op.drop_table("face_embeddings")
    op.drop_index(op.f("ix_face_consents_customer_id"), table_name="face_consents")
    op.drop_table("face_consents")
