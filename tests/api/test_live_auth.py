"""WebSocket credentials: headers or single-use tickets, store checks, closing at expiry,
and no credential in the server's logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.websockets import WebSocketDisconnect

from storelens import stores
from storelens.accounts import Role
from storelens.api.access_log import RedactCredentials, redact, redacting_log_config
from storelens.api.auth import Principal
from storelens.api.websocket_auth import store_refusal

Login = Callable[[str], dict[str, str]]
WS = "/v1/stores/cafe-01/alerts/ws"


class FakeClock:
    """Time that moves only when someone sleeps on it."""

    def __init__(self, now: datetime) -> None:
        self.t = now

    def now(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
def cafe(engine: Engine) -> None:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")


def _close_code(client: TestClient, url: str, **kwargs: object) -> int:
    try:
        with client.websocket_connect(url, **kwargs) as ws:  # type: ignore[arg-type]
            ws.receive_json()
            ws.receive_json()
    except WebSocketDisconnect as exc:
        return exc.code
    raise AssertionError("the socket stayed open")


def test_bearer_header_opens_the_socket(client: TestClient, login: Login, cafe: None) -> None:
    with client.websocket_connect(WS, headers=login("staff")) as ws:
        assert ws.receive_json() == {"type": "hello", "store_id": "cafe-01"}


def test_ticket_is_single_use_short_lived_and_not_a_token(
    client: TestClient, login: Login, cafe: None
) -> None:
    staff = login("staff")
    r = client.post("/v1/ws-ticket", headers=staff)
    assert r.status_code == 200 and r.json()["expires_in"] == 30
    ticket = r.json()["ticket"]
    claims = jwt.decode(ticket, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 30
    assert (
        client.get("/v1/auth/me", headers={"Authorization": f"Bearer {ticket}"}).status_code == 401
    )
    with client.websocket_connect(f"{WS}?ticket={ticket}") as ws:
        assert ws.receive_json()["type"] == "hello"
    assert _close_code(client, f"{WS}?ticket={ticket}") == 4401  # used already

    client.app.state.clock = FakeClock(datetime.now(UTC) - timedelta(seconds=31))  # type: ignore[attr-defined]
    stale = client.post("/v1/ws-ticket", headers=staff).json()["ticket"]
    assert _close_code(client, f"{WS}?ticket={stale}") == 4401


def test_unknown_store_and_other_store_are_refused(
    client: TestClient, login: Login, cafe: None
) -> None:
    assert _close_code(client, "/v1/stores/nowhere/alerts/ws", headers=login("staff")) == 4404
    conn = SimpleNamespace(app=client.app)  # what store_refusal reads of a connection
    for scope, expected in (("cafe-02", 4403), ("cafe-01", None), (None, None)):
        principal = Principal(name="k", kind="api_key", role=Role.staff, store_scope=scope)
        assert store_refusal(conn, principal, "cafe-01") == expected  # type: ignore[arg-type]


def test_socket_closes_when_its_token_expires(client: TestClient, login: Login, cafe: None) -> None:
    headers = login("staff")
    expires = datetime.fromtimestamp(
        jwt.decode(headers["Authorization"].split()[1], options={"verify_signature": False})["exp"],
        UTC,
    )
    clock = FakeClock(datetime.now(UTC))
    client.app.state.clock = clock  # type: ignore[attr-defined]
    with client.websocket_connect(WS, headers=headers) as ws:
        assert ws.receive_json()["type"] == "hello"
        with pytest.raises(WebSocketDisconnect) as exc:
            ws.receive_json()
    assert exc.value.code == 4401 and exc.value.reason == "token expired"
    assert clock.now() >= expires  # not a moment before


def test_credentials_are_redacted_from_uvicorn_log_lines() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXZhbHVl"
    key = "slk_0a1b2c3d_" + "x" * 43
    access = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1,
        '%s - "%s %s HTTP/%s" %d',
        ("1.2.3.4:5", "GET", f"/v1/stores/s/alerts/ws?token={jwt_like}&x=1", "1.1", 403),
        None,
    )  # fmt: skip
    handshake = logging.LogRecord(
        "uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
        ("1.2.3.4:5", f"/v1/stores/s/alerts/ws?ticket=abc&key={key}"), None,
    )  # fmt: skip
    redactor = RedactCredentials()
    for record in (access, handshake):
        assert redactor.filter(record)
    assert access.getMessage() == (
        '1.2.3.4:5 - "GET /v1/stores/s/alerts/ws?token=***&x=1 HTTP/1.1" 403'
    )
    assert handshake.getMessage() == (
        '1.2.3.4:5 - "WebSocket /v1/stores/s/alerts/ws?ticket=***&key=***" [accepted]'
    )
    assert redact(f"Bearer {jwt_like} or {key}") == "Bearer *** or ***"
    config = redacting_log_config()
    assert all("redact_credentials" in h["filters"] for h in config["handlers"].values())


def test_personal_values_are_redacted_from_access_log_lines() -> None:
    """A search term, a subject and a customer id in a path are personal data: an
    erasure must not leave them in the access-log line that records the request."""
    from storelens.api.access_log import redact

    assert redact("GET /v1/customers?q=ada%40example.com&limit=5") == (
        "GET /v1/customers?q=***&limit=5"
    )
    assert redact("GET /v1/events?subject=L-1&type=consent.changed") == (
        "GET /v1/events?subject=***&type=consent.changed"
    )
    assert redact('"DELETE /v1/customers/C8f3a2/ HTTP/1.1" 200') == (
        '"DELETE /v1/customers/***/ HTTP/1.1" 200'
    )
    assert redact("GET /v1/customers/C8f3a2/export") == "GET /v1/customers/***/export"
    assert redact("POST /v1/customers/import?source=crm") == "POST /v1/customers/import?source=crm"


def test_customer_ids_in_other_query_values_are_redacted_too() -> None:
    """The segment members' ``cursor`` is the last customer id of the page before, an
    audit query's ``resource_id`` is the customer asked about, and an erasure's
    ``reason`` may be written as "Ada Lovelace asked by e-mail": each reached the access
    log as it was, past the path redaction that hides the same id in
    ``/v1/customers/{id}`` (security review)."""
    assert redact("GET /v1/segments/rfm:champions/members?cursor=C8f3a2&limit=100") == (
        "GET /v1/segments/rfm:champions/members?cursor=***&limit=100"
    )
    assert redact("GET /v1/audit?resource=customer&resource_id=L-1&limit=5") == (
        "GET /v1/audit?resource=customer&resource_id=***&limit=5"
    )
    assert redact("DELETE /v1/customers/C8f3a2?reason=Ada%20Lovelace%20asked") == (
        "DELETE /v1/customers/***?reason=***"
    )


def test_a_percent_encoded_parameter_name_is_redacted_too() -> None:
    """The server decodes ``%71`` to ``q``, so ``?%71=ada@…`` searched for Ada and the
    log kept the address (a review)."""
    assert redact("GET /v1/customers?%71=ada@example.org&limit=5") == (
        "GET /v1/customers?%71=***&limit=5"
    )
    assert redact("GET /ws?%74oken=abc&x=1") == "GET /ws?%74oken=***&x=1"
    assert redact("GET /ws?%54%4fKEN=abc") == "GET /ws?%54%4fKEN=***"
    assert redact("GET /x?quality=5&squeeze=1") == "GET /x?quality=5&squeeze=1"


_CARD_HOLDER = "ada@example.org"  # by name: a frame's source line is logged as written


@pytest.mark.parametrize("show_messages", [False, True])
def test_a_server_error_traceback_keeps_postgresql_detail_values_out_of_the_log(
    show_messages: bool,
) -> None:
    """A failing projection logged its traceback through Python's last-resort handler,
    past the filters, with PostgreSQL's DETAIL line quoting the row (a review). By
    default no exception message reaches the log at all: Starlette re-raises a 500's
    exception after our handler, and uvicorn logged it whole (a later review)."""
    import io
    import logging.config

    config = redacting_log_config(show_messages)
    assert config["loggers"]["storelens"]["handlers"] == ["default"]
    names = ("storelens", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {
        n: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for n, lg in ((n, logging.getLogger(n)) for n in names)
    }
    stream = io.StringIO()
    try:
        logging.config.dictConfig(config)
        handler = logging.getLogger("storelens").handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        try:
            raise RuntimeError(
                "duplicate key value violates unique constraint\n"
                "DETAIL:  Key (email)=(ada@example.org) already exists."
            )
        except RuntimeError as exc:
            logging.getLogger("storelens.processors").error("projection failed", exc_info=exc)
        try:
            {}[_CARD_HOLDER]  # the fault uvicorn logs after a 500
        except KeyError as exc:
            logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=exc)
    finally:  # other tests read storelens records through the root logger (caplog)
        for n, (handlers, level, propagate, disabled) in saved.items():
            lg = logging.getLogger(n)
            lg.handlers[:] = handlers
            lg.setLevel(level)
            lg.propagate, lg.disabled = propagate, disabled
    written = stream.getvalue()
    assert "projection failed" in written and "Exception in ASGI application" in written
    assert written.count("Traceback") == 2  # the operator still gets the stacks
    if show_messages:  # a developer's machine: messages, but still no DETAIL line
        assert "duplicate key value" in written and "KeyError: 'ada@example.org'" in written
        assert "Key (email)=(ada@example.org)" not in written
    else:
        assert "ada@example.org" not in written and "duplicate key value" not in written
        assert "RuntimeError: <message hidden" in written and "KeyError: <message hidden" in written
