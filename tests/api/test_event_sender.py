"""Each stored event says who handed it in, on SQLite and PostgreSQL.

The audit trail said that a key wrote 40 events at 09:12, but not which events: once a
forged order or a burst of fake footfall was in the log, nothing tied it to the key,
user or device that sent it. The server now records the sender with every stored
event (``sent_by``), shows it in ``GET /v1/events`` and filters by it. A sender cannot
set it, and a replay from someone else does not change it. (MQTT devices and the
command line are checked in tests/ingest/test_mqtt_audit.py and
tests/privacy/test_write_audit.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from storelens.storage.tables import audit_log

Login = Callable[[str], dict[str, str]]
DeviceKey = Callable[..., dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]


def _events(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/events", params=params, headers=headers)
    assert r.status_code == 200, r.text
    rows: list[dict[str, Any]] = r.json()["data"]
    return rows


def _writers(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        stmt = select(audit_log.c.actor).where(audit_log.c.action == "events.write")
        return list(conn.execute(stmt.order_by(audit_log.c.id)).scalars())


def test_the_sender_is_recorded_shown_and_filtered(
    client: TestClient, login: Login, device_key: DeviceKey, engine: Engine, raw_event: RawEvent
) -> None:
    admin, till, other = login("admin"), device_key(), device_key()
    shot = raw_event("sensor.espresso_shot")
    assert client.post("/v1/events", json=[raw_event(), shot], headers=till).status_code == 200
    mine = raw_event(payload={"order_id": "o-9", "register_id": "r", "lines": [
        {"product_id": "latte", "qty": 1, "unit_price": 3.0}]})  # fmt: skip
    assert client.post("/v1/events", json=[mine], headers=admin).status_code == 200
    replay = client.post("/v1/events", json=[shot], headers=other)
    assert replay.json()["duplicates"] == 1
    key_name, admin_name, _ = _writers(engine)  # the audit rows' actors, in order

    rows = _events(client, admin)
    assert [r["sent_by"] for r in rows] == [key_name, key_name, admin_name]
    assert key_name.startswith("key:") and not admin_name.startswith("key:")
    assert [r["id"] for r in _events(client, admin, sent_by=key_name)] == [
        rows[0]["id"],
        rows[1]["id"],  # the replay by the other key left the first sender on record
    ]
    assert _events(client, admin, sent_by="key:nobody") == []
    too_long = client.get("/v1/events", params={"sent_by": "k" * 129}, headers=admin)
    assert too_long.status_code == 422 and "sent_by" in too_long.text


def test_a_sender_cannot_name_itself(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent, login: Login
) -> None:
    forged = {**raw_event(), "sent_by": "mqtt:cafe-01/pos-1"}
    r = client.post("/v1/events", json=[forged], headers=device_key())
    assert (r.json()["accepted"], r.json()["rejected"]) == (0, 1), r.text
    assert r.json()["errors"][0]["errors"][0]["loc"] == "sent_by"
    assert _events(client, login("admin")) == []
