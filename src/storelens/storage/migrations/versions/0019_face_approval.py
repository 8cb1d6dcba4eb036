"""face_consents.approved_at / approved_by: a staff enrollment waits for an admin

A staff member could enroll their own face under a customer's id (the consent box is
theirs to tick), walk past the entrance camera, claim the notice and read that
customer's visits and purchases. An enrollment now matches no one until an admin
approves it; an admin's own is approved as it is recorded (admins read every profile
anyway, so recognition gives them nothing new).

Consents already in force count as approved by their recorder, at the time they were
granted, only where both say an admin recorded them: the recorder is an active admin
now, and the audit log's ``faces.enroll`` entry for that very enrollment (its
``consent_id``) by that user carries the admin role (reviews: a user promoted since, a
name reused by a new admin, a disabled admin, or an admin-era entry for an earlier
enrollment of the same customer would otherwise pass). Every other one waits for an admin
(``storelens faces pending`` lists them, ``storelens faces approve ID`` approves),
because any of them may be the enrollment this closes. Stop every server process
before migrating: one still running the earlier code matches unapproved enrollments.
A downgrade drops the columns.

Revision ID: 0019_face_approval
Revises: 0018_impressions_by_time
Create Date: 2026-12-07 07:30:00.000000
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

import storelens.storage.tables

revision: str = "0019_face_approval"
down_revision: str | None = "0018_impressions_by_time"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_TIME = storelens.storage.tables.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("face_consents") as batch:
        batch.add_column(sa.Column("approved_at", UTC_TIME, nullable=True))
        batch.add_column(sa.Column("approved_by", sa.String(length=128), nullable=True))
    conn = op.get_bind()
    candidates = conn.execute(
        sa.text(
            "SELECT c.id, c.customer_id, c.recorded_by FROM face_consents c"
            " WHERE c.withdrawn_at IS NULL"
            " AND c.recorded_by IN (SELECT username FROM users WHERE role = 'admin' AND active)"
        )
    ).all()
    for consent_id, customer_id, recorded_by in candidates:
        details = conn.execute(
            sa.text(
                "SELECT detail FROM audit_log WHERE action = 'faces.enroll' AND role = 'admin'"
                " AND actor = :by AND resource_id = :customer"
            ),
            {"by": recorded_by, "customer": customer_id},
        ).scalars()
        if any(_consent_of(d) == consent_id for d in details):
            conn.execute(
                sa.text(
                    "UPDATE face_consents SET approved_at = granted_at,"
                    " approved_by = recorded_by WHERE id = :id"
                ),
                {"id": consent_id},
            )


def _consent_of(detail: Any) -> int | None:
    """The ``consent_id`` an enroll entry names (JSON text on SQLite, a dict on PostgreSQL)."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return None
    value = detail.get("consent_id") if isinstance(detail, dict) else None
    return value if isinstance(value, int) else None


def downgrade() -> None:
    with op.batch_alter_table("face_consents") as batch:
        batch.drop_column("approved_by")
        batch.drop_column("approved_at")
