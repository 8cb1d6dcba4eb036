"""Who may be scored or written for in bulk: the latest decision per person, by event time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, insert

from storelens.privacy.consent import granted_subjects, has_consent
from storelens.storage.tables import consent_records, customer_aliases, customers

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _decide(engine: Engine, subject: str, purpose: str, granted: bool, minutes: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(consent_records),
            {"subject": subject, "purpose": purpose, "granted": granted, "channel": "app",
             "ts": T0 + timedelta(minutes=minutes), "event_id": uuid.uuid4()},
        )  # fmt: skip


def test_the_latest_decision_by_event_time_counts_per_purpose(engine: Engine) -> None:
    _decide(engine, "C-granted", "personalization", True, 0)
    _decide(engine, "C-withdrew", "personalization", True, 0)
    _decide(engine, "C-withdrew", "personalization", False, 5)
    # arrives after the withdrawal but happened before it: the withdrawal still stands
    _decide(engine, "C-late", "personalization", False, 10)
    _decide(engine, "C-late", "personalization", True, 1)
    _decide(engine, "C-other", "analytics", True, 0)
    with engine.connect() as conn:
        got = granted_subjects(conn, "personalization")
        assert got == {"C-granted"}
        assert granted_subjects(conn, "analytics") == {"C-other"}
        # the batch form agrees with the one-person form
        for subject in ("C-granted", "C-withdrew", "C-late", "C-other", "C-unknown"):
            assert (subject in got) == has_consent(conn, subject, "personalization")


def test_an_unknown_purpose_is_refused(engine: Engine) -> None:
    with engine.connect() as conn, pytest.raises(ValueError, match="unknown consent purpose"):
        granted_subjects(conn, "personalisation")


def test_a_decision_is_the_persons_under_any_of_their_ids(engine: Engine) -> None:
    """A grant under a merged web account does not outlive a withdrawal under the card,
    and a grant under the card reaches the web id and the current id."""
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            [
                {"source_system": "pos", "source_record_id": "c-1", "customer_id": "P-1",
                 "loyalty_id": "L-1"},
                {"source_system": "webshop", "source_record_id": "w-9", "customer_id": "P-1",
                 "loyalty_id": None},
                {"source_system": "webshop", "source_record_id": "w-5", "customer_id": "P-2",
                 "loyalty_id": None},
            ],
        )  # fmt: skip
        conn.execute(insert(customer_aliases), {"alias": "P-old", "customer_id": "P-2"})
    _decide(engine, "webshop:w-9", "analytics", True, 0)
    _decide(engine, "L-1", "analytics", False, 5)  # the card: same person, later
    _decide(engine, "P-old", "analytics", True, 3)  # a retired id of P-2
    _decide(engine, "C-alone", "analytics", True, 0)  # nobody the tables know
    with engine.connect() as conn:
        got = granted_subjects(conn, "analytics")
    assert got == {"P-2", "P-old", "C-alone"}
    _decide(engine, "webshop:w-9", "analytics", True, 9)  # granted again, on the web
    with engine.connect() as conn:
        assert granted_subjects(conn, "analytics") == {
            "P-1", "webshop:w-9", "L-1", "P-2", "P-old", "C-alone"
        }  # fmt: skip
