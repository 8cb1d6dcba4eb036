"""Everything that differs between SQLite and PostgreSQL, in one place.

Callers ask the dialect for an ``INSERT … ON CONFLICT`` construct or for the
append lock instead of testing the backend name themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["Dialect", "PostgresDialect", "SQLiteDialect", "dialect_for"]

APPEND_LOCK_KEY = 0x5_70E1  # arbitrary, constant: "storelens event log appends"


class Dialect:
    name = "generic"

    def insert(self, table: Table) -> Any:
        raise NotImplementedError

    def lock_appends(self, conn: Connection) -> None:
        """Serialise appends so log positions become visible in order (see EventLog)."""

    def insert_ignore(self, table: Table, keys: Sequence[str]) -> Any:
        return self.insert(table).on_conflict_do_nothing(index_elements=list(keys))

    def upsert(
        self,
        table: Table,
        keys: Sequence[str],
        update: Sequence[str],
        *,
        unless_newer: str | None = None,
    ) -> Any:
        """Insert or update ``update`` columns; ``unless_newer`` keeps a row whose value in
        that column is later than the incoming one (late, out-of-order events lose)."""
        stmt = self.insert(table)
        where = None
        if unless_newer is not None:
            where = table.c[unless_newer] <= stmt.excluded[unless_newer]
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update}, where=where
        )


class SQLiteDialect(Dialect):
    """SQLite has one writer at a time, so appends are ordered already."""

    name = "sqlite"

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)


class PostgresDialect(Dialect):
    name = "postgresql"

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    def lock_appends(self, conn: Connection) -> None:
        # Two concurrent transactions can commit sequence numbers out of order; a
        # reader that already moved past the higher one would never see the lower.
        # A transaction-scoped advisory lock makes append order equal commit order.
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": APPEND_LOCK_KEY})


def dialect_for(engine: Engine | Connection) -> Dialect:
    name = engine.dialect.name
    if name == "sqlite":
        return SQLiteDialect()
    if name == "postgresql":
        return PostgresDialect()
    raise ValueError(f"no storelens dialect for {name!r}")
