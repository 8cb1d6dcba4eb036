"""Migrations build exactly the schema in storage/tables/, on SQLite and PostgreSQL, both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.tables import metadata


def _check_round_trip(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert migrate.pending_changes(engine) == []
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    migrate.downgrade(engine)
    assert migrate.current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) & set(metadata.tables) == set()
    migrate.upgrade(engine)
    assert migrate.pending_changes(engine) == []
    engine.dispose()


def test_sqlite_round_trip(tmp_path: Path) -> None:
    _check_round_trip(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_round_trip(pg_scratch_url: str) -> None:
    _check_round_trip(pg_scratch_url)


def test_sqlite_is_in_wal_mode(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
