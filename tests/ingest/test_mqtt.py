"""The MQTT bridge against the real Mosquitto: at-least-once into an idempotent log.

Every test uses its own topic prefix and client id (fixtures in ``conftest.py``), so
tests never see each other's messages or sessions; waits are bounded polls, never
fixed sleeps.
"""

from __future__ import annotations

import contextlib
import importlib
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy import exc as sa_exc
from tests.ingest.mqtt_broker import HOST, PORT, MakeBridge, publish, topic, wait_for

from storelens import accounts
from storelens.api.app import create_app
from storelens.config import Settings
from storelens.core.errors import ConfigError, MissingExtra
from storelens.core.events import Event, event_adapter
from storelens.ingest.deadletters import (
    MAX_BODY_BYTES,
    count_dead_letters,
    list_dead_letters,
    record_dead_letter,
)
from storelens.ingest.mqtt import MqttBridge, publish_events, publish_raw
from storelens.ingest.mqtt_messages import (
    DEFAULT_MAX_ITEMS,
    DEFAULT_MQTT_TYPES,
    BridgeConfig,
    ReceivedMessage,
    parse_message,
    parse_mqtt_url,
)
from storelens.ingest.mqtt_writer import store_messages
from storelens.storage.db import create_engine
from storelens.storage.eventlog import AppendResult, EventLog, EventQuery, Senders
from storelens.storage.tables import events

RawEvent = Callable[..., dict[str, Any]]


def event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


# -- the happy path --------------------------------------------------------------------


@pytest.mark.mqtt
def test_events_on_their_topics_are_stored_once(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = make_bridge()
    sent = [
        raw_event("sensor.espresso_shot", source="espresso-1"),
        raw_event("pos.order_paid", source="pos-1"),
        raw_event("order.ready", source="kds"),
        raw_event("vision.zone_enter", source="cam-1"),
    ]
    publish(prefix, sent)
    wait_for(lambda: event_count(engine) == 4, what="4 events")
    stored = EventLog(engine).query(EventQuery())
    assert sorted(str(e.id) for e in stored) == sorted(e["id"] for e in sent)
    assert {e.type for e in stored} == {e["type"] for e in sent}
    wait_for(lambda: bridge.stats.appended == 4, what="counters")
    s = bridge.stats
    assert (s.received, s.duplicates, s.dead_lettered, s.connected) == (4, 0, 0, True)


@pytest.mark.mqtt
def test_same_event_twice_is_stored_once(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = make_bridge()
    event = raw_event("sensor.espresso_shot")
    publish(prefix, [event])
    publish(prefix, [event])
    wait_for(lambda: bridge.stats.appended + bridge.stats.duplicates == 2, what="both copies")
    assert event_count(engine) == 1
    assert (bridge.stats.appended, bridge.stats.duplicates) == (1, 1)


@pytest.mark.mqtt
def test_topic_fills_store_source_and_type(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    make_bridge()
    bare = raw_event("sensor.espresso_shot")
    for key in ("store_id", "source", "type"):
        del bare[key]
    nulls = raw_event("staff.clock_in", store_id=None)
    publish_raw(
        HOST,
        PORT,
        [
            (f"{prefix}/cafe-07/espresso-2/sensor.espresso_shot", orjson.dumps(bare)),
            (f"{prefix}/cafe-07/pos-1/staff.clock_in", orjson.dumps(nulls)),
        ],
    )
    wait_for(lambda: event_count(engine) == 2, what="2 events")
    stored = {str(e.id): e for e in EventLog(engine).query(EventQuery())}
    shot = stored[bare["id"]]
    assert (shot.store_id, shot.source, shot.type) == (
        "cafe-07",
        "espresso-2",
        "sensor.espresso_shot",
    )
    clock = stored[nulls["id"]]
    # a body may name its own source (a bridge relaying for a register), not another store
    assert (clock.store_id, clock.source) == ("cafe-07", "test")


@pytest.mark.mqtt
def test_an_array_body_is_one_message_of_many_events(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = make_bridge(batch_size=3)
    batch = [raw_event("order.started", source="kds") for _ in range(10)]
    for e in batch:
        e["payload"] = {**e["payload"], "order_id": f"o-{uuid.uuid4().hex[:6]}"}
    publish_events(HOST, PORT, f"{prefix}/cafe-01/kds/order.started", batch, as_array=True)
    wait_for(lambda: event_count(engine) == 10, what="10 events")
    assert bridge.stats.received == 1


# -- bad input -------------------------------------------------------------------------


@pytest.mark.mqtt
def test_malformed_messages_are_dead_lettered_and_the_bridge_goes_on(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = make_bridge()
    where = f"{prefix}/cafe-01/espresso-1/sensor.espresso_shot"
    bad: list[tuple[str, bytes | str]] = [
        (where, b'{"id": "broken'),
        (where, b"\xff\xfe{}"),
        (where, b"42"),
        (where, b"null"),
        (f"{prefix}/cafe-01//sensor.espresso_shot", orjson.dumps(raw_event())),
    ]
    publish_raw(HOST, PORT, bad)
    good = raw_event("sensor.espresso_shot", source="espresso-1")
    publish(prefix, [good])
    wait_for(lambda: event_count(engine) == 1, what="the good event")
    wait_for(lambda: count_dead_letters(engine) == 5, what="5 dead letters")
    reasons = {d.body: d.reason for d in list_dead_letters(engine, limit=10)}
    assert reasons['{"id": "broken'].startswith("body is not valid JSON")
    assert "not valid UTF-8" in reasons["\ufffd\ufffd{}"]
    assert "not int" in reasons["42"]
    assert "not null" in reasons["null"]
    assert any("does not match" in r for r in reasons.values())
    assert all(d.channel == "mqtt" for d in list_dead_letters(engine, limit=10))
    wait_for(lambda: (bridge.stats.dead_lettered, bridge.stats.appended) == (5, 1), what="counters")


@pytest.mark.mqtt
def test_invalid_envelope_reason_names_the_field(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    make_bridge()
    bad = raw_event("pos.order_paid")
    bad["payload"]["lines"][0]["qty"] = 0
    publish(prefix, [bad])
    wait_for(lambda: count_dead_letters(engine) == 1, what="the dead letter")
    [dead] = list_dead_letters(engine)
    assert "payload.lines.0.qty: Input should be greater than 0" in dead.reason
    assert bad["id"] in dead.reason
    assert dead.origin == topic(prefix, bad)
    assert orjson.loads(dead.body) == bad  # as received, ready to replay once fixed
    assert event_count(engine) == 0


@pytest.mark.mqtt
def test_body_contradicting_its_topic_is_refused(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    make_bridge()
    other_store = raw_event("sensor.espresso_shot", store_id="cafe-02")
    other_type = raw_event("order.ready")
    publish_raw(
        HOST,
        PORT,
        [
            (f"{prefix}/cafe-01/test/sensor.espresso_shot", orjson.dumps(other_store)),
            (f"{prefix}/cafe-01/test/order.started", orjson.dumps(other_type)),
        ],
    )
    wait_for(lambda: count_dead_letters(engine) == 2, what="2 dead letters")
    reasons = {d.reason for d in list_dead_letters(engine)}
    assert reasons == {
        "body contradicts its topic: store_id is 'cafe-02' but the topic says 'cafe-01'",
        "body contradicts its topic: type is 'order.ready' but the topic says 'order.started'",
    }
    assert event_count(engine) == 0


@pytest.mark.mqtt
def test_array_with_one_bad_item_keeps_the_good_ones(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = make_bridge()
    items: list[Any] = [raw_event("order.ready", source="kds") for _ in range(3)]
    items[1]["ts"] = "yesterday"
    items.append("not an event")
    publish_raw(HOST, PORT, [(f"{prefix}/cafe-01/kds/order.ready", orjson.dumps(items))])
    wait_for(lambda: count_dead_letters(engine) == 2, what="2 dead letters")
    wait_for(lambda: event_count(engine) == 2, what="2 events")
    stored = {str(e.id) for e in EventLog(engine).query(EventQuery())}
    assert stored == {items[0]["id"], items[2]["id"]}
    reasons = sorted(d.reason for d in list_dead_letters(engine))
    assert reasons[0].startswith("item 2 of 4: invalid event") and "ts:" in reasons[0]
    assert reasons[1].startswith("item 4 of 4: an event must be a JSON object")
    assert bridge.stats.received == 1


@pytest.mark.mqtt
def test_a_nul_character_is_a_dead_letter_on_both_backends_and_blocks_nothing(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    """PostgreSQL's jsonb refuses NUL characters (SQLite stored them): validation now
    refuses them on both, so the same message means the same thing everywhere."""
    make_bridge(event_types=DEFAULT_MQTT_TYPES | {"web.event"})
    nul = raw_event("web.event", store_id=None, source="web")
    nul["payload"]["page"] = "/a\u0000b"
    good = raw_event("web.event", source="web")
    where = f"{prefix}/cafe-01/web/web.event"
    publish_raw(HOST, PORT, [(where, orjson.dumps(e)) for e in (nul, good)])
    wait_for(lambda: event_count(engine) + count_dead_letters(engine) == 2, what="both handled")
    ids = {str(e.id) for e in EventLog(engine).query(EventQuery())}
    assert ids == {good["id"]}
    [dead] = list_dead_letters(engine)
    assert "payload.page must not contain a NUL character" in dead.reason
    assert "\x00" not in dead.body


# -- delivery guarantees ---------------------------------------------------------------


@pytest.mark.mqtt
def test_messages_published_while_stopped_arrive_once_after_restart(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    client_id = f"sltest-{uuid.uuid4().hex[:12]}"
    first = make_bridge(client_id)
    before = [raw_event("sensor.espresso_shot") for _ in range(5)]
    publish(prefix, before)
    wait_for(lambda: event_count(engine) == 5, what="the first 5 events")
    first.stop()
    assert not first.stats.connected

    meanwhile = [raw_event("sensor.espresso_shot") for _ in range(50)]
    publish(prefix, meanwhile)
    assert event_count(engine) == 5

    second = make_bridge(client_id)
    wait_for(lambda: event_count(engine) == 55, what="the 50 queued events")
    wait_for(lambda: second.stats.appended == 50, what="counters")
    second.stop()
    assert event_count(engine) == 55
    assert second.stats.duplicates == 0 and second.stats.dead_lettered == 0


class _BrokenLog(EventLog):
    """A log whose database is away: every append fails as a lost connection would."""

    def append_in(
        self, conn: Connection, batch: Sequence[Event], sent_by: Senders = None
    ) -> AppendResult:
        raise sa_exc.OperationalError("INSERT INTO events", {}, Exception("database is away"))


@pytest.mark.mqtt
def test_uncommitted_messages_are_not_acked_and_come_back(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    client_id = f"sltest-{uuid.uuid4().hex[:12]}"
    broken = make_bridge(client_id, log=_BrokenLog(engine))
    sent = [raw_event("sensor.espresso_shot") for _ in range(5)]
    publish(prefix, sent)
    wait_for(lambda: broken.stats.received == 5, what="delivery to the broken bridge")
    wait_for(lambda: broken.stats.store_failures >= 1, what="a failed commit")
    broken.stop(timeout=0.5)  # gives up: nothing was committed, so nothing is acked
    assert event_count(engine) == 0

    healthy = make_bridge(client_id)
    wait_for(lambda: event_count(engine) == 5, what="redelivery")
    assert {str(e.id) for e in EventLog(engine).query(EventQuery())} == {e["id"] for e in sent}
    wait_for(lambda: healthy.stats.appended == 5, what="counters")


class _Proxy:
    """A TCP relay to the broker on 127.0.0.1 that a test can cut, to play a broker
    that goes away and comes back."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)  # so the accept loop notices close()
        self.port: int = self.server.getsockname()[1]
        self.refuse = False
        self.closed = False
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                downstream, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.refuse or self.closed:
                downstream.close()
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                downstream.close()
                continue
            with self.lock:
                self.sockets += [downstream, upstream]
                if self.closed:
                    downstream.close()
                    upstream.close()
                    continue
            for a, b in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed = True
        self.thread.join(5)
        self.server.close()
        self.cut()
        with self.lock:
            for s in self.sockets:
                s.close()


@pytest.mark.mqtt
def test_reconnects_after_losing_the_broker(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    proxy = _Proxy((HOST, PORT))
    try:
        bridge = make_bridge(port=proxy.port, reconnect_min_s=0.05, reconnect_max_s=0.5)
        publish(prefix, [raw_event("sensor.espresso_shot")])
        wait_for(lambda: event_count(engine) == 1, what="the first event")

        proxy.refuse = True
        proxy.cut()
        wait_for(lambda: not bridge.stats.connected, what="the bridge to notice")
        publish(prefix, [raw_event("sensor.espresso_shot") for _ in range(10)])
        failures = bridge.stats.connect_failures
        wait_for(lambda: bridge.stats.connect_failures >= failures + 3, what="refused reconnects")
        assert event_count(engine) == 1

        proxy.refuse = False
        wait_for(lambda: event_count(engine) == 11, what="the events sent while away")
        # the first event may come again if the cut beat its ack: a duplicate, not a row
        wait_for(lambda: bridge.stats.appended == 11, what="counters")
        assert bridge.stats.connected and event_count(engine) == 11
        bridge.stop()
    finally:
        proxy.close()


# -- pieces without a broker -----------------------------------------------------------


def test_parse_mqtt_url() -> None:
    assert parse_mqtt_url("mqtt://127.0.0.1") == ("127.0.0.1", 1883, None, None, False)
    assert parse_mqtt_url("mqtt://bridge:s%40cret@localhost:1884") == (
        "localhost",
        1884,
        "bridge",
        "s@cret",
        False,
    )
    assert parse_mqtt_url("mqtts://broker.example") == ("broker.example", 8883, None, None, True)
    assert parse_mqtt_url("ssl://b:pw@10.0.0.5:9883").tls
    with pytest.raises(ConfigError, match="WebSockets") as info:
        parse_mqtt_url("wss://bridge:hunter2@127.0.0.1")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match="not an MQTT URL") as info:
        parse_mqtt_url("http://bridge:hunter2@127.0.0.1")
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError, match="topic prefix"):
        BridgeConfig(topic_prefix="storelens/#")
    with pytest.raises(ConfigError, match="needs an mqtts:// URL"):
        BridgeConfig(ca_file=Path(__file__))
    with pytest.raises(ConfigError, match="is not a readable file"):
        BridgeConfig(tls=True, ca_file=Path("/nonexistent/ca.pem"))


def test_bridge_config_takes_tls_from_settings(settings: Any, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    configured = settings.model_copy(
        update={"mqtt_url": "mqtts://bridge:pw@broker.example", "mqtt_ca_file": ca}
    )
    config = BridgeConfig.from_settings(configured)
    assert (config.host, config.port, config.tls, config.ca_file) == (
        "broker.example",
        8883,
        True,
        ca,
    )
    assert config.client_cert is None
    assert "pw" not in repr(config)


def test_a_missing_mqtt_extra_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without paho the module still imports; using the bridge says what to install."""
    for name in [m for m in sys.modules if m == "paho" or m.startswith("paho.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "paho", None)  # makes "import paho..." fail
    monkeypatch.delitem(sys.modules, "storelens.ingest.mqtt")
    fresh = importlib.import_module("storelens.ingest.mqtt")
    with pytest.raises(MissingExtra, match=r"pip install 'storelens\[mqtt\]'"):
        fresh.MqttBridge(BridgeConfig(), EventLog(create_engine("sqlite://")))
    with pytest.raises(MissingExtra, match="mqtt"):
        fresh.publish_raw(HOST, PORT, [])


def test_parse_message_keeps_each_item_as_received(raw_event: RawEvent) -> None:
    a, b = raw_event(), raw_event()
    del a["store_id"]
    items, dead = parse_message("p", "p/cafe-01/pos/pos.order_paid", orjson.dumps([a, 7, b]))
    assert [i.envelope["store_id"] for i in items] == ["cafe-01", "cafe-01"]
    assert orjson.loads(items[0].body) == a and "store_id" not in orjson.loads(items[0].body)
    assert [d.reason for d in dead] == ["item 2 of 3: an event must be a JSON object, not int"]


def _message(where: str, event: dict[str, Any]) -> ReceivedMessage:
    return ReceivedMessage(where, orjson.dumps(event), mid=1, qos=1, connection=1)


def test_a_device_topic_cannot_carry_consent_or_customer_records(
    engine: Engine, raw_event: RawEvent
) -> None:
    """The broker's ACL lets a device write under its store's prefix, and the type is the
    topic's last level: an espresso machine's password could publish consent grants and
    customer records, which over HTTP need a key made for them. Dead letters now."""
    prefix = "p"
    shot = raw_event("sensor.espresso_shot", source="espresso-1")
    consent = raw_event("consent.changed", source="espresso-1")
    record = raw_event("customer.upserted", source="espresso-1")
    batch = [
        _message(f"{prefix}/cafe-01/espresso-1/{e['type']}", e) for e in (shot, consent, record)
    ]
    outcome = store_messages(EventLog(engine), prefix, batch)
    assert (outcome.appended, outcome.dead_lettered) == (1, 2)
    assert [str(e.id) for e in EventLog(engine).query(EventQuery())] == [shot["id"]]
    reasons = [d.reason for d in list_dead_letters(engine)]
    assert {r.split(": ", 1)[0] for r in reasons} == {
        f"invalid event {consent['id']}",
        f"invalid event {record['id']}",
    }
    assert all("MQTT bridge does not take" in r for r in reasons)


def test_an_id_another_store_took_is_a_dead_letter_not_a_duplicate(
    engine: Engine, raw_event: RawEvent
) -> None:
    """Store A's device had the id first; store B's event under it used to be counted a
    duplicate and acked, so it was gone. It is a dead letter now, body kept, and counted."""
    log = EventLog(engine)
    theirs = raw_event("sensor.espresso_shot", store_id="cafe-01", source="espresso-1")
    log.append([event_adapter.validate_python(theirs)])
    ours = {**theirs, "store_id": "cafe-02"}
    shot = raw_event("sensor.espresso_shot", store_id="cafe-02", source="espresso-1")
    topic = "p/{}/espresso-1/sensor.espresso_shot"
    batch = [
        _message(topic.format("cafe-02"), ours),
        _message(topic.format("cafe-02"), shot),
        _message(topic.format("cafe-01"), theirs),  # store A's own resend: a duplicate
    ]
    outcome = store_messages(log, "p", batch)
    assert (outcome.appended, outcome.duplicates, outcome.dead_lettered) == (1, 1, 1)
    assert outcome.conflicts == 1 and outcome.unstored == []
    [dead] = list_dead_letters(engine)
    assert dead.reason.startswith(f"invalid event {ours['id']}: id: this id already names")
    assert orjson.loads(dead.body) == ours
    assert [e.store_id for e in log.query(EventQuery())] == ["cafe-01", "cafe-02"]


def test_other_event_types_are_taken_when_configured(
    settings: Settings, engine: Engine, raw_event: RawEvent
) -> None:
    configured = settings.model_copy(
        update={"mqtt_url": "mqtt://broker", "mqtt_event_types": ["web.event"]}
    )
    config = BridgeConfig.from_settings(configured)
    assert config.event_types == {"web.event"}
    assert BridgeConfig().event_types == DEFAULT_MQTT_TYPES
    assert "consent.changed" not in DEFAULT_MQTT_TYPES
    view = raw_event("web.event", source="web")
    shot = raw_event("sensor.espresso_shot", source="espresso-1")
    batch = [_message(f"p/cafe-01/x/{e['type']}", e) for e in (view, shot)]
    outcome = store_messages(EventLog(engine), "p", batch, event_types=config.event_types)
    assert (outcome.appended, outcome.dead_lettered) == (1, 1)
    with pytest.raises(ConfigError, match=r"web\.evnt"):
        BridgeConfig(event_types=frozenset({"web.evnt"}))


def _shots(n: int, raw_event: RawEvent) -> list[dict[str, Any]]:
    return [raw_event("sensor.espresso_shot", source="espresso-1") for _ in range(n)]


def test_an_array_longer_than_the_limit_is_one_dead_letter(
    engine: Engine, raw_event: RawEvent
) -> None:
    """An array body had no bound: one message of a million events was parsed,
    validated and committed in one go (the HTTP route refuses more than
    STORELENS_MAX_BATCH with a 413). Over the limit, the whole message is one dead
    letter saying why; at the limit it is stored, and its neighbours in the batch too."""
    where = "p/cafe-01/espresso-1/sensor.espresso_shot"
    too_long = ReceivedMessage(where, orjson.dumps(_shots(4, raw_event)), 1, 1, 1)
    at_limit = ReceivedMessage(where, orjson.dumps(_shots(3, raw_event)), 2, 1, 1)
    single = _message(where, raw_event("sensor.espresso_shot", source="espresso-1"))
    outcome = store_messages(EventLog(engine), "p", [too_long, at_limit, single], max_items=3)
    assert (outcome.appended, outcome.dead_lettered) == (4, 1)
    [dead] = list_dead_letters(engine)
    assert dead.reason == (
        "body holds 4 events; at most 3 are taken in one message "
        "(STORELENS_MQTT_MAX_ITEMS): split the array"
    )
    assert orjson.loads(dead.body) == orjson.loads(too_long.payload)
    assert outcome.unstored == []  # dead-lettered, so acked: the broker does not resend it


def test_the_message_limit_follows_the_http_batch_limit(settings: Settings) -> None:
    base = settings.model_copy(update={"mqtt_url": "mqtt://broker"})
    assert BridgeConfig().max_items == DEFAULT_MAX_ITEMS == Settings().max_batch
    assert BridgeConfig.from_settings(base).max_items == base.max_batch
    smaller = base.model_copy(update={"max_batch": 500})
    assert BridgeConfig.from_settings(smaller).max_items == 500
    own = base.model_copy(update={"mqtt_max_items": 50})
    assert BridgeConfig.from_settings(own).max_items == 50
    with pytest.raises(ConfigError, match="STORELENS_MQTT_MAX_ITEMS"):
        BridgeConfig(max_items=0)


@pytest.mark.mqtt
def test_the_bridge_dead_letters_an_over_long_array(
    make_bridge: MakeBridge, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = make_bridge(max_items=5)
    where = f"{prefix}/cafe-01/espresso-1/sensor.espresso_shot"
    publish_events(HOST, PORT, where, _shots(6, raw_event), as_array=True)
    publish_events(HOST, PORT, where, _shots(5, raw_event), as_array=True)
    wait_for(lambda: event_count(engine) == 5, what="the 5-event message")
    wait_for(lambda: count_dead_letters(engine) == 1, what="the 6-event message's dead letter")
    [dead] = list_dead_letters(engine)
    assert dead.reason.startswith("body holds 6 events; at most 5")
    wait_for(lambda: bridge.stats.dead_lettered == 1, what="the counter")


def test_dead_letter_body_is_capped(engine: Engine) -> None:
    with engine.begin() as conn:
        record_dead_letter(conn, "mqtt", "t" * 2000, "too big", b"x" * (MAX_BODY_BYTES * 2))
        record_dead_letter(conn, "edge", None, "nul", "a\x00b")
    [big] = list_dead_letters(engine, channel="mqtt")
    [nul] = list_dead_letters(engine, 1, 0, "edge")
    assert len(big.body.encode()) <= MAX_BODY_BYTES
    assert big.body.startswith("xxx")
    assert big.body.endswith(f"[truncated: {MAX_BODY_BYTES * 2} bytes received, first 65536 kept]")
    assert big.origin is not None and len(big.origin) == 512
    assert nul.body == "a\\u0000b"
    assert count_dead_letters(engine) == 2 and count_dead_letters(engine, "edge") == 1


def test_dead_letters_endpoint_is_for_admins(settings: Settings, engine: Engine) -> None:
    client = TestClient(create_app(settings, engine=engine, run_projections=False))

    def login(role: str) -> dict[str, str]:
        username, password = f"{role}-{uuid.uuid4().hex[:6]}", "correct horse battery staple"
        with engine.begin() as conn:
            accounts.create_user(conn, username, password, accounts.Role(role))
        r = client.post("/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    with engine.begin() as conn:
        record_dead_letter(conn, "mqtt", "storelens/cafe-01/x/y", "body is not valid JSON", b"{")
        record_dead_letter(conn, "edge", "outbox-3", "invalid event", b"{}")

    r = client.get("/v1/dead-letters", headers=login("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == 2
    assert [d["channel"] for d in body["data"]] == ["edge", "mqtt"]  # newest first
    r = client.get("/v1/dead-letters?channel=mqtt&limit=1", headers=login("admin"))
    assert r.json()["count"] == 1
    [row] = r.json()["data"]
    assert (row["origin"], row["reason"], row["body"]) == (
        "storelens/cafe-01/x/y",
        "body is not valid JSON",
        "{",
    )
    assert client.get("/v1/dead-letters", headers=login("analyst")).status_code == 403
    assert client.get("/v1/dead-letters").status_code == 401


def test_serve_runs_the_bridge_when_configured(
    broker: None, prefix: str, settings: Any, engine: Any, raw_event: Any
) -> None:
    """With STORELENS_MQTT_URL set, the API process bridges MQTT into its own log."""
    from fastapi.testclient import TestClient

    from storelens.api.app import create_app

    configured = settings.model_copy(
        update={
            "mqtt_url": f"mqtt://{HOST}:{PORT}",
            "mqtt_topic_prefix": prefix,
            "mqtt_client_id": f"serve-{prefix}",
        }
    )
    event = raw_event()
    with TestClient(create_app(configured, engine=engine, run_projections=False)):
        deadline = time.monotonic() + 10
        publish(prefix, [event])
        while time.monotonic() < deadline and not EventLog(engine).read_after(0):
            time.sleep(0.05)
    assert [str(e.id) for e in EventLog(engine).read_after(0)] == [event["id"]]


# -- TLS: a Mosquitto of the test's own with a private CA ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class TlsBroker:
    plain_port: int
    tls_port: int
    ca_file: Path


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    """Mosquitto with a plain listener (for publishing) and a TLS listener whose
    certificate, for 127.0.0.1, is signed by a CA made for this test."""
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(binary).exists(), "the mosquitto broker binary is needed for the TLS tests"
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=storelens test CA", cwd=d)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.cnf",
             cwd=d)  # fmt: skip
    plain, tls = _free_port(), _free_port()
    (d / "mosquitto.conf").write_text(
        "user root\npersistence false\nlog_dest stderr\nallow_anonymous true\n"
        f"listener {plain} 127.0.0.1\n"
        f"listener {tls} 127.0.0.1\n"
        f"cafile {d / 'ca.pem'}\ncertfile {d / 'server.pem'}\nkeyfile {d / 'server.key'}\n"
    )
    with (d / "mosquitto.log").open("wb") as log:
        proc = subprocess.Popen([binary, "-c", str(d / "mosquitto.conf")], stderr=log)
    try:

        def listening() -> bool:
            assert proc.poll() is None, (d / "mosquitto.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", tls), timeout=1).close()
                socket.create_connection(("127.0.0.1", plain), timeout=1).close()
            except OSError:
                return False
            return True

        wait_for(listening, what="the TLS broker to listen")
        yield TlsBroker(plain, tls, d / "ca.pem")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _tls_bridge(broker: TlsBroker, engine: Engine, prefix: str, **tls: Any) -> MqttBridge:
    config = BridgeConfig(
        host="127.0.0.1",
        port=broker.tls_port,
        topic_prefix=prefix,
        client_id=f"sltest-{uuid.uuid4().hex[:12]}",
        flush_ms=50,
        tls=True,
        **tls,
    )
    return MqttBridge(config, EventLog(engine))


@pytest.mark.mqtt
def test_mqtts_bridge_checks_the_broker_certificate_and_delivers(
    tls_broker: TlsBroker, engine: Engine, prefix: str, raw_event: RawEvent
) -> None:
    bridge = _tls_bridge(tls_broker, engine, prefix, ca_file=tls_broker.ca_file)
    bridge.start()
    try:
        assert bridge.wait_ready(30), "the bridge did not subscribe over TLS"
        event = raw_event("sensor.espresso_shot")
        publish_raw(HOST, tls_broker.plain_port, [(topic(prefix, event), orjson.dumps(event))])
        wait_for(lambda: event_count(engine) == 1, what="the event sent over TLS")
        assert [str(e.id) for e in EventLog(engine).query(EventQuery())] == [event["id"]]
    finally:
        bridge.stop(timeout=2)


@pytest.mark.mqtt
def test_mqtts_bridge_refuses_a_broker_its_cas_do_not_vouch_for(
    tls_broker: TlsBroker, engine: Engine, prefix: str
) -> None:
    bridge = _tls_bridge(tls_broker, engine, prefix)  # system CAs only: the test CA is unknown
    bridge.start()
    try:
        wait_for(lambda: bridge.stats.connect_failures >= 2, what="refused TLS handshakes")
        assert not bridge.stats.connected
        assert not bridge.wait_ready(0)
    finally:
        bridge.stop(timeout=2)
