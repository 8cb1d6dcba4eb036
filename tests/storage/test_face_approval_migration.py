"""0019 adds the approval of face enrollments: which consents in force it approves.

A consent recorded by a user who is an admin counts as approved by them when it was
granted (an admin's enrollment is approved as recorded from now on); every other one,
staff's or an API key's, waits for an admin, because any of them may be the self-made
enrollment the approval closes. A withdrawn consent is history and stays unapproved.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from storelens.storage import migrate
from storelens.storage.db import create_engine

GRANTED = "2026-11-02 10:15:00.000000"
#          customer, recorded by,  withdrawn
CONSENTS = [
    ("C-ann", "boss", None),
    ("C-bob", "ana", None),
    ("C-cy", "boss", "2026-11-03 09:00:00.000000"),
    ("C-dee", "till-key", None),
]


def _check(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine, "0018_impressions_by_time")
    ts = "CAST(:t AS TIMESTAMPTZ)" if engine.dialect.name == "postgresql" else ":t"
    with engine.begin() as conn:
        for name, role in (("boss", "admin"), ("ana", "staff")):
            conn.execute(
                text(
                    "INSERT INTO users (username, password_hash, role, active, created_at,"
                    f" token_version) VALUES (:n, 'x', :r, true, {ts}, 0)"
                ),
                {"n": name, "r": role, "t": GRANTED},
            )
        for customer, by, withdrawn in CONSENTS:
            conn.execute(
                text(
                    "INSERT INTO face_consents (customer_id, purpose, text_version, granted_at,"
                    f" recorded_by, withdrawn_at) VALUES (:c, 'p', 'v1', {ts},"
                    f" :by, {ts.replace(':t', ':w')})"
                ),
                {"c": customer, "by": by, "t": GRANTED, "w": withdrawn},
            )
    migrate.upgrade(engine)
    assert migrate.pending_changes(engine) == []
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT customer_id, approved_by, approved_at = granted_at FROM face_consents"
                " ORDER BY customer_id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("C-ann", "boss", True),
        ("C-bob", None, None),
        ("C-cy", None, None),
        ("C-dee", None, None),
    ]
    migrate.downgrade(engine, "0018_impressions_by_time")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM face_consents")).scalar_one() == 4
    engine.dispose()


def test_sqlite_approves_only_admins_consents_in_force(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_approves_only_admins_consents_in_force(pg_scratch_url: str) -> None:
    _check(f"{pg_scratch_url}")
