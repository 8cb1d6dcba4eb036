"""Recognition to staff notice: the server's in-process sink, and an edge box's HTTP sink
through the one ingest client against a live server, with its retries and refusals.

Faces are not needed here: an :class:`Arrival` is what the matcher hands its sink once
a track is confirmed (``tests/recognition`` covers how it gets there).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from websockets.sync.client import connect

from storelens.api.arrival_notices import DeskArrivalSink
from storelens.api.deps import current_time
from storelens.core.retry import Backoff, ManualClock
from storelens.ingest.client import IngestClient
from storelens.recognition.matcher import Arrival
from storelens.recognition.notice_poster import NoticePoster
from storelens.storage.tables import notices

from ..conftest import LiveServer
from .conftest import MEMBER, STORE, T0, Floor

DeviceKey = Callable[..., dict[str, str]]


def _arrival(customer_id: str = MEMBER, at: datetime = T0) -> Arrival:
    return Arrival(customer_id, STORE, "track-7", 0.31, at)


def _notices(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(notices.c.customer_id, notices.c.trigger, notices.c.state))
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.fixture
def sink(client: TestClient) -> DeskArrivalSink:
    app = client.app
    app.dependency_overrides[current_time] = lambda: T0  # type: ignore[attr-defined]
    sink = app.state.arrival_sink  # type: ignore[attr-defined]
    assert isinstance(sink, DeskArrivalSink)  # create_app wires it to the app's desk
    assert sink.desk is app.state.notice_desk  # type: ignore[attr-defined]
    sink.clock = lambda: T0
    return sink


def test_in_process_arrival_reaches_the_staff_socket(
    client: TestClient, floor: Floor, sink: DeskArrivalSink, engine: Engine
) -> None:
    floor.store()
    floor.member()
    floor.recognisable()
    ana = floor.staff()
    floor.clock("in", ana, at=T0 - timedelta(hours=1))
    with client.websocket_connect(f"/v1/stores/{STORE}/notices/ws", headers=floor.token(ana)) as ws:
        assert ws.receive_json()["type"] == "hello"
        sink(_arrival())
        message = ws.receive_json()
    assert message["type"] == "notice"
    assert message["notice"]["trigger"] == "recognition"
    assert "customer_id" not in message["notice"]  # phones get no customer id
    assert _notices(engine) == [(MEMBER, "recognition", "open")]
    sink(_arrival())  # the same member seen again while the notice waits: one notice
    assert len(_notices(engine)) == 1 and len(sink.raised) == 2
    assert sink.raised[0].id == sink.raised[1].id


def test_in_process_sink_drops_an_arrival_the_desk_refuses_without_naming_anyone(
    floor: Floor, sink: DeskArrivalSink, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    floor.store()
    with caplog.at_level(logging.WARNING):
        sink(_arrival("L-erased-meanwhile"))  # no such customer (any more)
    assert sink.dropped == 1 and sink.raised == [] and _notices(engine) == []
    assert "track-7" in caplog.text and "L-erased-meanwhile" not in caplog.text


def _poster(transport: httpx.MockTransport, clock: ManualClock, retry_for_s: float) -> NoticePoster:
    client = IngestClient("http://127.0.0.1:9", "slk_test", transport=transport)
    backoff = Backoff(initial=0.5, cap=4.0, jitter="none")
    return NoticePoster(client, retry_for_s=retry_for_s, backoff=backoff, clock=clock)


def _answer(nid: str = "n-1") -> httpx.Response:
    body = {"id": nid, "store_id": STORE, "customer_id": MEMBER, "trigger": "recognition",
            "state": "open", "created": True}  # fmt: skip
    return httpx.Response(201, json=body)


def test_http_sink_retries_an_unavailable_server_with_backoff() -> None:
    answers = [httpx.Response(503), httpx.Response(429, headers={"Retry-After": "2"}), _answer()]
    seen: list[dict[str, str]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return answers.pop(0)

    clock = ManualClock()
    poster = _poster(httpx.MockTransport(handle), clock, retry_for_s=20)
    poster(_arrival())
    assert clock.sleeps == [0.5, 2.0]  # the backoff, then the server's Retry-After
    assert [r.id for r in poster.sent] == ["n-1"] and poster.given_up == 0
    assert seen[0] == {"store_id": STORE, "customer_id": MEMBER, "trigger": "recognition"}


def test_http_sink_gives_up_when_the_member_has_walked_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []

    def down(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(502)

    clock = ManualClock()
    poster = _poster(httpx.MockTransport(down), clock, retry_for_s=5)
    with caplog.at_level(logging.WARNING):
        poster(_arrival())
    assert sum(clock.sleeps) <= 5 and clock.sleeps == [0.5, 1.0, 2.0]  # next (4 s) would pass 5
    assert len(calls) == 4 and poster.given_up == 1 and poster.sent == []
    assert "502" in caplog.text and MEMBER not in caplog.text


def test_http_sink_does_not_retry_a_refusal() -> None:
    calls: list[int] = []

    def refuse(_: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(422, json={"detail": [{"loc": ["body", "customer_id"]}]})

    clock = ManualClock()
    poster = _poster(httpx.MockTransport(refuse), clock, retry_for_s=20)
    poster(_arrival())
    assert calls == [1] and clock.sleeps == [] and poster.given_up == 1


def test_edge_box_arrival_reaches_staff_through_the_live_server(
    floor: Floor, server: LiveServer, device_key: DeviceKey, engine: Engine
) -> None:
    floor.store()
    floor.member()
    floor.recognisable()
    ana = floor.staff()
    now = datetime.now(UTC)  # the live server runs on the real clock
    floor.clock("in", ana, at=now - timedelta(minutes=10))
    key = device_key(None)["X-API-Key"]
    ws_url = server.url.replace("http", "ws") + f"/v1/stores/{STORE}/notices/ws"
    with (
        connect(ws_url, additional_headers=floor.token(ana), open_timeout=10) as ws,
        IngestClient(server.url, key) as client,
    ):
        assert json.loads(ws.recv(timeout=10))["type"] == "hello"
        poster = NoticePoster(client, retry_for_s=5)
        poster(_arrival(at=now))
        message = json.loads(ws.recv(timeout=10))
    assert message["type"] == "notice" and message["notice"]["trigger"] == "recognition"
    assert [r.created for r in poster.sent] == [True]
    assert message["notice"]["id"] == poster.sent[0].id
    assert _notices(engine) == [(MEMBER, "recognition", "open")]

    with IngestClient(server.url, "slk_wrong_key") as bad:
        refused = NoticePoster(bad, retry_for_s=5)
        refused(_arrival(at=now))
    assert refused.given_up == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(notices)).scalar() == 1
