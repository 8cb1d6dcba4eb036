"""Export and erasure of one customer through the API, on SQLite and PostgreSQL.

Ada has records in three sources (CRM, web shop, loyalty), an order, web events,
consent, a dead letter, audit rows and a server log line; Grace is another customer
who must come through untouched.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select

from storelens.api.app import create_app
from storelens.cdp.resolution import resolve
from storelens.config import Settings
from storelens.ingest.deadletters import record_dead_letter
from storelens.privacy.scan import scan_subject
from storelens.privacy.subject import resolve_subject
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import (
    audit_log,
    consent_records,
    consumer_offsets,
    customers,
    order_lines,
    orders,
)
from storelens.storage.tables import stores as store_table
from storelens.stores import create_store

Login = Callable[[str], dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]

ADA = {
    "crm": {"source_record_id": "c-1", "first_name": "Ada", "last_name": "Lovelace",
            "email": "ada@example.com", "loyalty_id": "L-1", "dob": "1990-12-10"},
    "webshop": {"source_record_id": "w-9", "first_name": "Ada", "last_name": "Lovelace",
                "email": "ADA@example.com", "phone": "+49 30 901820", "address": "Ringweg 9"},
    "loyalty": {"source_record_id": "k-3", "first_name": "Ada", "last_name": "Lovelace",
                "loyalty_id": "L-1", "phone": "030 901820", "country": "DE"},
}  # fmt: skip
GRACE = {"source_record_id": "c-2", "first_name": "Grace", "last_name": "Hopper",
         "email": "grace@example.com", "loyalty_id": "L-2"}  # fmt: skip


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    path = tmp_path / "server.log"
    path.write_text(
        "INFO started\n"
        "WARNING import row rejected: ada@example.com has no record id\n"
        "INFO grace@example.com signed up\n"
    )
    return path


@pytest.fixture
def app_client(settings: Settings, engine: Engine, server_log: Path) -> TestClient:
    configured = settings.model_copy(update={"privacy_log_paths": [str(server_log)]})
    return TestClient(create_app(configured, engine=engine, run_projections=False))


def _order(raw_event: RawEvent, customer: str, order_id: str, qty: int) -> dict[str, Any]:
    return raw_event(subject=customer, payload={
        "order_id": order_id, "customer_id": customer, "register_id": "reg-1",
        "lines": [{"product_id": "latte", "qty": qty, "unit_price": 3.0},
                  {"product_id": "cake", "qty": 1, "unit_price": 4.0}]})  # fmt: skip


def _seed(client: TestClient, engine: Engine, raw_event: RawEvent, admin: dict[str, str],
          device: dict[str, str]) -> None:  # fmt: skip
    for source, row in ADA.items():
        rows = [row, GRACE] if source == "crm" else [row]
        r = client.post(f"/v1/customers/import?source={source}", json=rows, headers=admin)
        assert r.json()["accepted"] == len(rows), r.text
    events = [
        _order(raw_event, "L-1", "o-1", 2),
        _order(raw_event, "L-2", "o-2", 1),
        raw_event("web.event", subject="L-1", store_id=None,
                  payload={"session_id": "s-1", "action": "search", "query": "oat milk"}),
        raw_event("web.event", subject="L-2", store_id=None,
                  payload={"session_id": "s-2", "action": "page_view", "page": "/"}),
        raw_event("web.event", subject=None, store_id=None,  # anonymous, but typed her e-mail
                  payload={"session_id": "s-3", "action": "search", "query": "ada@example.com"}),
        raw_event("consent.changed", subject="L-1", payload={"purpose": "marketing",
                                                               "granted": True}),
        raw_event("consent.changed", subject="L-2", payload={"purpose": "marketing",
                                                               "granted": True}),
    ]  # fmt: skip
    assert client.post("/v1/events", headers=device, json=events).json()["accepted"] == 7
    with engine.begin() as conn:
        record_dead_letter(conn, "mqtt", "storelens/x", "bad phone", '{"phone": "+4930901820"}')
        record_dead_letter(conn, "mqtt", "storelens/x", "bad id", '{"customer": "L-2"}')
    run_projections(EventLog(engine))
    resolve(engine, "full")  # links the three records by e-mail, loyalty id and phone


def _grace(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "records": conn.execute(
                select(customers.c.email).where(customers.c.last_name == "Hopper")
            ).all(),
            "orders": conn.execute(
                select(orders.c.order_id, orders.c.total).where(orders.c.customer_id == "L-2")
            ).all(),
            "consent": conn.execute(
                select(consent_records.c.purpose).where(consent_records.c.subject == "L-2")
            ).all(),
        }


def test_export_then_erase_leaves_no_trace(
    app_client: TestClient,
    engine: Engine,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
    server_log: Path,
) -> None:
    client = app_client
    admin = login("admin")
    _seed(client, engine, raw_event, admin, device_key())
    assert client.get("/v1/customers/L-1", headers=admin).status_code == 200  # audited read
    with engine.begin() as conn:
        if (
            conn.execute(select(store_table.c.id).where(store_table.c.id == "cafe-01")).first()
            is None
        ):
            create_store(conn, "cafe-01", "Café")
    notice = client.post(  # a staff notice about her arrival names her customer id
        "/v1/notices",
        json={"store_id": "cafe-01", "customer_id": "L-1", "trigger": "loyalty_scan"},
        headers=admin,
    )
    assert notice.status_code == 201, notice.text
    grace_before = _grace(engine)

    exported = client.get("/v1/customers/L-1/export", headers=admin)
    assert exported.status_code == 200, exported.text
    body = exported.json()
    stores = body["stores"]
    assert sorted(stores) == sorted([
        "audit", "consent", "dead_letters", "event_log", "faces", "identity_resolution",
        "log_files", "orders", "predictions", "profile", "recommend_blend", "recommend_candidates",
        "recommend_declines", "recommend_impressions", "source_records",
        "staff_notices"])  # fmt: skip
    assert [(n["store_id"], n["trigger"]) for n in stores["staff_notices"]] == [
        ("cafe-01", "loyalty_scan")]  # fmt: skip
    assert sorted(r["source_system"] for r in stores["source_records"]) == [
        "crm", "loyalty", "webshop"]  # fmt: skip
    assert [(o["order_id"], o["total"]) for o in stores["orders"]] == [("o-1", 10.0)]
    assert [(c["purpose"], c["granted"]) for c in stores["consent"]] == [("marketing", True)]
    by_type: dict[str, int] = {}
    for ev in stores["event_log"]:
        by_type[ev["type"]] = by_type.get(ev["type"], 0) + 1
    assert by_type == {"customer.upserted": 3, "pos.order_paid": 1, "web.event": 2,
                       "consent.changed": 1}  # fmt: skip
    assert [d["reason"] for d in stores["dead_letters"]] == ["bad phone"]
    assert [line["line"] for line in stores["log_files"]] == [2]
    assert {a["action"] for a in stores["audit"]} >= {"customer.read"}
    assert stores["profile"][0]["golden"]["first_name"]["value"] == "Ada"
    assert any(row["table"] == "identity_changes" for row in stores["identity_resolution"])
    assert "L-1" in body["known_ids"] and "webshop:w-9" in body["known_ids"]

    erased = client.request(
        "DELETE", "/v1/customers/L-1", headers=admin, json={"reason": "GDPR art. 17, #4711"}
    )
    assert erased.status_code == 200, erased.text
    result = erased.json()
    assert result["scan"]["traces"] == 0, result["scan"]["found"]
    assert result["scan"]["found"] == []
    assert result["scan"]["searched"]["files"] == 1
    assert result["scan"]["searched"]["tables"] >= 20
    assert result["scan"]["searched"]["identifiers"]["name"] == 1
    assert result["erased"]["source_records"] == 3 and result["erased"]["orders"] == 1
    assert result["erased"]["consent"] == 1 and result["erased"]["dead_letters"] == 1
    assert result["erased"]["staff_notices"] == 1
    assert set(result["kept"]) == {"audit", "event_log", "orders"}
    pseudonym = result["pseudonym"]
    assert pseudonym.startswith("erased-")

    # The accounts keep the order, pseudonymised, with its amounts and lines.
    with engine.connect() as conn:
        kept = conn.execute(select(orders).where(orders.c.order_id == "o-1")).one()
        lines = conn.execute(select(order_lines).where(order_lines.c.order_id == "o-1")).all()
        erase_audit = conn.execute(
            select(audit_log).where(audit_log.c.action == "customer.erase")
        ).one()
    assert (kept.customer_id, kept.total, len(lines)) == (pseudonym, 10.0, 2)
    assert erase_audit.resource_id == pseudonym
    assert erase_audit.detail["reason"] == "GDPR art. 17, #4711"
    assert "ada@example.com" not in server_log.read_text()
    assert "grace@example.com" in server_log.read_text()

    assert client.get("/v1/customers/L-1", headers=admin).status_code == 404
    assert client.get("/v1/customers/L-1/export", headers=admin).status_code == 404
    assert _grace(engine) == grace_before
    assert client.get("/v1/customers/L-2", headers=admin).json()["order_count"] == 1


def test_replaying_the_log_does_not_bring_her_back(
    app_client: TestClient,
    engine: Engine,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
) -> None:
    admin = login("admin")
    _seed(app_client, engine, raw_event, admin, device_key())
    grace_before = _grace(engine)
    with engine.connect() as conn:
        subject = resolve_subject(conn, "L-1")
    assert subject is not None
    r = app_client.delete("/v1/customers/L-1?reason=customer%20request%2042", headers=admin)
    assert r.status_code == 200 and r.json()["scan"]["traces"] == 0, r.text

    # Drop every projection and rebuild it from the log, as a new deployment would.
    with engine.begin() as conn:
        for table in (order_lines, orders, consent_records, customers, consumer_offsets):
            conn.execute(delete(table))
    run_projections(EventLog(engine))

    assert scan_subject(engine, subject).total == 0
    with engine.connect() as conn:
        rebuilt = conn.execute(select(orders.c.customer_id, orders.c.total)).all()
    assert sorted(rebuilt) == sorted([(r.json()["pseudonym"], 10.0), ("L-2", 7.0)])
    assert [len(v) for v in _grace(engine).values()] == [len(v) for v in grace_before.values()]


def test_refusals(
    app_client: TestClient,
    engine: Engine,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
) -> None:
    admin = login("admin")
    _seed(app_client, engine, raw_event, admin, device_key())
    for role in ("analyst", "staff"):
        headers = login(role)
        assert app_client.get("/v1/customers/L-1/export", headers=headers).status_code == 403
        forbidden = app_client.request(
            "DELETE", "/v1/customers/L-1", headers=headers, json={"reason": "because"}
        )
        assert forbidden.status_code == 403
    assert app_client.get("/v1/customers/L-1/export").status_code == 401
    assert app_client.get("/v1/customers/L-1/export", headers=device_key()).status_code == 403

    assert app_client.get("/v1/customers/nobody/export", headers=admin).status_code == 404
    unknown = app_client.request(
        "DELETE", "/v1/customers/nobody", headers=admin, json={"reason": "because"}
    )
    assert unknown.status_code == 404
    no_reason = app_client.delete("/v1/customers/L-1", headers=admin)
    assert no_reason.status_code == 422
    assert no_reason.json()["detail"][0]["msg"] == "Field required"
    blank = app_client.request("DELETE", "/v1/customers/L-1", headers=admin, json={"reason": "  "})
    assert blank.status_code == 422

    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action, audit_log.c.resource_id)).all()
    assert ("customer.export.not_found", "nobody") in actions
    assert ("customer.erase.not_found", "nobody") in actions
    assert not any(a == "customer.erase" for a, _ in actions)  # nothing was erased
    assert len(_grace(engine)["records"]) == 1


def test_a_customer_record_cannot_take_an_id_spelled_like_a_pseudonym(
    client: TestClient, login: Login, engine: Engine, raw_event: RawEvent
) -> None:
    """A loyalty id beginning ``erased-`` made a customer under that id: analysts read the
    profile (200), while export and erasure by the same id answered 404, "nobody", and
    audited a miss. Such records are refused, field by field."""
    analyst, admin = login("analyst"), login("admin")
    rows = [
        {"source_record_id": "c-1", "email": "ada@example.com", "loyalty_id": "erased-1"},
        {"source_record_id": "c-2", "email": "grace@example.com", "loyalty_id": "L-2"},
    ]
    r = client.post("/v1/customers/import?source=crm", json=rows, headers=analyst).json()
    assert (r["accepted"], r["rejected"]) == (1, 1)
    assert [(e["index"], e["errors"][0]["loc"]) for e in r["errors"]] == [(0, "payload.loyalty_id")]
    r = client.post("/v1/customers/import?source=erased-crm", json=rows[1:], headers=analyst)
    assert r.json()["errors"][0]["errors"][0]["loc"] == "payload.source_system"
    sneaky = raw_event(
        "customer.upserted",
        payload={"source_system": "crm", "source_record_id": "c-3", "loyalty_id": "erased-2"},
    )
    r = client.post("/v1/events", json=[sneaky], headers=admin).json()
    assert r["errors"][0]["errors"][0]["type"] == "pseudonym_prefix"
    run_projections(EventLog(engine))
    assert client.get("/v1/customers/erased-1", headers=analyst).status_code == 404
    assert client.get("/v1/customers/L-2/export", headers=admin).status_code == 200
