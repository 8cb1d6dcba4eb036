"""What the MQTT bridge is told and what it is sent: broker settings and message bodies.

Devices publish to ``{prefix}/{store_id}/{source}/{type}`` with QoS 1; the body is
one event envelope or a JSON array of them, and the topic fills in whatever of
``store_id``, ``source`` and ``type`` the body leaves out.

Everything here is pure (no network, no database), so it is cheap to test; the
bridge (:mod:`storelens.ingest.mqtt`, :mod:`storelens.ingest.mqtt_writer`) does the I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

import orjson

from storelens.config import Settings
from storelens.core.errors import ConfigError
from storelens.core.events import EVENT_TYPES, STORE_BOUND_TYPES

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_MAX_ITEMS",
    "DEFAULT_MQTT_TYPES",
    "BridgeConfig",
    "BrokerAddress",
    "DeadItem",
    "ParsedItem",
    "ReceivedMessage",
    "parse_message",
    "parse_mqtt_url",
    "topic_fields",
]

DEFAULT_MQTT_TYPES: frozenset[str] = STORE_BOUND_TYPES
"""What the bridge takes unless ``STORELENS_MQTT_EVENT_TYPES`` says otherwise: the
store-level operational types a device key gets by default. The broker knows devices
only by the topics its ACL lets them write, and the type is part of the topic, so
without this list any sensor could publish ``consent.changed`` or ``customer.upserted``
under its own prefix; over HTTP those need a key made for them."""

DEFAULT_MAX_ITEMS = 10_000
"""Events one message may hold unless configured: ``STORELENS_MAX_BATCH``'s default, so a
message carries at most what one ``POST /v1/events`` may."""

DEFAULT_CLIENT_ID = "storelens-bridge"
"""The bridge's MQTT client id unless configured (``STORELENS_MQTT_CLIENT_ID``)."""

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
_PLAIN_SCHEMES = frozenset({"mqtt", "tcp"})
_TLS_SCHEMES = frozenset({"mqtts", "ssl"})


class BrokerAddress(NamedTuple):
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool


def parse_mqtt_url(url: str) -> BrokerAddress:
    """``mqtt://`` or ``mqtts://[user:password@]host[:port]`` (default ports 1883, 8883).

    The password is never part of an error message: URLs end up in logs.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    shown = f"{scheme}://{parts.hostname or ''}"
    if scheme in ("wss", "ws"):
        raise ConfigError(f"{scheme}:// (MQTT over WebSockets) is not supported: use mqtts://")
    if scheme not in _PLAIN_SCHEMES | _TLS_SCHEMES:
        raise ConfigError(f"not an MQTT URL: {shown!r} (expected mqtt:// or mqtts://host:port)")
    if not parts.hostname:
        raise ConfigError(f"MQTT URL {shown!r} names no host")
    tls = scheme in _TLS_SCHEMES
    try:
        port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
    except ValueError as exc:
        raise ConfigError(f"MQTT URL {shown!r} has a bad port") from exc
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return BrokerAddress(parts.hostname, port, username, password, tls)


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    topic_prefix: str = "storelens"
    client_id: str = DEFAULT_CLIENT_ID
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
    # TLS (mqtts://): the broker's certificate is checked against the system's CAs, or
    # against ``ca_file`` (a private CA); ``client_cert`` is a PEM file holding this
    # bridge's certificate and key, for brokers that require client certificates.
    tls: bool = False
    ca_file: Path | None = None
    client_cert: Path | None = None
    event_types: frozenset[str] = DEFAULT_MQTT_TYPES  # anything else is dead-lettered
    max_items: int = DEFAULT_MAX_ITEMS  # events in one message; a longer array is a dead letter

    def __post_init__(self) -> None:
        unknown = sorted(set(self.event_types) - set(EVENT_TYPES))
        if unknown:
            raise ConfigError(f"MQTT event types {unknown} are not event types")
        if any(c in self.topic_prefix for c in "+#") or not self.topic_prefix.strip("/"):
            raise ConfigError(f"MQTT topic prefix {self.topic_prefix!r} must be a plain topic")
        if not self.client_id:
            raise ConfigError("the MQTT client id must be set: the broker keeps our session by it")
        if self.batch_size < 1 or self.flush_ms < 1:
            raise ConfigError("MQTT batch size and flush interval must be positive")
        if self.max_items < 1:
            raise ConfigError("the MQTT message limit (STORELENS_MQTT_MAX_ITEMS) must be positive")
        if not self.tls and (self.ca_file is not None or self.client_cert is not None):
            raise ConfigError("an MQTT CA file or client certificate needs an mqtts:// URL")
        for name, path in (("CA file", self.ca_file), ("client certificate", self.client_cert)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"MQTT {name} {str(path)!r} is not a readable file")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> BridgeConfig:
        if not settings.mqtt_url:
            raise ConfigError("STORELENS_MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
        address = parse_mqtt_url(settings.mqtt_url)
        values: dict[str, Any] = {
            "host": address.host,
            "port": address.port,
            "username": address.username,
            "password": address.password,
            "tls": address.tls,
            "ca_file": settings.mqtt_ca_file,
            "client_cert": settings.mqtt_client_cert,
            "topic_prefix": settings.mqtt_topic_prefix,
            "client_id": settings.mqtt_client_id,
            "max_items": settings.mqtt_max_items or settings.max_batch,
        }
        if settings.mqtt_event_types is not None:
            values["event_types"] = frozenset(settings.mqtt_event_types)
        values.update(overrides)
        return cls(**values)

    @property
    def subscription(self) -> str:
        return f"{self.topic_prefix.rstrip('/')}/+/+/+"

    @property
    def in_flight(self) -> int:
        return min(65_535, self.receive_maximum or max(4 * self.batch_size, 1000))


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """One message as the network thread took it in, queued for the writer."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection delivered it: acks are only valid there


# -- parsing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """One envelope from a message body, its topic fields filled in, not yet validated."""

    envelope: dict[str, Any]
    label: str  # "" for a single-event body, "item 2 of 5: " in an array
    body: bytes  # what to dead-letter if validation refuses it


@dataclass(frozen=True, slots=True)
class DeadItem:
    """A message, or one item of an array, that cannot become an event, and why."""

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


def parse_message(
    prefix: str, topic: str, payload: bytes, max_items: int = DEFAULT_MAX_ITEMS
) -> tuple[list[ParsedItem], list[DeadItem]]:
    """Split one message into envelopes to validate and reasons it (or items) are unusable.

    An array of more than ``max_items`` is one dead letter, before any item is looked
    at: the HTTP route refuses such a batch whole too (413), and a device that sends
    one has a bug worth seeing, not a partial store."""
    fields = topic_fields(prefix, topic)
    if fields is None:
        reason = f"topic {topic!r} does not match {prefix}/{{store_id}}/{{source}}/{{type}}"
        return [], [DeadItem(reason, payload)]
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"body is not valid UTF-8 ({exc.reason} at byte {exc.start})"
        return [], [DeadItem(reason, payload)]
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return [], [DeadItem(f"body is not valid JSON: {exc}", payload)]
    if isinstance(body, dict):
        problem = _fill(body, fields)
        if problem is not None:
            return [], [DeadItem(f"body contradicts its topic: {problem}", payload)]
        return [ParsedItem(body, "", payload)], []
    if not isinstance(body, list):
        kind = type(body).__name__ if body is not None else "null"
        reason = f"body must be a JSON object or an array of objects, not {kind}"
        return [], [DeadItem(reason, payload)]
    if len(body) > max_items:
        reason = (
            f"body holds {len(body)} events; at most {max_items} are taken in one message "
            "(STORELENS_MQTT_MAX_ITEMS): split the array"
        )
        return [], [DeadItem(reason, payload)]
    items: list[ParsedItem] = []
    dead: list[DeadItem] = []
    for i, item in enumerate(body):
        label = f"item {i + 1} of {len(body)}: "
        as_received = orjson.dumps(item)
        if not isinstance(item, dict):
            kind = type(item).__name__ if item is not None else "null"
            dead.append(DeadItem(f"{label}an event must be a JSON object, not {kind}", as_received))
            continue
        problem = _fill(item, fields)
        if problem is not None:
            dead.append(DeadItem(f"{label}body contradicts its topic: {problem}", as_received))
            continue
        items.append(ParsedItem(item, label, as_received))
    return items, dead
