"""The audit rows MQTT writes leave: one per publishing device per written batch.

Events posted over HTTP leave a row naming the key (``api.permissions.record_write``);
the same events over MQTT left none, so a person's access request could not show that
a till wrote their order, nor an investigation which device wrote what about whom.

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
* **Whom.** The customers the stored events carry (subject, a paid order's customer, a
  customer record's keys: :func:`~storelens.privacy.spine.event_customers`, as reads
  use) go through :func:`~storelens.privacy.audit.record`'s ``customers``, so the
  person's export lists the row and erasure leaves it under the pseudonym, exactly as
  for bulk reads. A duplicate (a redelivery) wrote nothing and is counted, not named;
  so is an item refused as a dead letter.
* **When.** In the batch's transaction: a batch that rolls back leaves no row, and a
  row always means its events were committed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from storelens.ingest.mqtt_messages import topic_fields
from storelens.privacy import audit
from storelens.privacy.spine import OWN_EVENT_TYPES, event_customers

__all__ = ["CHANNEL", "DeviceWrites", "WriteAudit"]

CHANNEL = "mqtt"
_LISTED = 100  # record ids named in one row's detail, as for HTTP writes; counts stay exact


@dataclass(slots=True)
class DeviceWrites:
    """What one device's messages in one batch came to."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    forbidden: int = 0
    customers: set[str] = field(default_factory=set)
    personal: Counter[str] = field(default_factory=Counter)
    records: set[str] = field(default_factory=set)

    def detail(self, bridge: str) -> dict[str, Any]:
        """The HTTP write's counts (and, for personal data, its types and record ids),
        plus where it came in."""
        out: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "forbidden": self.forbidden,
        }
        if self.personal:
            out["personal"] = dict(sorted(self.personal.items()))
            out["records"] = sorted(self.records)[:_LISTED]
        out.update({"channel": CHANNEL, "bridge": bridge})
        return out


class WriteAudit:
    """Tallies one batch by publishing device, then writes its rows in that batch's
    transaction. Messages whose topic names no device wrote nothing (they are dead
    letters) and leave no row."""

    def __init__(self, prefix: str, bridge: str) -> None:
        self.prefix, self.bridge = prefix, bridge
        self.devices: dict[tuple[str, str], DeviceWrites] = {}

    def _device(self, topic: str) -> DeviceWrites | None:
        fields = topic_fields(self.prefix, topic)
        if fields is None:
            return None
        return self.devices.setdefault((fields[0], fields[1]), DeviceWrites())

    def stored(self, topic: str, envelope: Mapping[str, Any]) -> None:
        """An event the log took: its customers are named, a personal one's record listed."""
        device = self._device(topic)
        if device is None:  # pragma: no cover - a stored event's topic always parsed
            return
        device.accepted += 1
        type_, subject, payload = envelope["type"], envelope.get("subject"), envelope["payload"]
        device.customers |= event_customers(subject, type_, payload)
        if type_ in OWN_EVENT_TYPES:
            device.personal[type_] += 1
            record = _record_of(type_, subject, payload)
            if record is not None:
                device.records.add(record)

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
            action = "personal_data.write" if writes.personal else "events.write"
            audit.record(
                conn,
                audit.Actor(f"{CHANNEL}:{store_id}/{source}", "device"),
                action,
                "events",
                store_id,
                writes.detail(self.bridge),
                customers=writes.customers,
            )


def _record_of(type_: str, subject: str | None, payload: Mapping[str, Any]) -> str | None:
    """The person a personal event is about, by identifier only (never a name or an
    e-mail), as ``api.permissions`` lists it for HTTP writes."""
    if type_ == "customer.upserted":
        return f"{payload['source_system']}:{payload['source_record_id']}"
    return subject
