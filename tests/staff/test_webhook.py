"""Alert webhook delivery against a real HTTP server on 127.0.0.1 (no mocked network)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from storelens.staff.webhook import Webhook


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


def _wait(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_alerts_are_posted_in_order(receiver: Receiver) -> None:
    hook = Webhook(f"http://127.0.0.1:{receiver.server_port}/hook", backoff_s=0.01)
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
    hook = Webhook(f"http://127.0.0.1:{flaky_receiver.server_port}/hook", backoff_s=0.01)
    hook.publish([{"rule_id": "slow-orders", "state": "raised"}])
    _wait(lambda: hook.delivered == 1)
    hook.close()
    assert flaky_receiver.attempts == 3  # two 503s, then accepted
    assert flaky_receiver.received == [{"rule_id": "slow-orders", "state": "raised"}]


def test_unreachable_webhook_gives_up_without_blocking() -> None:
    hook = Webhook(
        "http://127.0.0.1:9/nothing-listens-here", attempts=2, backoff_s=0.01, timeout_s=1
    )
    start = time.monotonic()
    hook.publish([{"rule_id": "x", "state": "raised"}])  # returns at once
    assert time.monotonic() - start < 0.5
    _wait(lambda: hook.failed == 1)
    hook.close()
    assert (hook.delivered, hook.failed) == (0, 1)
