"""segments.revenue_share may be NULL: a segment's figures withdrawn after a member left

When someone leaves a segment between scoring runs (an analytics withdrawal, an
erasure, or a run that finds them gone before it writes), a segment left with few
members no longer shows the run's figures: in a segment of one or two, the revenue
share and the medians in the description were that person's own (a security review
saw an erased customer's order count and spend in a segment description). The share
is then NULL until the next run describes the segment again. A downgrade puts 0 in
the NULLs.

Revision ID: 0017_segment_figures_withdrawn
Revises: 0016_users_notify
Create Date: 2026-12-06 17:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017_segment_figures_withdrawn"
down_revision: str | None = "0016_users_notify"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("segments") as batch:
        batch.alter_column("revenue_share", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE segments SET revenue_share = 0 WHERE revenue_share IS NULL")
    with op.batch_alter_table("segments") as batch:
        batch.alter_column("revenue_share", existing_type=sa.Float(), nullable=False)
