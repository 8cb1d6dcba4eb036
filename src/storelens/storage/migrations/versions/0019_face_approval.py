"""face_consents.approved_at / approved_by: a staff enrollment waits for an admin

A staff member could enroll their own face under a customer's id (the consent box is
theirs to tick), walk past the entrance camera, claim the notice and read that
customer's visits and purchases. An enrollment now matches no one until an admin
approves it; an admin's own is approved as it is recorded (admins read every profile
anyway, so recognition gives them nothing new).

Consents already in force count as approved by their recorder, at the time they were
granted, only where both say an admin recorded them: the recorder is an active admin
now, and the audit log's ``faces.enroll`` entry for that customer by that user carries
the admin role (a review: a user promoted since, a name reused by a new admin, or a
disabled admin would otherwise pass). Every other one waits for an admin
(``storelens faces pending`` lists them, ``storelens faces approve ID`` approves),
because any of them may be the enrollment this closes. Stop every server process
before migrating: one still running the earlier code matches unapproved enrollments.
A downgrade drops the columns.

Revision ID: 0019_face_approval
Revises: 0018_impressions_by_time
Create Date: 2026-12-07 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

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
    op.execute(
        "UPDATE face_consents SET approved_at = granted_at, approved_by = recorded_by"
        " WHERE withdrawn_at IS NULL"
        " AND recorded_by IN (SELECT username FROM users WHERE role = 'admin' AND active)"
        " AND EXISTS (SELECT 1 FROM audit_log a WHERE a.action = 'faces.enroll'"
        " AND a.actor = face_consents.recorded_by AND a.role = 'admin'"
        " AND a.resource_id = face_consents.customer_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("face_consents") as batch:
        batch.drop_column("approved_by")
        batch.drop_column("approved_at")
