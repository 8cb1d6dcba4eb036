"""Device keys send only the event types they were made for; every write, and every
read of personal data (hits and misses), leaves an audit row naming its actor."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from storelens import accounts
from storelens.config import Settings
from storelens.storage.tables import api_keys, customers, events

Login = Callable[[str], dict[str, str]]
DeviceKey = Callable[..., dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]
CHAIN_WIDE = ["customer.upserted", "consent.changed", "web.event"]


def _forged_customer(raw_event: RawEvent) -> dict[str, Any]:
    return raw_event(
        "customer.upserted",
        ts="2026-11-02T09:00:00+00:00",
        payload={"source_system": "crm", "source_record_id": "c-1", "email": "evil@example.com"},
    )


def _audit(client: TestClient, admin: dict[str, str], action: str) -> list[dict[str, Any]]:
    r = client.get(f"/v1/audit?action={action}", headers=admin)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def test_default_key_refuses_chain_wide_types_per_item(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent, engine: Engine
) -> None:
    for key in (device_key(event_types=None), device_key("cafe-01", event_types=None)):
        batch = [raw_event(), _forged_customer(raw_event)]
        batch += [raw_event(t) for t in CHAIN_WIDE[1:]]
        r = client.post("/v1/events", json=batch, headers=key)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["accepted"], body["rejected"]) == (1, 3)
        assert [e["index"] for e in body["errors"]] == [1, 2, 3]
        for item, type_ in zip(body["errors"], CHAIN_WIDE, strict=True):
            assert item["errors"] == [
                {
                    "loc": "type",
                    "msg": f"this key may not send {type_} events; create a key for that type",
                    "type": "forbidden",
                }
            ]
    with engine.connect() as conn:
        stored = conn.execute(select(events.c.type)).scalars().all()
        assert sorted(stored) == ["pos.order_paid", "pos.order_paid"]
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 0


def test_chain_wide_types_and_consent_are_granted_explicitly(
    client: TestClient, login: Login, raw_event: RawEvent
) -> None:
    admin = login("admin")

    def make(body: dict[str, Any]) -> Any:
        return client.post("/v1/api-keys", json={"name": "k", **body}, headers=admin)

    r = make({"event_types": ["consent.changed"]})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "event_types"]
    assert "consent source" in r.json()["detail"][0]["msg"]
    assert make({"event_types": ["nope.type"]}).status_code == 422
    default = make({}).json()
    assert "customer.upserted" not in default["event_types"]
    assert "pos.order_paid" in default["event_types"]

    crm = make({"event_types": ["customer.upserted"]}).json()
    assert crm["event_types"] == ["customer.upserted"]
    r = client.post(
        "/v1/events",
        json=[_forged_customer(raw_event), raw_event("consent.changed"), raw_event()],
        headers={"X-API-Key": crm["key"]},
    ).json()
    assert (r["accepted"], [e["index"] for e in r["errors"]]) == (1, [1, 2])

    cmp = make({"event_types": [], "consent_source": True}).json()
    assert cmp["event_types"] == ["consent.changed"]
    r = client.post(
        "/v1/events", json=[raw_event("consent.changed")], headers={"X-API-Key": cmp["key"]}
    )
    assert r.json()["accepted"] == 1
    listed = client.get("/v1/api-keys", headers=admin).json()["data"]
    assert {k["id"]: k["event_types"] for k in listed}[cmp["id"]] == ["consent.changed"]


def test_writes_of_personal_data_are_audited_with_their_actor(
    client: TestClient, login: Login, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    admin = login("admin")
    key = device_key()
    client.post("/v1/events", json=[raw_event()], headers=key)
    writes = _audit(client, admin, "events.write")
    assert len(writes) == 1
    assert writes[0]["actor"].startswith("key:") and writes[0]["actor_kind"] == "api_key"
    assert writes[0]["detail"] == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 0,
        "conflicts": 0,
        "forbidden": 0,
        "customers": 0,  # a shot names nobody, and says so
    }

    consent = raw_event("consent.changed", subject="L-7")
    client.post("/v1/events", json=[_forged_customer(raw_event), consent], headers=key)
    client.post("/v1/events", json=[raw_event("consent.changed", subject="L-8")], headers=admin)
    personal = _audit(client, admin, "personal_data.write")
    assert [(p["actor_kind"], p["detail"]["records"]) for p in personal] == [
        ("user", ["L-8"]),
        ("api_key", ["L-7", "crm:c-1"]),
    ]
    assert personal[1]["detail"]["personal"] == {"consent.changed": 1, "customer.upserted": 1}
    assert "evil@example.com" not in str(personal)

    narrow = device_key(event_types=None)
    client.post("/v1/events", json=[_forged_customer(raw_event)], headers=narrow)
    refused = _audit(client, admin, "events.write")[0]
    assert refused["detail"] == {
        "accepted": 0,
        "duplicates": 0,
        "rejected": 1,
        "conflicts": 0,
        "forbidden": 1,
        "customers": 0,  # the refused record was never stored: it names nobody
    }


def test_reads_of_audit_dead_letters_and_missing_customers_are_audited(
    client: TestClient, login: Login
) -> None:
    admin = login("admin")
    assert client.get("/v1/dead-letters?channel=mqtt", headers=admin).status_code == 200
    assert client.get("/v1/customers/nobody-here", headers=admin).status_code == 404
    assert client.get("/v1/audit?resource=user", headers=admin).status_code == 200
    rows = client.get("/v1/audit?resource=audit", headers=admin).json()["data"]
    assert rows[0]["action"] == "audit.read"
    assert rows[0]["detail"] == {"resource": "user", "action": None, "offset": 0, "returned": 1}
    dead = _audit(client, admin, "dead_letters.read")
    assert dead[0]["detail"] == {"channel": "mqtt", "offset": 0, "returned": 0}
    miss = _audit(client, admin, "customer.read")
    assert [(m["resource_id"], m["detail"]) for m in miss] == [("nobody-here", {"found": False})]


def test_token_lifetime_is_capped(client: TestClient, login: Login, settings: Settings) -> None:
    headers = login("admin")
    claims = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    now = datetime.now(UTC)
    secret = settings.secret_key.get_secret_value()
    long_lived = jwt.encode(
        {**claims, "iat": now, "exp": now + timedelta(days=3650)}, secret, algorithm="HS256"
    )
    r = client.get("/v1/users", headers={"Authorization": f"Bearer {long_lived}"})
    assert r.status_code == 401 and r.json()["detail"] == "token lifetime over the limit"
    no_version = {k: v for k, v in claims.items() if k != "ver"}
    r = client.get(
        "/v1/users",
        headers={"Authorization": f"Bearer {jwt.encode(no_version, secret, algorithm='HS256')}"},
    )
    assert r.status_code == 401
    issued = jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})
    assert issued["exp"] - issued["iat"] == settings.access_token_minutes * 60


def test_password_reset_disable_and_role_change_revoke_tokens(
    client: TestClient, login: Login, engine: Engine
) -> None:
    changes: list[Callable[[Any, str], None]] = [
        lambda conn, name: accounts.set_password(conn, name, "another long password"),
        lambda conn, name: accounts.set_role(conn, name, accounts.Role.admin),
        lambda conn, name: accounts.set_active(conn, name, False),
    ]
    for change in changes:
        headers = login("analyst")
        name = client.get("/v1/auth/me", headers=headers).json()["name"]
        with engine.begin() as conn:
            change(conn, name)
        r = client.get("/v1/auth/me", headers=headers)
        assert r.status_code == 401, change
    headers = login("analyst")
    name = client.get("/v1/auth/me", headers=headers).json()["name"]
    with engine.begin() as conn:
        accounts.delete_user(conn, name)
    assert client.get("/v1/auth/me", headers=headers).status_code == 401


def test_key_last_used_is_written_at_most_once_a_minute(engine: Engine) -> None:
    with engine.begin() as conn:
        key, secret = accounts.create_api_key(conn, "cam")
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def last_used() -> datetime | None:
        with engine.connect() as conn:
            value: datetime | None = conn.execute(
                select(api_keys.c.last_used_at).where(api_keys.c.id == key.id)
            ).scalar_one()
        return value

    assert last_used() is None
    accounts.find_api_key(engine, secret, now=t0)
    assert last_used() == t0
    accounts.find_api_key(engine, secret, now=t0 + timedelta(seconds=59))
    assert last_used() == t0
    accounts.find_api_key(engine, secret, now=t0 + timedelta(seconds=61))
    assert last_used() == t0 + timedelta(seconds=61)
