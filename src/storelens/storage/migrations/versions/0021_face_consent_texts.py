"""face_consent_texts: the consent texts members read, published by an admin

An enrollment used to record whatever version string the form carried, so nothing
showed which words the member had agreed to. Admins now publish each text once
(``storelens faces consent-text publish``), a published text never changes, and an
enrollment must name a published text that is not retired. Consents recorded before
this revision keep the versions they named and get no ``text_sha256``: storelens never
held their words, so an access request shows none for them, even if a text is later
published under the same version. Publish the text in use before enrolling again.
``face_consents.replaced_by_consent`` names the enrollment that ended one by replacing it, so
an access export no longer reads as if the member had withdrawn (a new user's review).
A downgrade drops the table and the columns.

Revision ID: 0021_face_consent_texts
Revises: 0020_stock_out_only
Create Date: 2026-12-08 02:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storelens.storage.tables

revision: str = "0021_face_consent_texts"
down_revision: str | None = "0020_stock_out_only"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = storelens.storage.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "face_consent_texts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("published_at", UTC_TIME, nullable=False),
        sa.Column("published_by", sa.String(length=128), nullable=False),
        sa.Column("retired_at", UTC_TIME, nullable=True),
        sa.Column("retired_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_consent_texts")),
        sa.UniqueConstraint("version", name=op.f("uq_face_consent_texts_version")),
    )
    with op.batch_alter_table("face_consents") as batch:
        batch.add_column(sa.Column("text_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("replaced_by_consent", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("face_consents") as batch:
        batch.drop_column("replaced_by_consent")
        batch.drop_column("text_sha256")
    op.drop_table("face_consent_texts")
