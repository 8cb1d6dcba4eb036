"""What the MQTT tests share: the real Mosquitto's address, bounded waits, publishing.

The fixtures that start bridges on a test's own topic prefix are in ``conftest.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from storelens.ingest.mqtt import MqttBridge, publish_raw

__all__ = ["HOST", "PORT", "MakeBridge", "publish", "topic", "wait_for"]

HOST, PORT = "127.0.0.1", 1883

MakeBridge = Callable[..., MqttBridge]


def wait_for(check: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def topic(prefix: str, event: dict[str, Any]) -> str:
    return f"{prefix}/{event['store_id']}/{event['source']}/{event['type']}"


def publish(prefix: str, items: Sequence[dict[str, Any]]) -> None:
    """Each event on its own topic, one message each."""
    publish_raw(HOST, PORT, [(topic(prefix, e), orjson.dumps(e)) for e in items])
