"""An analytics withdrawal removes the person's scores at once, not at the next run.

A security review found the segment page and the profile serving a person's lifetime
value and segment after they withdrew analytics consent, until someone re-scored; the
server's re-scoring is off by default, so there was no end to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select

from storelens.core.events import event_adapter
from storelens.processors import default_projections, run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import customer_scores, customers, segment_members, segments

Login = Callable[[str], dict[str, str]]


def _consent(log: EventLog, subject: str, granted: bool, ts: str) -> None:
    log.append([event_adapter.validate_python({
        "id": str(uuid.uuid4()), "type": "consent.changed", "ts": ts, "source": "app",
        "subject": subject, "payload": {"purpose": "analytics", "granted": granted}})])  # fmt: skip


def _segment(engine: Engine, as_of: datetime) -> None:
    """The run's one segment, ``rfm:champions``."""
    with engine.begin() as conn:
        conn.execute(insert(segments), {"id": "rfm:champions", "kind": "rfm",
                     "name": "champions", "description": "d", "customers": 2,
                     "revenue_share": 1.0, "as_of": as_of, "model_version": "v1"})  # fmt: skip


def _score(engine: Engine, customer: str, as_of: datetime) -> None:
    """A run's score and champions membership for ``customer``."""
    with engine.begin() as conn:
        conn.execute(insert(segment_members), {"segment_id": "rfm:champions",
                                               "customer_id": customer})  # fmt: skip
        conn.execute(insert(customer_scores), {
            "customer_id": customer, "as_of": as_of, "model_version": "v1", "clv": 812.5,
            "churn_risk": 0.1, "p_alive": 0.9, "expected_purchases": 4.0, "rfm": "555",
            "rfm_segment": "champions", "cluster": None})  # fmt: skip


def _scored(engine: Engine, customer: str, as_of: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(insert(customers), {"source_system": "crm", "source_record_id": customer,
                                         "customer_id": customer})  # fmt: skip
    _score(engine, customer, as_of)


def _kept(engine: Engine) -> tuple[int, int]:
    """Scores and segment memberships left."""
    with engine.connect() as conn:
        scores = select(func.count()).select_from(customer_scores)
        members = select(func.count()).select_from(segment_members)
        return conn.execute(scores).scalar_one(), conn.execute(members).scalar_one()


ADA = {"source_record_id": "1", "first_name": "Ada", "last_name": "Lovelace",
       "email": "ada@example.org"}  # fmt: skip


def _records(log: EventLog, source: str, *rows: dict[str, str]) -> None:
    """Source records in, and projected (as an import does)."""
    from storelens.cdp.records import ImportIds, customer_events
    from storelens.ingest.batch import ingest_items

    assert ingest_items(log, customer_events(source, list(rows), ImportIds("k"))).accepted
    run_projections(log, default_projections())


def test_a_withdrawal_removes_scores_of_runs_before_it(
    client: TestClient, login: Login, engine: Engine
) -> None:
    analyst, log = login("analyst"), EventLog(engine)
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    _segment(engine, as_of)
    _consent(log, "ada", True, "2026-10-01T00:00:00+00:00")
    _consent(log, "grace", True, "2026-10-01T00:00:00+00:00")
    # Grace withdrew in October, consented again, and was scored after that: a replay
    # of her old withdrawal must leave the later run's scores alone.
    _consent(log, "grace", False, "2026-10-15T00:00:00+00:00")
    _consent(log, "grace", True, "2026-10-20T00:00:00+00:00")
    _scored(engine, "ada", as_of)
    _scored(engine, "grace", as_of)
    _consent(log, "ada", False, "2026-11-20T00:00:00+00:00")
    run_projections(log, default_projections())

    page = client.get("/v1/segments/rfm:champions/members", headers=analyst)
    assert page.status_code == 200, page.text
    assert [m["customer_id"] for m in page.json()["data"]] == ["grace"]
    ada = client.get("/v1/customers/ada", headers=analyst).json()
    assert ada["predictions"] is None
    assert client.get("/v1/customers/grace", headers=analyst).json()["predictions"] is not None
    with engine.connect() as conn:
        left = select(func.count()).where(customer_scores.c.customer_id == "ada")
        assert conn.execute(left).scalar_one() == 0
    # The segment's size says what its member list shows (it said 2 until a new run).
    listed = client.get("/v1/segments", headers=analyst).json()["data"]
    assert [(s["id"], s["customers"]) for s in listed] == [("rfm:champions", 1)]


def test_a_withdrawal_delivered_after_the_run_still_removes_its_scores(
    client: TestClient, login: Login, engine: Engine
) -> None:
    """A till that was offline sends a withdrawal dated before the run's as-of: only
    scores of runs before the event's time went, so these stayed (a review)."""
    log = EventLog(engine)
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    _segment(engine, as_of)
    _consent(log, "ada", True, "2026-10-01T00:00:00+00:00")
    _scored(engine, "ada", as_of)
    _consent(log, "ada", False, "2026-11-01T00:00:00+00:00")  # delivered after the run
    run_projections(log, default_projections())
    with engine.connect() as conn:
        left = select(func.count()).where(customer_scores.c.customer_id == "ada")
        assert conn.execute(left).scalar_one() == 0


@pytest.mark.parametrize("withdrawn_after_grant", [True, False])
def test_a_merge_with_an_id_that_withdrew_removes_the_scores(
    engine: Engine, withdrawn_after_grant: bool
) -> None:
    """A withdrawal under a web account was the person's only once resolution linked
    the account to the scored card; the card's scores stayed until the next run (a
    security review). The merge itself now removes them, unless the card's grant is
    the later decision."""
    from storelens.cdp.resolution import resolve
    from storelens.privacy.subject import current_ids

    log = EventLog(engine)
    web = {"source_record_id": "2", "first_name": "Ada", "last_name": "Lovelace",
           "phone": "+4930901820"}  # fmt: skip
    _records(log, "crm", ADA)
    _records(log, "webshop", web)
    resolve(engine, "full")  # two people: nothing links them yet
    with engine.connect() as conn:
        owner = current_ids(conn, {"crm:1", "webshop:2"})
    card = owner["crm:1"]
    assert card != owner["webshop:2"]
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    _segment(engine, as_of)
    _score(engine, card, as_of)
    _consent(log, card, True, "2026-10-01T00:00:00+00:00")
    withdrawn = "2026-10-20" if withdrawn_after_grant else "2026-09-01"
    _consent(log, "webshop:2", False, f"{withdrawn}T00:00:00+00:00")
    run_projections(log, default_projections())
    assert _kept(engine) == (1, 1)  # the withdrawal was not the card's: nothing linked them
    _records(log, "webshop", {**web, "email": "ADA@example.org"})
    resolve(engine, "full")
    with engine.connect() as conn:
        owner = current_ids(conn, {"crm:1", "webshop:2"})
    assert owner["crm:1"] == owner["webshop:2"]  # linked
    assert _kept(engine) == ((0, 0) if withdrawn_after_grant else (1, 1))


def test_a_new_record_joining_a_scored_card_brings_its_withdrawal(engine: Engine) -> None:
    """A web account never resolved before joins the scored card: resolution records no
    merge for that, so the card's scores stayed (a review of the first fix)."""
    from storelens.cdp.resolution import resolve

    log = EventLog(engine)
    _records(log, "crm", ADA)
    resolve(engine, "full")
    with engine.connect() as conn:
        card = conn.execute(select(customers.c.customer_id)).scalar_one()
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    _segment(engine, as_of)
    _score(engine, card, as_of)
    _consent(log, card, True, "2026-10-01T00:00:00+00:00")
    _consent(log, "webshop:2", False, "2026-10-20T00:00:00+00:00")  # not linked yet
    web = {"source_record_id": "2", "first_name": "Ada", "last_name": "Lovelace",
           "email": "ADA@example.org"}  # fmt: skip
    _records(log, "webshop", web)
    assert _kept(engine) == (1, 1)
    resolve(engine, "full")
    with engine.connect() as conn:
        linked = conn.execute(select(customers.c.customer_id).distinct()).scalars().all()
    assert linked == [card]  # the web record joined the card, the card kept its id
    assert _kept(engine) == (0, 0)


def test_a_grant_at_the_withdrawals_instant_that_came_later_keeps_the_scores(
    client: TestClient, login: Login, engine: Engine
) -> None:
    """Scoring takes the later arrival of two decisions at one instant; the withdrawal
    projection wanted a strictly later grant and deleted scores the next run would give
    back. Both now order decisions the same way."""
    from storelens.predict.store import consenting_customers

    log = EventLog(engine)
    as_of = datetime(2026, 11, 3, tzinfo=UTC)
    _segment(engine, as_of)
    _scored(engine, "ada", as_of)
    _consent(log, "ada", False, "2026-10-01T00:00:00+00:00")
    _consent(log, "ada", True, "2026-10-01T00:00:00+00:00")  # the same instant, after it
    run_projections(log, default_projections())
    with engine.connect() as conn:
        assert "ada" in consenting_customers(conn)  # what the next run would score
    assert _kept(engine) == (1, 1)
