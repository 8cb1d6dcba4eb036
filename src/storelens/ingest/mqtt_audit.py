"""The audit rows MQTT writes leave: one per publishing device per written batch.

Events posted over HTTP leave a row naming the key (:mod:`storelens.ingest.write_audit`);
the same events over MQTT once left none, so a person's access request could not show
that a till wrote their order, nor an investigation which device wrote what about whom.

* **Who.** MQTT never tells a subscriber who published a message, so the bridge cannot
  name the device's broker credential; the broker's ACL ties each credential to its
  topics, which makes the topic's ``{store_id}/{source}`` levels the device's identity
  here: actor ``mqtt:cafe-01/pos-1``, kind ``device``. ``detail["bridge"]`` is the
  client id of the bridge that took the messages in. An envelope's own ``source`` is
  not used: a body may name another one (a POS bridge relaying for a register).
* **How many rows.** One per device per batch the writer commits, never per event or
  per message: a device's 500 readings in one batch are one row. A single row for the
  whole batch would be fewer, but its ``audit_subjects`` would say that *some* device
  wrote about Ada, not which, and that is the question an investigation asks.
* **Whom and what.** As for every channel (:mod:`storelens.privacy.writes`): the
  customers the stored events carry are named, so the person's export lists the row
  and erasure leaves it under the pseudonym; a redelivery or a dead letter is counted,
  not named.
* **When.** In the batch's transaction: a batch that rolls back leaves no row, and a
  row always means its events were committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from storelens.ingest.mqtt_messages import topic_fields
from storelens.privacy import audit
from storelens.privacy.writes import Writes

__all__ = ["CHANNEL", "WriteAudit"]

CHANNEL = "mqtt"


def _name(store_id: str, source: str) -> str:
    return f"{CHANNEL}:{store_id}/{source}"


class WriteAudit:
    """Tallies one batch by publishing device, then writes its rows in that batch's
    transaction. Messages whose topic names no device wrote nothing (they are dead
    letters) and leave no row."""

    def __init__(self, prefix: str, bridge: str) -> None:
        self.prefix, self.bridge = prefix, bridge
        self.devices: dict[tuple[str, str], Writes] = {}

    def device_name(self, topic: str) -> str | None:
        """The device's name in the trail and on its events (``mqtt:{store}/{source}``)."""
        fields = topic_fields(self.prefix, topic)
        return None if fields is None else _name(fields[0], fields[1])

    def _device(self, topic: str) -> Writes | None:
        fields = topic_fields(self.prefix, topic)
        if fields is None:
            return None
        return self.devices.setdefault((fields[0], fields[1]), Writes())

    def stored(self, topic: str, envelope: Mapping[str, Any]) -> None:
        """An event the log took: its customers are named, a personal one's record listed."""
        device = self._device(topic)
        if device is None:  # pragma: no cover - a stored event's topic always parsed
            return
        device.stored(envelope["type"], envelope.get("subject"), envelope["payload"])

    def duplicate(self, topic: str) -> None:
        device = self._device(topic)
        if device is not None:
            device.duplicates += 1

    def refused(self, topic: str, *, forbidden: bool = False) -> None:
        device = self._device(topic)
        if device is not None:
            device.rejected += 1
            device.forbidden += forbidden

    def record(self, conn: Connection) -> None:
        for (store_id, source), writes in sorted(self.devices.items()):
            actor = audit.Actor(_name(store_id, source), "device")
            writes.record(conn, actor, store_id, channel=CHANNEL, bridge=self.bridge)
