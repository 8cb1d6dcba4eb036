"""What a caller may write to the event log.

A device key may send only the event types it was made for (see
:mod:`storelens.accounts`); anything else is refused per item with a ``forbidden``
error while the rest of the batch goes on, as a store-scope refusal does. People who
may post events (admins) may send any type: they are the "person" consent can come
from, and their writes are audited like a key's.

Each write is one audit row naming the actor, written in the append's transaction
(:mod:`storelens.ingest.write_audit`).
"""

from __future__ import annotations

from storelens.api.auth import Principal
from storelens.core.errors import FieldError
from storelens.core.events import Event

__all__ = ["EventPermit"]


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
