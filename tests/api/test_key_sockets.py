"""A socket opened with an API key ends (4401) once that key is revoked or deleted, as
the key's HTTP requests are refused at once, on SQLite and PostgreSQL; another key's
revocation leaves it open.

Only a key made with a person's role can open a staff socket today (both refuse the
device role), so the key here is a staff-role one, as an integration made with
``accounts.create_api_key(role=...)`` would be. Time never passes (a clock on which no
sleep ends): what closes the socket is the look before each message; the periodic look
has its own tests in tests/api/test_socket_revocation.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete
from starlette.websockets import WebSocketDisconnect
from tests.api.live_store import STORE, WS, open_store, store_key

from storelens import accounts
from storelens.storage.tables import api_keys

Login = Callable[[str], dict[str, str]]


@pytest.fixture
def hub_key(client: TestClient, engine: Engine) -> Callable[[str], tuple[int, str]]:
    """A staff-role key for the store (its id and secret); the app's clock stands still."""
    open_store(client, engine)

    return lambda name: store_key(engine, name)


def _alert(client: TestClient, rule_id: str) -> None:
    """What the ops processor hands the hub after a commit (thread-safe)."""
    client.app.state.hub.publish([{"store_id": STORE, "rule_id": rule_id}])  # type: ignore[attr-defined]


def _end(engine: Engine, client: TestClient, admin: dict[str, str], key_id: int, how: str) -> None:
    if how == "revoked":
        assert client.delete(f"/v1/api-keys/{key_id}", headers=admin).status_code == 204
    else:
        with engine.begin() as conn:
            conn.execute(delete(api_keys).where(api_keys.c.id == key_id))


@pytest.mark.parametrize("how", ["revoked", "deleted"])
def test_a_keys_socket_closes_before_the_next_message_once_the_key_is_gone(
    client: TestClient,
    engine: Engine,
    login: Login,
    hub_key: Callable[[str], tuple[int, str]],
    how: str,
) -> None:
    admin = login("admin")
    key_id, secret = hub_key("store-hub")
    headers = {"X-API-Key": secret}
    with client.websocket_connect(WS, headers=headers) as ws:
        assert ws.receive_json() == {"type": "hello", "store_id": STORE}
        _alert(client, "before")
        assert ws.receive_json()["rule_id"] == "before"  # the key works until it is ended
        _end(engine, client, admin, key_id, how)
        assert client.get("/v1/auth/me", headers=headers).status_code == 401
        _alert(client, "after")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401 and closed.value.reason == "API key revoked"


def test_another_keys_revocation_leaves_the_socket_open(
    client: TestClient,
    login: Login,
    hub_key: Callable[[str], tuple[int, str]],
) -> None:
    admin = login("admin")
    _, secret = hub_key("store-hub")
    other_id, _ = hub_key("back-office")
    with client.websocket_connect(WS, headers={"X-API-Key": secret}) as ws:
        assert ws.receive_json()["type"] == "hello"
        assert client.delete(f"/v1/api-keys/{other_id}", headers=admin).status_code == 204
        for rule in ("first", "second", "third"):
            _alert(client, rule)
            assert ws.receive_json() == {"type": "alert", "store_id": STORE, "rule_id": rule}
    assert client.get("/v1/auth/me", headers={"X-API-Key": secret}).status_code == 200


def test_a_person_revoked_meanwhile_is_not_the_keys_concern(
    client: TestClient,
    engine: Engine,
    login: Login,
    hub_key: Callable[[str], tuple[int, str]],
) -> None:
    """Keys and people are watched by their own rows: disabling a person (a write that
    moves SQLite's signal too) leaves a key's socket as it was."""
    staff = login("staff")
    name = client.get("/v1/auth/me", headers=staff).json()["name"]
    _, secret = hub_key("store-hub")
    with client.websocket_connect(WS, headers={"X-API-Key": secret}) as ws:
        assert ws.receive_json()["type"] == "hello"
        with engine.begin() as conn:
            accounts.set_active(conn, name, False)
        _alert(client, "still")
        assert ws.receive_json()["rule_id"] == "still"
