"""The MQTT bridge: device messages into the event log, at least once, never twice.

Why it is built the way it is:

* **Acks follow commits.** Messages are acknowledged (``PUBACK``) only after their
  events, or their dead letters, are committed. A crash in between means the broker
  redelivers, and the log's idempotency by event id turns that into a duplicate
  count instead of a second row. The persistent session (stable client id,
  ``clean_start=False``, a session expiry) makes the broker hold QoS-1 messages
  published while the bridge is down.
* **Two threads, one job each.** The network thread (here) only moves bytes: it
  queues incoming messages and sends the acks the writer hands back. The writer
  thread (:mod:`storelens.ingest.mqtt_writer`) parses, validates and commits in
  micro-batches, so a slow database never stalls keepalives.
* **Acks are fenced by connection.** Packet ids belong to a connection; an ack
  for a message received on an earlier connection is dropped (the broker resends
  that message on the new one). Only the network thread sends acks, so the fence
  cannot race with a reconnect.

Topics, message bodies and the bridge's settings: :mod:`storelens.ingest.mqtt_messages`.
"""

from __future__ import annotations

import logging
import queue
import select
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

import orjson

from storelens.config import Settings
from storelens.core.errors import MissingExtra
from storelens.core.retry import Backoff
from storelens.ingest.mqtt_messages import BridgeConfig, ReceivedMessage
from storelens.ingest.mqtt_writer import BatchWriter
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

__all__ = ["BridgeStats", "MqttBridge", "publish_events", "publish_raw", "run_bridge"]

log = logging.getLogger(__name__)

_POLL_S = 0.02  # how long the network thread waits in select before sending queued acks
_READ_BURST = 1000  # packets read back to back before acks and keepalive get a turn


def _paho() -> ModuleType:
    """paho-mqtt, imported on first use: it is the optional ``mqtt`` extra, and the
    API, the CLI and the edge tools import this module without it."""
    try:
        import paho.mqtt.client
    except ImportError:
        raise MissingExtra("the MQTT bridge", "mqtt") from None
    return paho.mqtt.client


def _new_client(client_id: str, **options: Any) -> Any:
    mqtt = _paho()
    return mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTProtocolVersion.MQTTv5,
        **options,
    )


def _tls_context(config: BridgeConfig) -> ssl.SSLContext:
    """The broker's certificate and host name are always checked: against the system's
    CAs, or ``ca_file`` for a private CA. ``client_cert`` holds our certificate and key."""
    context = ssl.create_default_context(
        cafile=str(config.ca_file) if config.ca_file is not None else None
    )
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if config.client_cert is not None:
        context.load_cert_chain(str(config.client_cert))
    return context


@dataclass(slots=True)
class BridgeStats:
    """Running totals since start: messages received, events appended or found to be
    duplicates, dead letters written (``conflicts`` of them for an id naming another
    event), QoS-0 messages dropped, failed commits, and failed or lost connections."""

    received: int = 0
    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    conflicts: int = 0
    dropped: int = 0
    store_failures: int = 0
    connect_failures: int = 0
    connected: bool = False


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
        self._writer = BatchWriter(config, event_log, self._count)
        self._connection = 0  # owned by the network thread
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s, jitter="equal")
        self._closing = False  # set by stop(): new messages are left unacked for next time
        self._net_stop = threading.Event()
        self._ready = threading.Event()
        self._started = False
        self._stopped = False
        self._had_session = False  # a later connect without one means the broker forgot us
        self._client = self._make_client()
        self._network = threading.Thread(
            target=self._network_loop, name="storelens-mqtt-network", daemon=True
        )

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            raise RuntimeError("an MqttBridge starts once; make a new one to start again")
        self._started = True
        log.info(
            "MQTT bridge %s connecting to %s:%d%s, topics %s",
            self.config.client_id,
            self.config.host,
            self.config.port,
            " (TLS)" if self.config.tls else "",
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
        self._writer.stop(timeout)
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
        mqtt = _paho()
        client = _new_client(self.config.client_id, manual_ack=True)
        if self.config.tls:
            client.tls_set_context(_tls_context(self.config))
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password)
        properties = mqtt.Properties(mqtt.PacketTypes.CONNECT)
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
        ok = _paho().MQTTErrorCode.MQTT_ERR_SUCCESS
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
        self._count(connect_failures=1)
        delay = self._backoff.next()
        log.warning(
            "MQTT %s:%d: %s; retrying in %.1fs", self.config.host, self.config.port, why, delay
        )
        self._net_stop.wait(delay)

    def _send_acks(self) -> None:
        while True:
            try:
                done = self._writer.acks.get_nowait()
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
                if self._client.loop(timeout=0.05) != _paho().MQTTErrorCode.MQTT_ERR_SUCCESS:
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
        self._backoff.reset()
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
        mqtt = _paho()
        options = mqtt.SubscribeOptions(
            qos=1, retainHandling=mqtt.SubscribeOptions.RETAIN_SEND_IF_NEW_SUB
        )
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
        if message.qos == 0 and self._writer.inbox.qsize() >= self.config.max_buffered_qos0:
            self._count(dropped=1)
            return
        self._count(received=1)
        m = ReceivedMessage(topic, message.payload, message.mid, message.qos, self._connection)
        self._writer.inbox.put(m)


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
    client = _new_client(f"storelens-pub-{uuid.uuid4().hex[:12]}")
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
