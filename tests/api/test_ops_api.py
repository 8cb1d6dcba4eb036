"""The operations report and live alerts through the API, on both backends."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect

from storelens.processors import default_projections, run_projections
from storelens.storage.eventlog import EventLog

Login = Callable[[str], dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _setup_store(client: TestClient, admin: dict[str, str]) -> None:
    doc = tomllib.loads(
        (resources.files("storelens.samples") / "layouts" / "cafe.toml").read_text()
    )
    client.post(
        "/v1/stores",
        json={"id": "cafe-01", "name": "Café", "timezone": "Europe/Berlin"},
        headers=admin,
    )
    assert client.put("/v1/stores/cafe-01/layout", json=doc, headers=admin).status_code == 200


def _at(sec: float) -> str:
    return (T0 + timedelta(seconds=sec)).isoformat()


def _queue_crowd(raw_event: RawEvent, people: int) -> list[dict[str, Any]]:
    out = []
    for i in range(people):
        for zone, enter in (("entrance", 0), ("queue", 5)):
            out.append(
                raw_event(
                    "vision.zone_enter",
                    ts=_at(enter + i),
                    payload={"zone_id": zone, "track_id": f"t{i}"},
                )
            )
        out.append(
            raw_event(
                "vision.zone_exit",
                ts=_at(5 + i),
                payload={"zone_id": "entrance", "track_id": f"t{i}"},
            )
        )
    out.append(raw_event("sensor.espresso_shot", ts=_at(200), payload={"machine_id": "m"}))
    return out


def test_ops_report_through_api(
    client: TestClient,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
    engine: Engine,
) -> None:
    admin = login("admin")
    _setup_store(client, admin)
    line = {"product_id": "latte", "qty": 2, "unit_price": 3.5, "category": "coffee"}
    events = [
        raw_event("staff.clock_in", ts=_at(0), payload={"staff_id": "ana"}),
        raw_event(
            "pos.order_paid",
            ts=_at(10),
            payload={"order_id": "o1", "lines": [line], "register_id": "reg-1"},
        ),
        raw_event("order.started", ts=_at(20), payload={"order_id": "o1", "staff_id": "ana"}),
        raw_event("order.ready", ts=_at(100), payload={"order_id": "o1", "staff_id": "ana"}),
        raw_event("order.handed_off", ts=_at(130), payload={"order_id": "o1", "staff_id": "ana"}),
        raw_event("pos.order_paid", ts=_at(200), payload={"order_id": "o2", "lines": [line]}),
        raw_event("staff.clock_out", ts=_at(7200), payload={"staff_id": "ana"}),
    ]
    assert client.post("/v1/events", json=events, headers=device_key()).json()["accepted"] == 7
    run_projections(EventLog(engine))
    staff = login("staff")
    report = client.get("/v1/stores/cafe-01/ops", headers=staff).json()
    f = report["fulfillment"]
    assert (f["complete"], f["incomplete"], f["p50_s"]) == (1, 1, 120.0)
    assert f["incomplete_orders"][0]["order_id"] == "o2"
    (ana,) = report["baristas"]
    assert (ana["drinks"], ana["drinks_per_hour"]) == (2, 1.0)
    window = client.get(
        "/v1/stores/cafe-01/ops", headers=staff, params={"from": _at(150), "to": _at(3600)}
    ).json()
    assert window["fulfillment"]["complete"] == 0
    naive = client.get("/v1/stores/cafe-01/ops", headers=staff, params={"from": "2026-11-02"})
    assert naive.status_code == 422
    assert client.get("/v1/stores/nowhere/ops", headers=staff).status_code == 404


def test_live_alerts_reach_staff_devices(
    client: TestClient,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
    engine: Engine,
) -> None:
    admin = login("admin")
    _setup_store(client, admin)
    token = login("staff")["Authorization"].split()[1]
    with client.websocket_connect(f"/v1/stores/cafe-01/alerts/ws?token={token}") as ws:
        assert ws.receive_json() == {"type": "hello", "store_id": "cafe-01"}
        client.post("/v1/events", json=_queue_crowd(raw_event, 10), headers=device_key())
        deliver = client.app.state.deliver_alerts  # type: ignore[attr-defined]
        run_projections(EventLog(engine), default_projections(on_alerts=deliver))
        alert = ws.receive_json()
    assert (alert["type"], alert["rule_id"], alert["state"]) == ("alert", "long-queue", "raised")
    hub = client.app.state.hub  # type: ignore[attr-defined]
    for _ in range(100):  # the device hung up: its subscription must go, not linger
        if hub.subscribers("cafe-01") == 0:
            break
        time.sleep(0.01)
    assert hub.subscribers("cafe-01") == 0
    assert alert["value"] == 10.0
    stored = client.get("/v1/stores/cafe-01/alerts", headers=admin).json()
    assert [a["rule_id"] for a in stored["data"]] == ["long-queue"]


@pytest.mark.parametrize("query", ["", "?token=not-a-token"])
def test_live_alerts_refuse_strangers(client: TestClient, query: str) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(f"/v1/stores/cafe-01/alerts/ws{query}") as ws,
    ):
        ws.receive_json()
    assert exc.value.code == 4401


def test_live_alerts_refuse_devices(
    client: TestClient, device_key: Callable[..., dict[str, str]]
) -> None:
    key = device_key()["X-API-Key"]
    with (
        pytest.raises(WebSocketDisconnect) as exc,
        client.websocket_connect(f"/v1/stores/cafe-01/alerts/ws?token={key}") as ws,
    ):
        ws.receive_json()
    assert exc.value.code == 4403


def test_alert_rules_per_store(
    client: TestClient,
    login: Login,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
    engine: Engine,
) -> None:
    admin, staff = login("admin"), login("staff")
    _setup_store(client, admin)
    defaults = client.get("/v1/stores/cafe-01/alert-rules", headers=staff).json()
    assert defaults["default"] is True and {r["id"] for r in defaults["data"]} >= {"long-queue"}
    bad = client.put(
        "/v1/stores/cafe-01/alert-rules",
        headers=admin,
        json=[{"id": "q", "kind": "queue_length", "threshold": -1}],
    )
    assert bad.status_code == 422 and "threshold" in str(bad.json())
    dup = [{"id": "q", "kind": "queue_length", "threshold": 3}] * 2
    assert client.put("/v1/stores/cafe-01/alert-rules", headers=admin, json=dup).status_code == 422
    assert client.put("/v1/stores/cafe-01/alert-rules", headers=staff, json=[]).status_code == 403
    small = [{"id": "tiny-queue", "kind": "queue_length", "threshold": 3, "raise_after_min": 1}]
    assert (
        client.put("/v1/stores/cafe-01/alert-rules", headers=admin, json=small).status_code == 200
    )
    client.post("/v1/events", json=_queue_crowd(raw_event, 5), headers=device_key())
    run_projections(EventLog(engine))
    stored = client.get("/v1/stores/cafe-01/alerts", headers=staff).json()["data"]
    assert [a["rule_id"] for a in stored] == ["tiny-queue"]  # 5 > 3, and the default 8 is off
    assert client.delete("/v1/stores/cafe-01/alert-rules", headers=admin).status_code == 204
    assert client.get("/v1/stores/cafe-01/alert-rules", headers=staff).json()["default"] is True


def test_live_alerts_over_a_real_socket(server: Any, engine: Engine) -> None:
    """Through uvicorn itself: the install must carry a WebSocket implementation."""
    import asyncio

    import websockets

    from storelens import accounts, stores

    with engine.begin() as conn:
        accounts.create_user(conn, "barista-ana", "a-long-enough-password", accounts.Role.staff)
        stores.create_store(conn, "cafe-01", "Café")
    token = httpx.post(
        f"{server.url}/v1/auth/token",
        data={"username": "barista-ana", "password": "a-long-enough-password"},
    ).json()["access_token"]

    async def hello() -> Any:
        ws_url = server.url.replace("http", "ws") + "/v1/stores/cafe-01/alerts/ws"
        auth = {"Authorization": f"Bearer {token}"}  # never in the query string, which is logged
        async with websockets.connect(ws_url, additional_headers=auth) as ws:
            return json.loads(await ws.recv())

    assert asyncio.run(hello()) == {"type": "hello", "store_id": "cafe-01"}
