"""events: who handed each event in (the key, user, MQTT device or operator)

Revision ID: 0013_event_sender
Revises: 0012_audit_subjects
Create Date: 2026-12-05 12:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_event_sender"
down_revision: str | None = "0012_audit_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable and without a default: events stored before keep null ("not recorded"),
    # and adding the column rewrites no row on either backend.
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_by", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("sent_by")
