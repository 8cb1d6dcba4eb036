"""users, api_keys: triggers that NOTIFY ``storelens_users_changed`` on every change (PostgreSQL)

The API remembers verified bearer tokens (and a socket's API key standing) while the
users and api_keys tables stay unchanged. On
SQLite ``PRAGMA data_version`` tells it so, per request, for free; PostgreSQL has
nothing as cheap, so every request read the user row (about 1 ms of a warm
recommendation answer's 1.2 ms). With these triggers every statement that changes
either table (the CLI, the API, an operator's raw ``UPDATE``) notifies each API
worker's listener (:mod:`storelens.api.users_news`). SQLite gets nothing.

Revision ID: 0016_users_notify
Revises: 0015_impression_lists
Create Date: 2026-12-06 14:45:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_users_notify"
down_revision: str | None = "0015_impression_lists"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "storelens_users_changed"
TABLES = ("users", "api_keys")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {FUNCTION}() RETURNS trigger AS $$
        BEGIN
            PERFORM pg_notify('{FUNCTION}', '');
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
        )
        # ALWAYS: in replica-role sessions too (logical replication, pg_restore), whose
        # writes would otherwise go unheard; the listener trusts nothing else.
        op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_changed")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_changed ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
