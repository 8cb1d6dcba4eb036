"""The audit row a write of events leaves, whichever way the events came in.

HTTP batches, MQTT batches and customer imports all answer the same two questions
from the trail: *who* wrote (the key, the device, the operator) and *about whom*. The
second is what a person's access request shows ("a till wrote my order on 3 March")
and what erasure keeps under the pseudonym. Each channel used to build its own row,
and only MQTT named the people; an order posted over HTTP left a row that no export
could find. One tally now serves every channel, so a channel cannot forget the people.

* **Whom.** The customers the *stored* events carry (:func:`~storelens.privacy.spine.
  event_customers`: subject, a paid order's customer, a record's ``source:record`` key),
  through :func:`~storelens.privacy.audit.record`'s ``customers``. A
  duplicate (a resend) wrote nothing and is counted, not named; so is a refused item.
* **What.** Counts always; for personal data (customer records, consent, web
  behaviour) the types and which records, by identifier only, never a name or an
  e-mail. A batch with any stored personal event is a ``personal_data.write``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from storelens.core.events import Event, OrderPaidEvent
from storelens.privacy import audit
from storelens.privacy.spine import OWN_EVENT_TYPES, event_customers

__all__ = ["LISTED_RECORDS", "Writes"]

LISTED_RECORDS = 100
"""Record ids named in one row's detail; the counts stay exact beyond it."""
_PERSON_FIELDS = {"customer_id", "source_system", "source_record_id", "loyalty_id"}


def _record_of(type_: str, subject: str | None, payload: Mapping[str, Any]) -> str | None:
    """The person a personal event is about, by identifier only."""
    if type_ == "customer.upserted":
        system, record = payload.get("source_system"), payload.get("source_record_id")
        return f"{system}:{record}" if system is not None and record is not None else None
    return subject


@dataclass(slots=True)
class Writes:
    """What one actor's batch came to. Callers count the outcomes and report each stored
    event with :meth:`stored`; :meth:`record` writes the row in the connection it is
    given: every channel passes the transaction that stores the events (MQTT its batch's,
    the rest through :mod:`storelens.ingest.write_audit`), so a batch that rolls back
    leaves no row and a committed one always has its row."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    forbidden: int = 0
    customers: set[str] = field(default_factory=set)
    personal: Counter[str] = field(default_factory=Counter)
    records: set[str] = field(default_factory=set)

    def stored(self, type_: str, subject: str | None, payload: Mapping[str, Any]) -> None:
        """An event the log took: its customers are named, a personal one's record listed.

        A customer record names its person by its ``source:record`` key alone
        (:func:`~storelens.privacy.spine.event_customers`): a loyalty id named in the row
        was kept as written and, reissued or replaced, outlived the person's erasure."""
        self.accepted += 1
        self.customers |= event_customers(subject, type_, payload)
        if type_ in OWN_EVENT_TYPES:
            self.personal[type_] += 1
            record = _record_of(type_, subject, payload)
            if record is not None:
                self.records.add(record)

    def stored_events(self, events: Iterable[Event]) -> None:
        """:meth:`stored` for validated events, on the write path of every HTTP batch.

        Personal events take the full rule through a dict of the fields that name
        people; every other type can name someone only by its subject or a paid order's
        ``customer_id`` (as :func:`~storelens.privacy.spine.event_customers` reads them;
        only ``OrderPaid`` has that field), read straight off the models: dumping every
        payload cost more than the audit row's own queries."""
        for event in events:
            if event.type in OWN_EVENT_TYPES:
                payload = event.payload.model_dump(include=_PERSON_FIELDS, exclude_none=True)
                self.stored(event.type, event.subject, payload)
                continue
            self.accepted += 1
            if event.subject:
                self.customers.add(event.subject)
            if isinstance(event, OrderPaidEvent) and event.payload.customer_id:
                self.customers.add(event.payload.customer_id)

    @property
    def action(self) -> str:
        return "personal_data.write" if self.personal else "events.write"

    def detail(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "forbidden": self.forbidden,
        }
        if self.personal:
            out["personal"] = dict(sorted(self.personal.items()))
            out["records"] = sorted(self.records)[:LISTED_RECORDS]
        out.update(extra)
        return out

    def record(
        self,
        conn: Connection,
        actor: audit.Actor,
        resource_id: str | None,
        *,
        action: str | None = None,
        resource: str = "events",
        **extra: Any,
    ) -> int:
        """The row, naming the customers; ``extra`` goes into its detail (the channel,
        a bridge, an import's source)."""
        return audit.record(
            conn,
            actor,
            action or self.action,
            resource,
            resource_id,
            self.detail(**extra),
            customers=self.customers,
        )
