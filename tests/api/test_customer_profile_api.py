"""The unified customer profile and unmerge through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from storelens.cdp.resolution import resolve
from storelens.processors import ProjectionLoop, run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import (
    audit_log,
    events,
    ops_visits,
    ops_zone_visits,
    products,
    stores,
    zones,
)

Login = Callable[[str], dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]
PAID = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def _seed(client: TestClient, engine: Engine, raw_event: RawEvent, device: dict[str, str],
          analyst: dict[str, str]) -> None:  # fmt: skip
    crm = [
        {
            "source_record_id": "c-1",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@example.com",
            "dob": "1990-12-10",
            "loyalty_id": "L-1",
        }
    ]
    shop = [
        {
            "source_record_id": "w-9",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ADA@example.com",
            "phone": "+49 30 901820",
            "address": "Ringweg 9",
        }
    ]
    for source, rows in (("crm", crm), ("webshop", shop)):
        r = client.post(f"/v1/customers/import?source={source}", json=rows, headers=analyst)
        assert r.json()["accepted"] == 1
    with engine.begin() as conn:
        conn.execute(stores.insert(), {"id": "cafe-01", "name": "Café"})
        conn.execute(zones.insert(), [
            {"store_id": "cafe-01", "zone_id": "counter", "name": "Counter", "kind": "counter",
             "polygon": [[0, 0], [1, 0], [1, 1]]},
        ])  # fmt: skip
        conn.execute(products.insert(), [
            {"id": "latte", "name": "Latte", "category": "coffee", "brand": "House", "price": 3.5},
            {"id": "flat", "name": "Flat white", "category": "coffee", "brand": "House",
             "price": 3.9},
            {"id": "cake", "name": "Cake", "category": "bakery", "brand": None, "price": 4.0},
        ])  # fmt: skip
        # The ops processor's facts: one shopper at the counter when the order was paid.
        conn.execute(ops_zone_visits.insert(), [
            {"store_id": "cafe-01", "track_id": "t-7", "zone_id": "counter", "is_staff": False,
             "enter": PAID - timedelta(seconds=40), "exit": PAID + timedelta(seconds=5)},
        ])  # fmt: skip
        conn.execute(ops_visits.insert(), [
            {"store_id": "cafe-01", "track_id": "t-7", "enter": PAID - timedelta(minutes=4),
             "exit": PAID + timedelta(minutes=11), "zones": 4, "closed_by": "exit"},
        ])  # fmt: skip
    events = [
        raw_event(subject="L-1", store_id="cafe-01", ts=PAID.isoformat(), payload={
            "order_id": "o-1", "customer_id": "L-1", "register_id": "reg-1",
            "lines": [{"product_id": "latte", "qty": 2, "unit_price": 3.0},
                      {"product_id": "cake", "qty": 1, "unit_price": 4.0}]}),
        raw_event("web.event", subject="L-1", payload={
            "session_id": "s-1", "action": "product_view", "product_id": "flat"}),
        raw_event("web.event", subject="L-1", payload={"session_id": "s-2", "action": "search",
                                                       "query": "oat milk"}),
        raw_event("consent.changed", subject="L-1",
                  payload={"purpose": "marketing", "granted": True}),
    ]  # fmt: skip
    assert client.post("/v1/events", headers=device, json=events).json()["accepted"] == 4
    run_projections(EventLog(engine))


def test_unified_profile_after_resolution(
    client: TestClient,
    engine: Engine,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
) -> None:
    analyst = login("analyst")
    _seed(client, engine, raw_event, device_key(), analyst)
    before = client.get("/v1/customers/L-1", headers=analyst).json()
    assert len(before["records"]) == 1  # provisional: the web-shop record is not linked yet

    run = resolve(engine, "full")
    assert run.changes == {"merge": 1} or run.changes.get("new") == 1
    body = client.get("/v1/customers/L-1", headers=analyst).json()
    assert body["customer_id"] == "L-1" and len(body["records"]) == 2
    golden = body["golden"]
    assert golden["first_name"]["value"] == "Ada" and golden["first_name"]["source_system"] == "crm"
    assert golden["phone"]["value"] == "+4930901820"
    assert golden["phone"]["source_record_id"] == "w-9"
    assert golden["email"]["agreeing"] == 2  # case differences are not conflicts

    assert body["order_count"] == 1 and body["total_spent"] == 10.0
    assert body["baskets"][0]["items"][0]["name"] == "Latte"
    prefs = body["preferences"]
    assert prefs["top_categories"][0] == {"category": "coffee", "items": 2}
    assert prefs["price_band"] in {"value", "mid"} and prefs["price_index"] < 1.0
    assert body["web"]["sessions"] == 2 and body["web"]["top_viewed"][0]["product_id"] == "flat"
    assert body["web"]["recent_searches"] == ["oat milk"]
    visits = body["visits"]
    assert visits["tied"] == 1 and visits["visits"][0]["dwell_s"] == 900.0
    assert body["consent"][0]["purpose"] == "marketing"
    assert body["engagement"]["orders"] == 1
    confidence = body["confidence"]
    assert 0 < confidence["score"] <= 1 and confidence["records"] == 2
    assert confidence["identity"] == 1.0  # linked by the shared e-mail, a deterministic rule
    assert body["as_of"] is not None


def test_profile_freshness_and_unmerge(
    client: TestClient,
    engine: Engine,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
) -> None:
    analyst = login("analyst")
    device = device_key()
    _seed(client, engine, raw_event, device, analyst)
    resolve(engine, "full")

    # A new order shows once the server's projection loop has caught up; until then
    # /health says the orders projection is one event (and 42 s, by its clock) behind.
    late = raw_event(subject="L-1", store_id="cafe-01", payload={
        "order_id": "o-2", "customer_id": "L-1",
        "lines": [{"product_id": "flat", "qty": 1, "unit_price": 3.9}]})  # fmt: skip
    client.post("/v1/events", headers=device, json=[late])
    with engine.connect() as conn:
        received = conn.execute(
            select(events.c.received_at).order_by(events.c.seq.desc()).limit(1)
        ).scalar_one()
    app = client.app
    app.state.clock = lambda: received + timedelta(seconds=42)  # type: ignore[attr-defined]
    loop = app.state.projection_loop = ProjectionLoop(EventLog(engine))  # type: ignore[attr-defined]

    def orders_lag() -> tuple[int, float]:
        health = client.get("/health").json()["projections"]
        return next((p["lag_events"], p["lag_seconds"]) for p in health if p["name"] == "orders")

    assert client.get("/v1/customers/L-1", headers=analyst).json()["order_count"] == 1
    assert orders_lag() == (1, 42.0)
    assert loop.catch_up()
    assert client.get("/v1/customers/L-1", headers=analyst).json()["order_count"] == 2
    assert orders_lag() == (0, 0.0)

    r = client.post(
        "/v1/customers/L-1/unmerge",
        headers=analyst,
        json={"records": ["webshop:w-9"], "reason": "a different Ada"},
    )
    assert r.status_code == 200, r.text
    new_id = r.json()["new_customer_id"]
    assert len(client.get("/v1/customers/L-1", headers=analyst).json()["records"]) == 1
    split_off = client.get(f"/v1/customers/{new_id}", headers=analyst).json()
    assert [rec["source_record_id"] for rec in split_off["records"]] == ["w-9"]
    resolve(engine, "full")  # the decision sticks
    assert len(client.get("/v1/customers/L-1", headers=analyst).json()["records"]) == 1
    history = client.get("/v1/customers/L-1", headers=analyst).json()["identity_history"]
    assert history[0]["kind"] == "unmerge" and history[0]["actor"].startswith("analyst")

    bad = client.post("/v1/customers/L-1/unmerge", headers=analyst, json={"records": ["crm:c-1"]})
    assert bad.status_code == 422 and "every record" in bad.text
    assert (
        client.post("/v1/customers/L-1/unmerge", headers=analyst, json={"records": []}).status_code
        == 422
    )
    assert (
        client.post(
            "/v1/customers/nobody/unmerge", headers=analyst, json={"records": ["x:1"]}
        ).status_code
        == 404
    )
    assert (
        client.post(
            "/v1/customers/L-1/unmerge", headers=login("staff"), json={"records": ["crm:c-1"]}
        ).status_code
        == 403
    )
    with engine.connect() as conn:
        actions = (
            conn.execute(select(audit_log.c.action).where(audit_log.c.resource == "customer"))
            .scalars()
            .all()
        )
    assert "customer.unmerge" in actions and "customer.read" in actions
