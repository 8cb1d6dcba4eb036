"""Alert webhook delivery against a real HTTP server on 127.0.0.1 (no mocked network)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from storelens.core.retry import ManualClock
from storelens.staff.webhook import Webhook


class UpperBound(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return b


class Receiver(ThreadingHTTPServer):
    def __init__(self, failures_first: int) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures_left = failures_first
        self.attempts = 0
        super().__init__(("127.0.0.1", 0), Handler)


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.attempts += 1
        if self.server.failures_left > 0:
            self.server.failures_left -= 1
            self.send_response(503)
        else:
            self.server.received.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def _serve(failures_first: int) -> Iterator[Receiver]:
    server = Receiver(failures_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from _serve(0)


@pytest.fixture
def flaky_receiver() -> Iterator[Receiver]:
    yield from _serve(2)


def _wait(predicate: Any, timeout: float = 30) -> None:
    """Wait for the delivery thread to reach a state (bounded: a bug fails, not hangs)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the webhook thread did not get there"
        time.sleep(0.002)


def test_alerts_are_posted_in_order(receiver: Receiver) -> None:
    hook = Webhook(f"http://127.0.0.1:{receiver.server_port}/hook", clock=ManualClock())
    hook.publish(
        [
            {"rule_id": "long-queue", "state": "raised"},
            {"rule_id": "long-queue", "state": "cleared"},
        ]
    )
    _wait(lambda: hook.delivered == 2)
    hook.close()
    assert [m["state"] for m in receiver.received] == ["raised", "cleared"]
    assert hook.failed == 0


def test_server_errors_are_retried(flaky_receiver: Receiver) -> None:
    clock = ManualClock()
    hook = Webhook(
        f"http://127.0.0.1:{flaky_receiver.server_port}/hook", clock=clock, rng=UpperBound()
    )
    hook.publish([{"rule_id": "slow-orders", "state": "raised"}])
    _wait(lambda: hook.delivered == 1)
    hook.close()
    assert flaky_receiver.attempts == 3  # two 503s, then accepted
    assert flaky_receiver.received == [{"rule_id": "slow-orders", "state": "raised"}]
    assert clock.sleeps == [0.5, 1.0]


def test_unreachable_webhook_gives_up_without_blocking_the_caller() -> None:
    gate = threading.Event()
    tries: list[str] = []

    def unreachable(request: httpx.Request) -> httpx.Response:
        gate.wait()  # a dead host that takes its time to say so
        tries.append(request.url.path)
        raise httpx.ConnectError("connection refused", request=request)

    clock = ManualClock()
    hook = Webhook(
        "http://pager.example.test/hook",
        attempts=3,
        transport=httpx.MockTransport(unreachable),
        clock=clock,
        rng=UpperBound(),
    )
    hook.publish([{"rule_id": "x", "state": "raised"}])  # returns while delivery hangs
    assert (hook.delivered, hook.failed, tries) == (0, 0, [])
    gate.set()
    _wait(lambda: hook.failed == 1)
    hook.close()
    assert (hook.delivered, hook.failed) == (0, 1)
    assert tries == ["/hook"] * 3
    assert clock.sleeps == [0.5, 1.0]  # no wait after the last try


def test_retry_after_is_honoured_and_4xx_is_final() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "12"}),
            httpx.Response(503, headers={"Retry-After": "86400"}),
            httpx.Response(400),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers)

    clock = ManualClock()
    hook = Webhook(
        "https://pager.example.test/hook",
        transport=httpx.MockTransport(handler),
        clock=clock,
        max_retry_after_s=60,
    )
    hook.publish([{"rule_id": "x", "state": "raised"}])
    _wait(lambda: hook.failed == 1)
    hook.close()
    assert clock.sleeps == [12.0, 60.0]  # the server's wait, capped; a 400 is not retried
    assert hook.delivered == 0
