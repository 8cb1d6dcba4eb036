"""0019 adds the approval of face enrollments: which consents in force it approves.

A consent counts as approved by its recorder when it was granted only where both
sources say an admin recorded it: the recorder is an active admin now, and the audit
log's ``faces.enroll`` for that customer by that user carries the admin role. Every
other one waits for an admin, because any of them may be the self-made enrollment the
approval closes: staff's, an API key's, one by a user promoted since (their audit entry
says staff), by a disabled admin, by a name a new admin reused (no admin entry), or one
whose customer has an admin entry for another enrollment only (the entry must name this
consent). A withdrawn consent is history and stays unapproved.
"""

from __future__ import annotations

import json
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
    ("C-eli", "pro", None),  # pro enrolled as staff, is an admin now
    ("C-fay", "gone", None),  # gone is a disabled admin
    ("C-gus", "reused", None),  # the name's first owner enrolled; an admin took it later
    ("C-hal", "boss", None),  # boss's admin entry for C-hal names another enrollment
]
OTHER_ENROLLMENT = {"C-hal"}
#       user,   role now,  active, the role their faces.enroll entries carry
USERS = [
    ("boss", "admin", True, "admin"),
    ("ana", "staff", True, "staff"),
    ("pro", "admin", True, "staff"),
    ("gone", "admin", False, "admin"),
    ("reused", "admin", True, None),
]


def _check(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine, "0018_impressions_by_time")
    ts = "CAST(:t AS TIMESTAMPTZ)" if engine.dialect.name == "postgresql" else ":t"
    with engine.begin() as conn:
        for customer, by, withdrawn in CONSENTS:  # ids 1, 2, … in this order
            conn.execute(
                text(
                    "INSERT INTO face_consents (customer_id, purpose, text_version, granted_at,"
                    f" recorded_by, withdrawn_at) VALUES (:c, 'p', 'v1', {ts},"
                    f" :by, {ts.replace(':t', ':w')})"
                ),
                {"c": customer, "by": by, "t": GRANTED, "w": withdrawn},
            )
        detail = "CAST(:d AS JSONB)" if engine.dialect.name == "postgresql" else ":d"
        for name, role, active, enrolled_as in USERS:
            conn.execute(
                text(
                    "INSERT INTO users (username, password_hash, role, active, created_at,"
                    f" token_version) VALUES (:n, 'x', :r, :a, {ts}, 0)"
                ),
                {"n": name, "r": role, "a": active, "t": GRANTED},
            )
            for consent_id, (customer, by, _) in enumerate(CONSENTS, start=1):
                if by == name and enrolled_as is not None:
                    named = consent_id + 100 if customer in OTHER_ENROLLMENT else consent_id
                    conn.execute(
                        text(
                            "INSERT INTO audit_log (ts, actor, actor_kind, role, action,"
                            f" resource, resource_id, detail) VALUES ({ts}, :n, 'user', :r,"
                            f" 'faces.enroll', 'customer', :c, {detail})"
                        ),
                        {
                            "n": name,
                            "r": enrolled_as,
                            "c": customer,
                            "t": GRANTED,
                            "d": json.dumps({"photos": 1, "consent_id": named}),
                        },
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
        ("C-eli", None, None),
        ("C-fay", None, None),
        ("C-gus", None, None),
        ("C-hal", None, None),
    ]
    migrate.downgrade(engine, "0018_impressions_by_time")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM face_consents")).scalar_one() == 8
    engine.dispose()


def test_sqlite_approves_only_admins_consents_in_force(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_approves_only_admins_consents_in_force(pg_scratch_url: str) -> None:
    _check(f"{pg_scratch_url}")
