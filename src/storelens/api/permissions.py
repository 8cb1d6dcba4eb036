"""What a caller may write to the event log, and the audit row every write leaves.

A device key may send only the event types it was made for (see
:mod:`storelens.accounts`); anything else is refused per item with a ``forbidden``
error while the rest of the batch goes on, as a store-scope refusal does. People who
may post events (admins) may send any type: they are the "person" consent can come
from, and their writes are audited like a key's.

Each write is one audit row naming the actor, with counts and, for personal data
(customer records, web behaviour, consent), which records and subjects it touched,
so "who changed this customer's record or consent?" always has an answer.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import Engine

from storelens.api.auth import Principal
from storelens.core.errors import FieldError
from storelens.core.events import CustomerUpsertedEvent, Event
from storelens.ingest.batch import IngestReport
from storelens.privacy import audit

__all__ = ["PERSONAL_TYPES", "EventPermit", "record_write"]

PERSONAL_TYPES = frozenset({"customer.upserted", "consent.changed", "web.event"})
_LISTED = 100  # ids named in one audit row; the counts stay exact beyond it


class EventPermit:
    """Refuses the event types ``principal`` may not send; remembers the personal
    events it let through (by id, so checking an event twice counts it once)."""

    def __init__(self, principal: Principal) -> None:
        self.allowed = principal.event_types
        self.personal: dict[str, tuple[str, str | None]] = {}

    def __call__(self, event: Event) -> FieldError | None:
        if self.allowed is not None and event.type not in self.allowed:
            return FieldError(
                "type",
                f"this key may not send {event.type} events; create a key for that type",
                "forbidden",
            )
        if event.type in PERSONAL_TYPES:
            self.personal[str(event.id)] = (event.type, _record_of(event))
        return None

    def detail(self) -> dict[str, Any]:
        types = Counter(t for t, _ in self.personal.values())
        records = sorted({r for _, r in self.personal.values() if r is not None})
        return {"personal": dict(sorted(types.items())), "records": records[:_LISTED]}


def _record_of(event: Event) -> str | None:
    """The person an event is about, by identifier only (never a name or an e-mail)."""
    if isinstance(event, CustomerUpsertedEvent):
        return f"{event.payload.source_system}:{event.payload.source_record_id}"
    return event.subject


def record_write(
    engine: Engine, principal: Principal, report: IngestReport, permit: EventPermit
) -> None:
    """One audit row for one accepted-or-not batch of events."""
    detail: dict[str, Any] = {
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "rejected": len(report.rejected),
        "conflicts": report.conflicts,
        "forbidden": sum(any(e.type == "forbidden" for e in r.errors) for r in report.rejected),
    }
    if permit.personal:
        detail.update(permit.detail())
    action = "personal_data.write" if permit.personal else "events.write"
    with engine.begin() as conn:
        audit.record(conn, principal.actor, action, "events", principal.store_scope, detail)
