"""Bulk reads of personal data name whom they read, on SQLite and PostgreSQL.

An attacker review found that ``GET /v1/events`` and segment-member reads audited only
counts: Ada's access request could not show that an analyst had pulled her events or
her segment page, and an investigator could not tell whose data was read. Each bulk
read now names its customers in ``audit_subjects`` (by current customer id); her
export lists the reads that named her and no others, and her erasure leaves the
reads in the trail under the pseudonym.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, func, insert, select

from storelens.cdp.resolution import resolve
from storelens.privacy import audit
from storelens.privacy.audit import Actor
from storelens.privacy.spine import event_customers
from storelens.privacy.subject import resolve_subject
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import audit_log, audit_subjects, segment_members, segments
from storelens.stores import create_store
from storelens.web.customers import members_view

Login = Callable[[str], dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]

STORE = "cafe-01"
ADA = [
    ("crm", {"source_record_id": "c-1", "first_name": "Ada", "last_name": "Lovelace",
             "email": "ada@example.com", "loyalty_id": "L-1"}),
    ("webshop", {"source_record_id": "w-9", "first_name": "Ada", "last_name": "Lovelace",
                 "email": "ada@example.com"}),
]  # fmt: skip
GRACE = ("crm", {"source_record_id": "c-2", "first_name": "Grace", "last_name": "Hopper",
                 "email": "grace@example.com", "loyalty_id": "L-2"})  # fmt: skip
AS_OF = datetime(2026, 11, 3, tzinfo=UTC)


def _order(raw_event: RawEvent, customer: str, order_id: str) -> dict[str, Any]:
    return raw_event(subject=customer, payload={
        "order_id": order_id, "customer_id": customer, "register_id": "reg-1",
        "lines": [{"product_id": "latte", "qty": 1, "unit_price": 3.0}]})  # fmt: skip


def _segment(conn: Any, segment_id: str, members: list[str]) -> None:
    conn.execute(
        insert(segments),
        {"id": segment_id, "kind": "rfm", "name": segment_id, "description": "test",
         "customers": len(members), "revenue_share": 0.5, "as_of": AS_OF,
         "model_version": "v1"},
    )  # fmt: skip
    conn.execute(
        insert(segment_members), [{"segment_id": segment_id, "customer_id": m} for m in members]
    )


@pytest.fixture
def world(
    client: TestClient,
    engine: Engine,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
) -> dict[str, str]:
    """Ada (two records, one person after resolution) and Grace, an order each (Grace
    also a web visit), and two segments: Ada and Grace in one, Grace alone in the other.
    Returns their current customer ids."""
    admin = login("admin")
    with engine.begin() as conn:
        create_store(conn, STORE, "Café")
    for source, row in [*ADA, GRACE]:
        r = client.post(f"/v1/customers/import?source={source}", json=[row], headers=admin)
        assert r.json()["accepted"] == 1, r.text
    sent = [
        _order(raw_event, "L-1", "o-1"),
        _order(raw_event, "L-2", "o-2"),
        raw_event("web.event", subject="L-2", store_id=None,
                  payload={"session_id": "s-2", "action": "page_view", "page": "/"}),
    ]  # fmt: skip
    assert client.post("/v1/events", headers=device_key(), json=sent).json()["accepted"] == 3
    run_projections(EventLog(engine))
    resolve(engine, "full")  # Ada's web-shop record joins her CRM record
    with engine.begin() as conn:
        ada, grace = (resolve_subject(conn, i) for i in ("webshop:w-9", "L-2"))
        assert ada is not None and grace is not None
        assert "L-1" in ada.ids and "webshop:w-9" in ada.ids  # one person
        _segment(conn, "rfm:champions", [ada.customer_id, grace.customer_id])
        _segment(conn, "rfm:lost", [grace.customer_id])
    return {"ada": ada.customer_id, "grace": grace.customer_id}


def _last_read(engine: Engine, action: str) -> int:
    with engine.connect() as conn:
        found = conn.execute(
            select(func.max(audit_log.c.id)).where(audit_log.c.action == action)
        ).scalar_one()
    assert found is not None, f"no {action} row"
    return int(found)


def _exported_reads(client: TestClient, admin: dict[str, str], customer: str) -> set[int]:
    r = client.get(f"/v1/customers/{customer}/export", headers=admin)
    assert r.status_code == 200, r.text
    return {a["id"] for a in r.json()["stores"]["audit"]}


def _read(
    route: str, client: TestClient, engine: Engine, headers: dict[str, str], whom: str
) -> int:
    """One bulk read through ``route`` that returns Ada and Grace (``whom="both"``) or
    Grace alone; the id of the audit row it wrote."""
    both = whom == "both"
    if route == "events":  # a page by type names every customer on it; by subject, one
        r = client.get(
            "/v1/events",
            params={"type": "pos.order_paid"} if both else {"subject": "L-2"},
            headers=headers,
        )
        action = "events.read"
    elif route == "customers":
        r = client.get("/v1/customers", params={} if both else {"q": "grace"}, headers=headers)
        action = "customer.list"
    elif route == "segment":
        segment = "rfm:champions" if both else "rfm:lost"
        r = client.get(f"/v1/segments/{segment}/members", headers=headers)
        action = "segment.members.read"
    elif route == "dashboard":  # the Customers page's member list, as the web layer calls it
        segment = "rfm:champions" if both else "rfm:lost"
        view = members_view(engine, STORE, segment, Actor("analyst", "user", "analyst"),
                            page=1, limit=50)  # fmt: skip
        assert len(view.members) == (2 if both else 1)
        return _last_read(engine, "segment.members.read")
    else:
        assert route == "personalize"
        wanted = ["L-1", "L-2"] if both else ["L-2"]
        r = client.post(
            "/v1/personalize",
            json={"requests": [{"customer_id": c, "store": STORE} for c in wanted]},
            headers=headers,
        )
        action = "recommendations.batch"
    assert r.status_code == 200, r.text
    return _last_read(engine, action)


ROUTES = ["events", "customers", "segment", "dashboard", "personalize"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_bulk_read_is_in_the_access_export_of_everyone_it_returned(
    route: str, client: TestClient, engine: Engine, login: Login, world: dict[str, str]
) -> None:
    analyst, admin = login("analyst"), login("admin")
    of_both = _read(route, client, engine, analyst, "both")
    of_grace = _read(route, client, engine, analyst, "grace")

    ada_reads = _exported_reads(client, admin, "L-1")
    assert of_both in ada_reads  # the old row said only how many were read
    assert of_grace not in ada_reads  # a read of somebody else is not hers
    by_record = _exported_reads(client, admin, "webshop:w-9")  # any of her ids finds it
    assert of_both in by_record and of_grace not in by_record
    assert {of_both, of_grace} <= _exported_reads(client, admin, "L-2")

    with engine.connect() as conn:
        named = conn.execute(
            select(audit_subjects.c.audit_id, audit_subjects.c.customer_id).where(
                audit_subjects.c.audit_id.in_([of_both, of_grace])
            )
        ).all()
        detail = conn.execute(select(audit_log.c.detail).where(audit_log.c.id == of_both))
        counted = detail.scalar_one()["customers"]
    # by current customer id, once per person, however the data spelled them
    assert sorted(named) == sorted(
        [(of_both, world["ada"]), (of_both, world["grace"]), (of_grace, world["grace"])]
    )
    assert counted == 2


def test_an_investigator_can_list_whom_a_read_returned(
    client: TestClient, engine: Engine, login: Login, world: dict[str, str]
) -> None:
    read = _read("segment", client, engine, login("analyst"), "both")
    admin = login("admin")
    r = client.get(f"/v1/audit/{read}/customers", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {"data": sorted([world["ada"], world["grace"]]), "count": 2}
    page = client.get(f"/v1/audit/{read}/customers?limit=1&offset=1", headers=admin).json()
    assert page == {"data": [max(world["ada"], world["grace"])], "count": 2}
    assert client.get("/v1/audit/999999/customers", headers=admin).status_code == 404
    # that answer names customers, so it is audited as a read of them: the first
    # (both) is in Ada's export, the second (Grace's page) is not
    with engine.connect() as conn:
        first, second = conn.execute(
            select(audit_log.c.id)
            .where(audit_log.c.action == "audit.customers.read")
            .order_by(audit_log.c.id)
        ).scalars()
    ada_reads = _exported_reads(client, admin, "L-1")
    assert first in ada_reads and second not in ada_reads


def test_erasure_keeps_the_reads_but_names_only_the_pseudonym(
    client: TestClient, engine: Engine, login: Login, world: dict[str, str]
) -> None:
    analyst, admin = login("analyst"), login("admin")
    reads = {route: _read(route, client, engine, analyst, "both") for route in ROUTES}
    with engine.connect() as conn:
        ada = resolve_subject(conn, "L-1")
    assert ada is not None

    erased = client.request(
        "DELETE", "/v1/customers/L-1", headers=admin, json={"reason": "request 7"}
    )
    assert erased.status_code == 200, erased.text
    result = erased.json()
    assert result["scan"]["traces"] == 0, result["scan"]["found"]
    pseudonym = result["pseudonym"]

    with engine.connect() as conn:
        left = conn.execute(select(audit_subjects.c.audit_id, audit_subjects.c.customer_id)).all()
        kept = set(conn.execute(select(audit_log.c.id)).scalars())
    assert not {c for _, c in left} & set(ada.ids)  # no plain id of hers is left
    assert set(reads.values()) <= kept  # the reads themselves stay answerable
    for read in reads.values():
        assert {c for a, c in left if a == read} == {pseudonym, world["grace"]}
    assert set(reads.values()) <= _exported_reads(client, admin, "L-2")  # Grace's untouched


def test_named_customers_are_current_ids_once_each(
    client: TestClient, engine: Engine, world: dict[str, str]
) -> None:
    with engine.begin() as conn:
        named = audit.named_customers(
            conn, ["webshop:w-9", "L-1", "crm:c-1", "L-2", "erased-0123", "walk-in-7", ""]
        )
    # Ada's three spellings are one person; a pseudonym names nobody; an id without a
    # record (orders before any import) stands for itself
    assert named == sorted({world["ada"], world["grace"], "walk-in-7"})


def test_a_large_page_writes_one_row_and_a_bounded_row_per_customer(engine: Engine) -> None:
    """A page of 2,500 customers: the audit row holds a count, not a list, and each
    named customer is one short row (inserted in chunks)."""
    ids = [f"S{n:07d}" for n in range(2500)]
    with engine.begin() as conn:
        row_id = audit.record(
            conn, audit.SYSTEM, "segment.members.read", "segment", "rfm:big", {"members": 2500},
            customers=ids,
        )  # fmt: skip
    with engine.connect() as conn:
        detail = conn.execute(select(audit_log.c.detail).where(audit_log.c.id == row_id))
        named = conn.execute(
            select(audit_subjects.c.customer_id).where(audit_subjects.c.audit_id == row_id)
        ).scalars()
        assert detail.scalar_one() == {"members": 2500, "customers": 2500}
        assert sorted(named) == ids


def test_event_customers_reads_the_ids_an_event_carries() -> None:
    assert event_customers("L-1", "web.event", {"session_id": "s"}) == {"L-1"}
    assert event_customers(None, "pos.order_paid", {"customer_id": "L-2"}) == {"L-2"}
    upserted = {"source_system": "crm", "source_record_id": "c-1", "loyalty_id": "L-1"}
    assert event_customers("L-1", "customer.upserted", upserted) == {"crm:c-1"}
    assert event_customers("L-1", "customer.upserted", {"loyalty_id": "L-1"}) == set()
    assert event_customers(None, "vision.track", {"track_id": "t-1"}) == set()


def test_a_read_that_named_her_by_email_is_hers_to_export_and_erase(
    client: TestClient, engine: Engine, login: Login, world: dict[str, str]
) -> None:
    """Data can carry a person by e-mail where an id belongs (a till keyed by address, a
    personalize call made with one): the read is named under that e-mail. Matching the
    named ids against her ids alone missed it: her export left the read out, and her
    erasure kept her address in ``audit_subjects`` (the verification scan's one trace)."""
    analyst, admin = login("analyst"), login("admin")
    r = client.post(
        "/v1/personalize",
        json={"requests": [{"customer_id": "Ada@Example.com", "store": STORE}]},
        headers=analyst,
    )
    assert r.status_code == 200, r.text
    read = _last_read(engine, "recommendations.batch")
    assert read in _exported_reads(client, admin, "L-1")

    erased = client.request(
        "DELETE", "/v1/customers/L-1", headers=admin, json={"reason": "request 8"}
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["scan"]["traces"] == 0, erased.json()["scan"]["found"]
    with engine.connect() as conn:
        named = conn.execute(
            select(audit_subjects.c.customer_id).where(audit_subjects.c.audit_id == read)
        ).scalars()
        assert list(named) == [erased.json()["pseudonym"]]  # the read stays, hers


def test_naming_a_page_costs_a_few_queries_whatever_ids_it_carries(
    client: TestClient, engine: Engine, world: dict[str, str]
) -> None:
    """Event subjects are whatever a device sent: a page of 2,000 events whose subjects
    each look like a different ``source:record`` key made the audited read look each
    system up on its own, 2,000 queries for one ``GET /v1/events``."""
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    planted = [f"sys{n}:r" for n in range(2000)]
    event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.begin() as conn:
            named = audit.named_customers(conn, [*planted, "crm:c-1", "webshop:w-9", "L-2"])
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len(statements) <= 6, len(statements)
    assert named == sorted({*planted, world["ada"], world["grace"]})  # still resolved


def test_a_read_of_her_old_record_does_not_name_whoever_holds_her_old_card(
    client: TestClient, engine: Engine, login: Login
) -> None:
    """A read named a customer record by its loyalty id too, resolved when read: once
    Ada's lost card went to Bob, reading Ada's old record named Bob, and his access
    export listed a read of someone else's data. A record now names only its key,
    which always belongs to whoever holds the record (as written rows already do)."""
    admin = login("admin")
    ada = {"source_record_id": "c-1", "first_name": "Ada", "email": "ada@example.com"}
    for card in ("L-1", "L-9"):  # got a card, lost it and got a new one
        r = client.post("/v1/customers/import?source=crm", json=[{**ada, "loyalty_id": card}],
                        headers=admin)  # fmt: skip
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    bob = {"source_record_id": "c-2", "first_name": "Bob", "loyalty_id": "L-1"}
    r = client.post("/v1/customers/import?source=crm", json=[bob], headers=admin)
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    run_projections(EventLog(engine))
    resolve(engine, "full")

    page = client.get("/v1/events?type=customer.upserted&limit=2", headers=admin)
    assert page.status_code == 200, page.text
    assert [e["payload"]["loyalty_id"] for e in page.json()["data"]] == ["L-1", "L-9"]

    with engine.connect() as conn:
        [read] = conn.execute(select(audit_log.c.id).where(audit_log.c.action == "events.read"))
        named = list(
            conn.execute(
                select(audit_subjects.c.customer_id).where(audit_subjects.c.audit_id == read.id)
            ).scalars()
        )
        ada, bob = (resolve_subject(conn, key) for key in ("crm:c-1", "crm:c-2"))
    assert ada is not None and bob is not None and ada.customer_id != bob.customer_id
    assert named == [ada.customer_id]
    exported = client.get("/v1/customers/crm:c-2/export", headers=admin).json()
    assert read.id not in [a["id"] for a in exported["stores"]["audit"]]
