"""Fixtures for the MQTT bridge tests: the real broker, a prefix per test, bridges.

Every test uses its own topic prefix and client id, so tests never see each other's
messages or sessions.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.ingest.mqtt_broker import HOST, PORT, MakeBridge

from storelens.ingest.mqtt import MqttBridge
from storelens.ingest.mqtt_messages import BridgeConfig
from storelens.storage.eventlog import EventLog


@pytest.fixture
def broker(mosquitto: tuple[str, int]) -> None:
    assert mosquitto == (HOST, PORT)


@pytest.fixture
def prefix() -> str:
    return f"sltest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_bridge(broker: None, engine: Engine, prefix: str) -> Iterator[MakeBridge]:
    """Start bridges on this test's prefix; each stopped at the end of the test."""
    bridges: list[MqttBridge] = []

    def _make(
        client_id: str | None = None, *, log: EventLog | None = None, **overrides: Any
    ) -> MqttBridge:
        values: dict[str, Any] = {
            "host": HOST,
            "port": PORT,
            "topic_prefix": prefix,
            "client_id": client_id or f"sltest-{uuid.uuid4().hex[:12]}",
            "session_expiry_s": 120,  # the broker forgets test sessions soon
            "flush_ms": 50,
        }
        values.update(overrides)
        bridge = MqttBridge(BridgeConfig(**values), log or EventLog(engine))
        bridges.append(bridge)
        bridge.start()
        assert bridge.wait_ready(10), "the bridge did not subscribe within 10s"
        return bridge

    yield _make
    for bridge in bridges:
        bridge.stop(timeout=2)
