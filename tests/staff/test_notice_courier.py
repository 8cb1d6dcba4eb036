"""The edge box's courier: the camera loop hands an arrival over and goes on at once,
however long the server takes; what waits too long is given up, never announced late.

The server is an ``httpx.MockTransport`` whose handler blocks on an event the test
releases, so "the loop did not wait" is shown by the order of events, not by timing.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

import httpx
import pytest

from storelens.core.retry import Backoff, ManualClock
from storelens.ingest.client import IngestClient
from storelens.recognition.matcher import Arrival
from storelens.recognition.notice_poster import NoticeCourier, NoticePoster

STORE, MEMBER = "store-1", "L-courier-member"
WAIT_S = 30  # generous bound on waiting for the courier's thread; never asserted as a time


def _arrival(track: int) -> Arrival:
    return Arrival(
        customer_id=MEMBER, store_id=STORE, track_id=f"track-{track}", distance=0.3,
        ts=datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
    )  # fmt: skip


def _answer(request: httpx.Request) -> httpx.Response:
    body = {"id": f"n-{len(request.content)}", "store_id": STORE, "customer_id": MEMBER,
            "trigger": "recognition", "state": "open", "created": True}  # fmt: skip
    return httpx.Response(201, json=body)


class SlowServer:
    """Answers each post once the test releases it, and says when a post arrived."""

    def __init__(self, clock: ManualClock, takes_s: float = 0.0) -> None:
        self.clock, self.takes_s = clock, takes_s
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.posts = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.posts += 1
        self.arrived.set()
        assert self.release.wait(WAIT_S)
        self.clock.advance(self.takes_s)  # the post took this long on the courier's clock
        return _answer(request)


def _courier(server: SlowServer, clock: ManualClock, depth: int = 16) -> NoticeCourier:
    client = IngestClient("http://127.0.0.1:9", "slk_test", transport=httpx.MockTransport(server))
    backoff = Backoff(initial=0.5, cap=4.0, jitter="none")
    poster = NoticePoster(client, retry_for_s=20, backoff=backoff, clock=clock)
    return NoticeCourier(poster, depth=depth)


def test_the_camera_loop_goes_on_while_the_server_has_not_answered() -> None:
    clock = ManualClock()
    server = SlowServer(clock)
    courier = _courier(server, clock)
    courier(_arrival(1))  # returns although the server has not answered
    assert server.arrived.wait(WAIT_S)
    assert courier.sent == [] and not server.release.is_set()
    server.release.set()
    courier.close()
    assert len(courier.sent) == 1 and courier.given_up == 0


def test_a_full_queue_gives_up_the_oldest_waiting_arrival(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    server = SlowServer(clock)
    courier = _courier(server, clock, depth=1)
    courier(_arrival(1))
    assert server.arrived.wait(WAIT_S)  # track 1 is with the server; the queue is empty
    with caplog.at_level(logging.WARNING):
        courier(_arrival(2))
        courier(_arrival(3))  # pushes track 2 out
    server.release.set()
    courier.close()
    assert server.posts == 2 and len(courier.sent) == 2 and courier.given_up == 1
    assert "track-2" in caplog.text and "queue full" in caplog.text
    assert MEMBER not in caplog.text


def test_an_arrival_that_waited_past_its_deadline_is_not_announced_late() -> None:
    clock = ManualClock()
    server = SlowServer(clock, takes_s=25)  # the first post takes longer than retry_for_s
    courier = _courier(server, clock)
    courier(_arrival(1))
    assert server.arrived.wait(WAIT_S)
    courier(_arrival(2))  # seen at t=0: by the time the courier is free it is t=25
    server.release.set()
    courier.close()
    assert server.posts == 1 and len(courier.sent) == 1 and courier.given_up == 1


def test_closing_stops_retrying_a_server_that_is_down() -> None:
    clock = ManualClock()
    client = IngestClient(
        "http://127.0.0.1:9",
        "slk_test",
        transport=httpx.MockTransport(lambda _: httpx.Response(503)),
    )
    poster = NoticePoster(
        client, retry_for_s=20, backoff=Backoff(initial=0.5, jitter="none"), clock=clock
    )
    courier = NoticeCourier(poster)
    courier(_arrival(1))
    courier.close()
    assert courier.sent == [] and courier.given_up == 1 and sum(clock.sleeps) <= 20
