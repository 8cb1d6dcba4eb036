"""A revocation that lands while a socket is opening refuses it; a failing check closes it.

Found by an attacker review: the socket's baseline row was read *after* the credential
check, so a password reset, role change or key revocation landing between the two
became the baseline, and the socket kept receiving alerts for the token's whole life
(an hour). The write is injected between the two reads by wrapping the store check
that runs between them, so the race is hit every time, not by chance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect
from tests.api.live_store import STORE, WS, open_store, store_key

from storelens import accounts
from storelens.api import live_socket, socket_revocation


def _write_during_admission(monkeypatch: pytest.MonkeyPatch, write: Callable[[], None]) -> None:
    real = live_socket.store_refusal

    def refusal(ws: Any, principal: Any, store_id: str) -> int | None:
        out = real(ws, principal, store_id)
        write()  # an admin's write between the credential check and the baseline read
        return out

    monkeypatch.setattr(live_socket, "store_refusal", refusal)


def _refused(client: TestClient, **kwargs: Any) -> WebSocketDisconnect:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(WS, **kwargs) as ws:
        ws.receive_json()  # no hello, no opening: the socket is refused
    return closed.value


def test_a_password_reset_during_admission_refuses_the_socket(
    client: TestClient, engine: Engine, login: Callable[..., dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    open_store(client, engine)
    headers = login("staff")
    name = client.get("/v1/auth/me", headers=headers).json()["name"]

    def reset() -> None:
        with engine.begin() as conn:
            accounts.set_password(conn, name, "a brand new password!!")

    _write_during_admission(monkeypatch, reset)
    assert _refused(client, headers=headers).code == 4401
    assert client.get("/v1/auth/me", headers=headers).status_code == 401


def test_a_key_revoked_during_admission_gets_no_opening(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(client, engine)
    key_id, secret = store_key(engine, "hub")

    def revoke() -> None:
        with engine.begin() as conn:
            accounts.revoke_api_key(conn, key_id)

    _write_during_admission(monkeypatch, revoke)
    assert _refused(client, headers={"X-API-Key": secret}).code == 4401


def test_without_a_write_in_between_the_socket_opens(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_store(client, engine)
    _, secret = store_key(engine, "hub")
    _write_during_admission(monkeypatch, lambda: None)
    with client.websocket_connect(WS, headers={"X-API-Key": secret}) as ws:
        assert ws.receive_json()["type"] == "hello"


def test_a_failing_check_closes_the_socket_with_1011(
    client: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is sent after the check fails, and the client is told (it hung before)."""
    open_store(client, engine)
    _, secret = store_key(engine, "hub")
    with client.websocket_connect(WS, headers={"X-API-Key": secret}) as ws:
        assert ws.receive_json()["type"] == "hello"

        def broken(self: object) -> bool:
            raise RuntimeError("database is locked")

        monkeypatch.setattr(socket_revocation.Admission, "holds", broken)
        client.app.state.hub.publish([{"store_id": STORE, "rule_id": "x"}])  # type: ignore[attr-defined]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1011
