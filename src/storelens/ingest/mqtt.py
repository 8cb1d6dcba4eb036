"""The MQTT bridge: device messages into the event log, at least once, never twice.

Devices publish to ``{prefix}/{store_id}/{source}/{type}`` with QoS 1; the body is
one event envelope or a JSON array of them, and the topic fills in whatever of
``store_id``, ``source`` and ``type`` the body leaves out.

Why it is built the way it is:

* **Acks follow commits.** Messages are acknowledged (``PUBACK``) only after their
  events, or their dead letters, are committed. A crash in between means the broker
  redelivers, and the log's idempotency by event id turns that into a duplicate
  count instead of a second row. The persistent session (stable client id,
  ``clean_start=False``, a session expiry) makes the broker hold QoS-1 messages
  published while the bridge is down.
* **Two threads, one job each.** The network thread only moves bytes: it queues
  incoming messages and sends the acks the writer hands back. The writer thread
  parses, validates and commits in micro-batches (N messages or T ms, one
  transaction each), so a slow database never stalls keepalives.
* **Acks are fenced by connection.** Packet ids belong to a connection; an ack
  for a message received on an earlier connection is dropped (the broker resends
  that message on the new one). Only the network thread sends acks, so the fence
  cannot race with a reconnect.
* **Bad input is data.** Anything that cannot become an event goes to
  ``dead_letters`` with the reason and is acked; one bad item in an array does not
  hold back its good neighbours, and a message the database refuses is isolated
  instead of blocking every batch after it.
"""

from __future__ import annotations

import logging
import queue
import random
import select
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import exc as sa_exc

from storelens.config import Settings
from storelens.core.errors import ConfigError
from storelens.ingest.batch import RejectedItem, validate_items
from storelens.ingest.deadletters import record_dead_letter
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

__all__ = [
    "CHANNEL",
    "BridgeConfig",
    "BridgeStats",
    "MqttBridge",
    "parse_message",
    "parse_mqtt_url",
    "publish_events",
    "publish_raw",
    "run_bridge",
    "topic_fields",
]

log = logging.getLogger(__name__)

CHANNEL = "mqtt"
DEFAULT_PORT = 1883
_POLL_S = 0.02  # how long the network thread waits in select before sending queued acks
_READ_BURST = 1000  # packets read back to back before acks and keepalive get a turn
_IDLE_S = 0.1  # how often an idle writer looks up to see whether it should stop
_MAX_ERRORS_IN_REASON = 20


def parse_mqtt_url(url: str) -> tuple[str, int, str | None, str | None]:
    """``mqtt://[user:password@]host[:port]`` as (host, port, username, password)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("mqtts", "ssl", "wss", "ws"):
        raise ConfigError(f"{scheme}:// is not supported yet: use mqtt://host:port")
    if scheme not in ("mqtt", "tcp"):
        raise ConfigError(f"not an MQTT URL: {url!r} (expected mqtt://host:port)")
    if not parts.hostname:
        raise ConfigError(f"MQTT URL {url!r} names no host")
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise ConfigError(f"MQTT URL {url!r} has a bad port") from exc
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port, username, password


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    topic_prefix: str = "storelens"
    client_id: str = "storelens-bridge"
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # kept out of logs
    batch_size: int = 500
    flush_ms: int = 200
    session_expiry_s: int = 7 * 24 * 3600  # how long the broker keeps messages for us
    keepalive_s: int = 30
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    # Unacked messages the broker may have in flight to us (MQTT v5 Receive Maximum).
    # Well above batch_size, so the next batch arrives while this one commits; the
    # broker's own queue (mosquitto: max_queued_messages, 1000) only starts beyond it.
    receive_maximum: int | None = None
    max_buffered_qos0: int = 10_000  # QoS 0 has no flow control; past this it is dropped

    def __post_init__(self) -> None:
        if any(c in self.topic_prefix for c in "+#") or not self.topic_prefix.strip("/"):
            raise ConfigError(f"MQTT topic prefix {self.topic_prefix!r} must be a plain topic")
        if not self.client_id:
            raise ConfigError("the MQTT client id must be set: the broker keeps our session by it")
        if self.batch_size < 1 or self.flush_ms < 1:
            raise ConfigError("MQTT batch size and flush interval must be positive")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BridgeConfig:
        if not settings.mqtt_url:
            raise ConfigError("STORELENS_MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
        host, port, username, password = parse_mqtt_url(settings.mqtt_url)
        values: dict[str, Any] = {
            "host": host,
            "port": port,
            "username": username,
            "password": password,
            "topic_prefix": settings.mqtt_topic_prefix,
            "client_id": settings.mqtt_client_id,
        }
        values.update(overrides)
        return cls(**values)

    @property
    def subscription(self) -> str:
        return f"{self.topic_prefix.rstrip('/')}/+/+/+"

    @property
    def in_flight(self) -> int:
        return min(65_535, self.receive_maximum or max(4 * self.batch_size, 1000))


@dataclass(slots=True)
class BridgeStats:
    """Running totals since start: messages received, events appended or found to be
    duplicates, dead letters written, QoS-0 messages dropped, and failed commits."""

    received: int = 0
    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    dropped: int = 0
    store_failures: int = 0
    connected: bool = False


# -- parsing (pure, so it is cheap to test and never touches the network) -------------


@dataclass(frozen=True, slots=True)
class _Item:
    envelope: dict[str, Any]
    label: str  # "" for a single-event body, "item 2 of 5: " in an array
    body: bytes  # what to dead-letter if validation refuses it


@dataclass(frozen=True, slots=True)
class _Dead:
    reason: str
    body: bytes


def topic_fields(prefix: str, topic: str) -> tuple[str, str, str] | None:
    """(store_id, source, type) from ``{prefix}/{store_id}/{source}/{type}``, else None."""
    head = prefix.rstrip("/") + "/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def _fill(item: dict[str, Any], fields: tuple[str, str, str]) -> str | None:
    """Fill envelope fields from the topic; the reason when the body contradicts it.

    ``source`` may differ: a POS bridge publishing on its own topic may relay events
    that name the register. A different store or type would file the event wrongly.
    """
    store_id, source, type_ = fields
    for key, value in (("store_id", store_id), ("type", type_), ("source", source)):
        given = item.get(key)
        if given is None:
            item[key] = value
        elif key != "source" and given != value:
            return f"{key} is {given!r} but the topic says {value!r}"
    return None


def parse_message(prefix: str, topic: str, payload: bytes) -> tuple[list[_Item], list[_Dead]]:
    """Split one message into envelopes to validate and reasons it (or items) are unusable."""
    fields = topic_fields(prefix, topic)
    if fields is None:
        reason = f"topic {topic!r} does not match {prefix}/{{store_id}}/{{source}}/{{type}}"
        return [], [_Dead(reason, payload)]
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [_Dead(f"body is not valid UTF-8 ({exc.reason} at byte {exc.start})", payload)]
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return [], [_Dead(f"body is not valid JSON: {exc}", payload)]
    if isinstance(body, dict):
        problem = _fill(body, fields)
        if problem is not None:
            return [], [_Dead(f"body contradicts its topic: {problem}", payload)]
        return [_Item(body, "", payload)], []
    if not isinstance(body, list):
        kind = type(body).__name__ if body is not None else "null"
        reason = f"body must be a JSON object or an array of objects, not {kind}"
        return [], [_Dead(reason, payload)]
    items: list[_Item] = []
    dead: list[_Dead] = []
    for i, item in enumerate(body):
        label = f"item {i + 1} of {len(body)}: "
        as_received = orjson.dumps(item)
        if not isinstance(item, dict):
            kind = type(item).__name__ if item is not None else "null"
            dead.append(_Dead(f"{label}an event must be a JSON object, not {kind}", as_received))
            continue
        problem = _fill(item, fields)
        if problem is not None:
            dead.append(_Dead(f"{label}body contradicts its topic: {problem}", as_received))
            continue
        items.append(_Item(item, label, as_received))
    return items, dead


def _rejection_reason(item: _Item, rejected: RejectedItem) -> str:
    errors = rejected.errors
    shown = "; ".join(f"{e.loc}: {e.msg}" for e in errors[:_MAX_ERRORS_IN_REASON])
    if len(errors) > _MAX_ERRORS_IN_REASON:
        shown += f"; … and {len(errors) - _MAX_ERRORS_IN_REASON} more"
    name = f" {rejected.id}" if rejected.id else ""
    return f"{item.label}invalid event{name}: {shown}"


# -- the bridge ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection delivered it: acks are only valid there


@dataclass(slots=True)
class _Outcome:
    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    unstored: list[_Message] = field(default_factory=list)  # neither stored nor dead-lettered


_TRANSIENT_NAMES = frozenset({"OperationalError", "InterfaceError"})


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying the whole batch (database away or busy), as opposed to a message
    the database will never accept. Raw driver errors count too: the PostgreSQL
    append path talks COPY to psycopg directly."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    # PEP 249 names these the same in every driver, and SQLAlchemy mirrors the names.
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


class MqttBridge:
    """Subscribes to the device topics and writes what arrives into ``event_log``.

    ``start()`` returns at once; the bridge connects (and reconnects, with backoff)
    in the background. ``stop()`` commits and acks what was received, then
    disconnects, leaving the session on the broker for the next start.
    """

    def __init__(self, config: BridgeConfig, event_log: EventLog) -> None:
        self.config = config
        self.event_log = event_log
        self._stats = BridgeStats()
        self._stats_lock = threading.Lock()
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._acks: queue.SimpleQueue[list[_Message]] = queue.SimpleQueue()
        self._connection = 0  # owned by the network thread
        self._backoff = config.reconnect_min_s
        self._closing = False  # set by stop(): new messages are left unacked for next time
        self._draining = threading.Event()
        self._abandon = threading.Event()
        self._net_stop = threading.Event()
        self._ready = threading.Event()
        self._started = False
        self._stopped = False
        self._had_session = False  # a later connect without one means the broker forgot us
        self._client = self._make_client()
        self._writer = threading.Thread(
            target=self._write_loop, name="storelens-mqtt-writer", daemon=True
        )
        self._network = threading.Thread(
            target=self._network_loop, name="storelens-mqtt-network", daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("an MqttBridge starts once; make a new one to start again")
        self._started = True
        log.info(
            "MQTT bridge %s connecting to %s:%d, topics %s",
            self.config.client_id,
            self.config.host,
            self.config.port,
            self.config.subscription,
        )
        self._writer.start()
        self._network.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the broker has confirmed the subscription (on the current or an
        earlier connection)."""
        return self._ready.wait(timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """Commit and ack everything received, then disconnect.

        If the database stays unreachable for ``timeout`` seconds, the rest is left
        unacked: the broker redelivers it to the next session, so nothing is lost.
        """
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._closing = True
        self._draining.set()
        self._writer.join(timeout)
        if self._writer.is_alive():
            log.warning("MQTT bridge: gave up committing after %.0fs; left unacked", timeout)
            self._abandon.set()
            self._writer.join(5)
        self._net_stop.set()
        self._network.join(timeout)
        s = self.stats
        log.info(
            "MQTT bridge stopped: %d received, %d appended, %d duplicates, %d dead-lettered",
            s.received,
            s.appended,
            s.duplicates,
            s.dead_lettered,
        )

    def run_forever(self, stop_event: threading.Event) -> None:
        """Run until ``stop_event`` is set (by a signal handler or the server's shutdown)."""
        self.start()
        try:
            stop_event.wait()
        finally:
            self.stop()

    @property
    def stats(self) -> BridgeStats:
        """A snapshot: safe to read from any thread."""
        with self._stats_lock:
            return replace(self._stats)

    def _count(self, **deltas: int) -> None:
        with self._stats_lock:
            for name, delta in deltas.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)

    # -- network thread ----------------------------------------------------------------

    def _make_client(self) -> Any:
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.config.session_expiry_s
        properties.ReceiveMaximum = self.config.in_flight
        client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=properties,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _network_loop(self) -> None:
        while not self._net_stop.is_set():
            self._connection += 1
            try:
                self._client.reconnect()
            except Exception as exc:  # OSError mostly; any failure means retry
                self._wait_before_retry(f"cannot reach the broker ({exc})")
                continue
            while not self._net_stop.is_set():
                try:
                    self._send_acks()
                    if not self._pump():
                        break
                except Exception:
                    log.exception("MQTT network loop failed; reconnecting")
                    break
            else:
                self._close_session()
                return
            self._set_connected(False)
            self._wait_before_retry("connection to the broker lost")

    def _pump(self) -> bool:
        """One round of network I/O; False when the connection is gone.

        paho reads a single packet per ``loop()``; draining what is already waiting
        before the next select takes in about a third more messages per second.
        """
        ok = MQTTErrorCode.MQTT_ERR_SUCCESS
        if self._client.loop(timeout=_POLL_S) != ok:
            return False
        for _ in range(_READ_BURST):
            sock = self._client.socket()
            if sock is None or not select.select([sock], [], [], 0)[0]:
                break
            if self._client.loop_read() != ok:
                return False
        return True

    def _wait_before_retry(self, why: str) -> None:
        delay = self._backoff * random.uniform(0.8, 1.2)  # noqa: S311  # jitter, not crypto
        self._backoff = min(self._backoff * 2, self.config.reconnect_max_s)
        log.warning(
            "MQTT %s:%d: %s; retrying in %.1fs", self.config.host, self.config.port, why, delay
        )
        self._net_stop.wait(delay)

    def _send_acks(self) -> None:
        while True:
            try:
                done = self._acks.get_nowait()
            except queue.Empty:
                return
            for m in done:
                if m.qos > 0 and m.connection == self._connection:
                    self._client.ack(m.mid, m.qos)

    def _close_session(self) -> None:
        """Send the last acks and a normal DISCONNECT, which keeps the session."""
        self._send_acks()
        if self._client.socket() is not None:  # connected, or still waiting for CONNACK
            self._client.disconnect()
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline:
                if self._client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        self._set_connected(False)

    def _set_connected(self, value: bool) -> None:
        with self._stats_lock:
            self._stats.connected = value

    def _on_connect(
        self, client: Any, _userdata: Any, flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the connection: %s", reason)
            return
        self._backoff = self.config.reconnect_min_s
        self._set_connected(True)
        log.info(
            "MQTT connected to %s:%d (session %s)",
            self.config.host,
            self.config.port,
            "resumed" if flags.session_present else "new",
        )
        if self._had_session and not flags.session_present:
            log.warning(
                "MQTT broker no longer had our session: messages published while the "
                "bridge was disconnected may be lost (is the session expiry too short?)"
            )
        self._had_session = True
        # Subscribing again on a resumed session is harmless and covers an expired one;
        # retained messages are only sent the first time, not on every reconnect.
        options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_SEND_IF_NEW_SUB)
        client.subscribe(self.config.subscription, options=options)

    def _on_subscribe(
        self, _client: Any, _userdata: Any, _mid: int, reasons: Any, _properties: Any
    ) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            log.error("MQTT subscription to %s refused: %s", self.config.subscription, failed[0])
            return
        self._ready.set()

    def _on_disconnect(
        self, _client: Any, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        if not self._net_stop.is_set():
            # "Session taken over" here means another bridge runs with our client id.
            log.warning("MQTT disconnected: %s", reason)

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if self._closing:
            return  # not acked: the broker redelivers it to the next session
        try:
            topic = message.topic
        except UnicodeDecodeError:
            topic = "(topic is not valid UTF-8)"
        if message.qos == 0 and self._inbox.qsize() >= self.config.max_buffered_qos0:
            self._count(dropped=1)
            return
        self._count(received=1)
        m = _Message(topic, message.payload, message.mid, message.qos, self._connection)
        self._inbox.put(m)

    # -- writer thread -------------------------------------------------------------------

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._commit(batch)
            elif self._draining.is_set():
                return

    def _next_batch(self) -> list[_Message]:
        try:
            batch = [self._inbox.get(timeout=_IDLE_S)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.config.flush_ms / 1000
        while len(batch) < self.config.batch_size:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or self._draining.is_set():
                    batch.append(self._inbox.get_nowait())
                else:
                    batch.append(self._inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[_Message]) -> None:
        """Store the batch, retrying while the database is away; then hand back acks."""
        delay = 0.5
        while True:
            try:
                outcome = self._store_isolating(batch)
                break
            except Exception:
                self._count(store_failures=1)
                if self._abandon.is_set():
                    return
                log.exception("MQTT bridge: storing %d messages failed; retrying", len(batch))
                self._abandon.wait(delay)
                delay = min(delay * 2, 30.0)
        self._count(
            appended=outcome.appended,
            duplicates=outcome.duplicates,
            dead_lettered=outcome.dead_lettered,
        )
        unstored = {id(m) for m in outcome.unstored}
        self._acks.put([m for m in batch if id(m) not in unstored])

    def _store_isolating(self, batch: list[_Message]) -> _Outcome:
        try:
            return self._store(batch)
        except Exception as exc:
            if _is_transient(exc):
                raise
            log.warning("MQTT bridge: a batch was refused (%s); storing one by one", exc)
        total = _Outcome()
        for m in batch:
            try:
                one = self._store([m])
            except Exception as exc:
                if _is_transient(exc):
                    raise
                one = self._dead_letter_refused(m, exc)
            total.appended += one.appended
            total.duplicates += one.duplicates
            total.dead_lettered += one.dead_lettered
            total.unstored.extend(one.unstored)
        return total

    def _dead_letter_refused(self, m: _Message, exc: Exception) -> _Outcome:
        reason = f"could not be stored: {type(exc).__name__}: {exc}".splitlines()[0][:2000]
        try:
            with self.event_log.engine.begin() as conn:
                record_dead_letter(conn, CHANNEL, m.topic, reason, m.payload)
        except Exception as again:
            if _is_transient(again):
                raise
            # Left unacked: the broker keeps it, and it shows up again after a restart.
            log.exception("MQTT bridge: cannot store or dead-letter a message on %s", m.topic)
            return _Outcome(unstored=[m])
        log.warning("MQTT dead letter on %s: %s", m.topic, reason)
        return _Outcome(dead_lettered=1)

    def _store(self, batch: Sequence[_Message]) -> _Outcome:
        """One transaction: the batch's valid events and its dead letters, or nothing."""
        items: list[tuple[str, _Item]] = []
        dead: list[tuple[str, str, bytes]] = []
        for m in batch:
            found, bad = parse_message(self.config.topic_prefix, m.topic, m.payload)
            items.extend((m.topic, item) for item in found)
            dead.extend((m.topic, d.reason, d.body) for d in bad)
        events, rejected = validate_items([item.envelope for _, item in items])
        for r in rejected:
            topic, item = items[r.index]
            dead.append((topic, _rejection_reason(item, r), item.body))
        outcome = _Outcome(dead_lettered=len(dead))
        with self.event_log.engine.begin() as conn:
            if events:
                result = self.event_log.append_in(conn, events)
                outcome.appended = len(result.accepted)
                outcome.duplicates = len(result.duplicates)
            for topic, reason, body in dead:
                record_dead_letter(conn, CHANNEL, topic, reason, body)
        for topic, reason, _ in dead:
            log.warning("MQTT dead letter on %s: %s", topic, reason[:500])
        return outcome


# -- entry points ----------------------------------------------------------------------


def run_bridge(settings: Settings, stop: threading.Event) -> None:
    """The bridge as a service: its own engine, running until ``stop`` is set."""
    config = BridgeConfig.from_settings(settings)
    engine = create_engine(settings.database_url)
    try:
        MqttBridge(config, EventLog(engine)).run_forever(stop)
    finally:
        engine.dispose()


def publish_raw(
    host: str,
    port: int,
    messages: Iterable[tuple[str, bytes | str]],
    *,
    qos: int = 1,
    timeout: float = 10.0,
) -> None:
    """Publish (topic, body) pairs and wait until the broker has them (edge tools, tests)."""
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"storelens-pub-{uuid.uuid4().hex[:12]}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.connect(host, port, keepalive=30)
    client.loop_start()
    try:
        pending = [client.publish(topic, body, qos=qos) for topic, body in messages]
        deadline = time.monotonic() + timeout
        for info in pending:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError(f"the broker at {host}:{port} did not confirm a publish")
    finally:
        client.disconnect()
        client.loop_stop()


def publish_events(
    host: str,
    port: int,
    topic: str,
    events: Iterable[Mapping[str, Any]],
    *,
    as_array: bool = False,
    qos: int = 1,
) -> None:
    """Publish events to ``topic``, one message each or (``as_array``) all in one."""
    bodies = [orjson.dumps(e) for e in events]
    if as_array:
        bodies = [b"[" + b",".join(bodies) + b"]"]
    publish_raw(host, port, ((topic, b) for b in bodies), qos=qos)
