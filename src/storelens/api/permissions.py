"""What a caller may write to the event log, and the audit row every write leaves.

A device key may send only the event types it was made for (see
:mod:`storelens.accounts`); anything else is refused per item with a ``forbidden``
error while the rest of the batch goes on, as a store-scope refusal does. People who
may post events (admins) may send any type: they are the "person" consent can come
from, and their writes are audited like a key's.

Each write is one audit row naming the actor, with counts, the customers the stored
events are about (so the person's access request lists it) and, for personal data
(customer records, web behaviour, consent), which records it touched, so "who changed
this customer's record or consent?" always has an answer
(:mod:`storelens.privacy.writes`, as for MQTT).
"""

from __future__ import annotations

from sqlalchemy import Engine

from storelens.api.auth import Principal
from storelens.core.errors import FieldError
from storelens.core.events import Event
from storelens.ingest.batch import IngestReport
from storelens.privacy.writes import Writes

__all__ = ["EventPermit", "record_write"]


class EventPermit:
    """Refuses the event types ``principal`` may not send."""

    def __init__(self, principal: Principal) -> None:
        self.allowed = principal.event_types

    def __call__(self, event: Event) -> FieldError | None:
        if self.allowed is not None and event.type not in self.allowed:
            return FieldError(
                "type",
                f"this key may not send {event.type} events; create a key for that type",
                "forbidden",
            )
        return None


def record_write(engine: Engine, principal: Principal, report: IngestReport) -> None:
    """One audit row for one accepted-or-not batch of events."""
    writes = Writes(duplicates=report.duplicates, rejected=len(report.rejected))
    writes.forbidden = sum(any(e.type == "forbidden" for e in r.errors) for r in report.rejected)
    writes.stored_events(report.stored)
    with engine.begin() as conn:
        writes.record(conn, principal.actor, principal.store_scope, conflicts=report.conflicts)
