"""A keep-alive connection is closed after about N requests (api/keepalive.py).

The middleware's draw is injected; the live test runs a real uvicorn on loopback and
reads the socket, because what matters is that the server closes the connection, not
only that a header is set.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from starlette.types import Message, Receive, Scope, Send
from tests.live_server import LiveServer

from storelens.api.app import create_app
from storelens.api.keepalive import KeepAliveLimit
from storelens.config import Settings


async def _hello(scope: Scope, receive: Receive, send: Send) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"2")]
    if scope["path"] == "/own":  # an app that words its own connection header
        headers.append((b"Connection", b"keep-alive"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": b"hi"})


def _draws(*values: float) -> object:
    it = iter(values)
    return lambda: next(it)


def test_only_a_drawn_response_says_close() -> None:
    draws = iter([0.0015, 0.0005, 0.9])  # chance 1/1000: the second is drawn
    client = TestClient(KeepAliveLimit(_hello, 1000, draw=lambda: next(draws)))
    said = [client.get("/").headers.get("connection") for _ in range(3)]
    assert said == [None, "close", None]


def test_a_request_with_a_body_keeps_its_connection() -> None:
    """A close after answering before a large body is read lost the response (a review's
    probe: 8 MB POSTs answered 401); a body-less request draws the close instead."""
    client = TestClient(KeepAliveLimit(_hello, 1, draw=lambda: 0.0))
    assert client.post("/", content=b"x" * 10).headers.get("connection") is None
    chunks = iter([b"a", b"b"])  # sent chunked: transfer-encoding, no length
    assert client.post("/", content=chunks).headers.get("connection") is None
    assert client.post("/", content=b"").headers.get("connection") == "close"
    assert client.get("/").headers.get("connection") == "close"


def test_an_apps_own_connection_header_is_left_alone() -> None:
    client = TestClient(KeepAliveLimit(_hello, 1, draw=lambda: 0.0))
    assert client.get("/own").headers.get_list("connection") == ["keep-alive"]
    assert client.get("/").headers.get("connection") == "close"


def test_zero_or_less_is_refused_not_read_as_always() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        KeepAliveLimit(_hello, 0)


@pytest.mark.parametrize(("limit", "closed"), [(1, True), (0, False)])
def test_the_app_closes_by_the_setting(
    settings: Settings, engine: Engine, limit: int, closed: bool
) -> None:
    """On by default (1,000); 1 closes every response, 0 leaves the middleware out."""
    assert Settings().keepalive_max_requests == 1000
    app = create_app(
        settings.model_copy(update={"keepalive_max_requests": limit}),
        engine=engine,
        run_projections=False,
    )
    r = TestClient(app).get("/health")
    assert r.status_code == 200
    assert (r.headers.get("connection") == "close") is closed


def test_a_websocket_scope_is_passed_through_untouched() -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    async def never(_: Message) -> None:
        raise AssertionError("nothing is sent")

    async def receive() -> Message:
        return {}

    limit = KeepAliveLimit(app, 1, draw=lambda: pytest.fail("no draw for a websocket"))
    asyncio.run(limit({"type": "websocket", "path": "/"}, receive, never))
    assert seen and seen[0]["type"] == "websocket"


@pytest.fixture
def live() -> Iterator[LiveServer]:
    """Draws 0.9, 0.9, 0.0, 0.9 against a chance of 1/2."""
    app = KeepAliveLimit(_hello, 2, draw=_draws(0.9, 0.9, 0.0, 0.9))  # type: ignore[arg-type]
    with LiveServer(app) as server:
        yield server


def _response(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"hi"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_uvicorn_closes_the_connection_after_the_drawn_response(live: LiveServer) -> None:
    """Draws 0.9, 0.9, 0.0 against a chance of 1/2: the third response on one
    connection says close, and the server then ends the connection."""
    with socket.create_connection(("127.0.0.1", live.port), timeout=10) as sock:
        said = []
        for _ in range(3):
            sock.sendall(b"GET / HTTP/1.1\r\nhost: t\r\n\r\n")
            said.append(b"connection: close" in _response(sock).lower())
        assert said == [False, False, True]
        assert sock.recv(4096) == b""  # closed by the server, not by us
