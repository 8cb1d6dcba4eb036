"""Customer source records: as each source system holds them, before identity resolution.

Imports become ``customer.upserted`` events (so the log stays the one source of
truth and erasure has one place to start) and the records table is their projection.
Until identity resolution links records, a record's provisional customer id is its
loyalty id, or ``source:record`` when it has none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, or_, select

from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.storage.dialects import dialect_for
from storelens.storage.eventlog import StoredEvent
from storelens.storage.tables import customers

__all__ = [
    "CUSTOMER_TYPES",
    "FIELDS",
    "PREFERENCE_FIELDS",
    "customer_events",
    "project_customers",
    "provisional_id",
    "search_customers",
]

CUSTOMER_TYPES = ("customer.upserted",)
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "address",
    "postcode",
    "city",
    "country",
    "dob",
    "loyalty_id",
    "greeting_name",
)
PREFERENCE_FIELDS = ("greeting_name",)
"""Fields the customer chooses rather than data a source must hold: left out of the
data-quality report (a blank one is not a gap) and of matching."""
_NAMESPACE = uuid.UUID("6b0a6b55-6a8f-4c07-9d4e-5a1f6e0c2a11")


def provisional_id(source_system: str, source_record_id: str, loyalty_id: str | None) -> str:
    return loyalty_id or f"{source_system}:{source_record_id}"


def customer_events(source_system: str, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Raw ``customer.upserted`` events for imported rows.

    The event id is derived from the record's content, so importing the same file
    twice stores nothing new while a changed record is a new event.
    """
    now = datetime.now(UTC).isoformat()
    out = []
    for row in rows:
        payload = {k: v for k, v in row.items() if v not in (None, "")}
        payload["source_system"] = source_system
        content = "|".join(f"{k}={payload[k]}" for k in sorted(payload))
        out.append(
            {
                "id": str(uuid.uuid5(_NAMESPACE, content)),
                "type": "customer.upserted",
                "ts": now,
                "source": source_system,
                "subject": payload.get("loyalty_id"),
                "payload": payload,
            }
        )
    return out


def project_customers(conn: Connection, batch: list[StoredEvent]) -> None:
    """Upsert source records; the newest event time wins for each record."""
    latest: dict[tuple[str, str], StoredEvent] = {}
    for ev in batch:
        if ev.type != "customer.upserted":
            continue
        key = (ev.payload["source_system"], ev.payload["source_record_id"])
        if key not in latest or ev.ts >= latest[key].ts:
            latest[key] = ev
    if not latest:
        return
    rows = []
    for (system, record_id), ev in latest.items():
        p = ev.payload
        row: dict[str, Any] = {f: p.get(f) for f in FIELDS}
        if isinstance(row["dob"], str):
            row["dob"] = datetime.fromisoformat(row["dob"]).date()
        row.update(
            source_system=system,
            source_record_id=record_id,
            customer_id=provisional_id(system, record_id, p.get("loyalty_id")),
            created_at=ev.ts,
            updated_at=ev.ts,
        )
        rows.append(row)
    stmt = dialect_for(conn).upsert(
        customers,
        ["source_system", "source_record_id"],
        [*FIELDS, "updated_at"],  # a record keeps the customer id resolution gave it
        unless_newer="updated_at",
    )
    conn.execute(stmt, rows)


def search_customers(
    conn: Connection, q: str | None, *, limit: int, offset: int
) -> tuple[int, list[dict[str, Any]]]:
    """Source records whose name or e-mail contains ``q`` (any case): the total that
    matched, and one page of them in id order."""
    stmt = select(customers)
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(customers.c.email).like(like),
                func.lower(customers.c.first_name).like(like),
                func.lower(customers.c.last_name).like(like),
            )
        )
    total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = conn.execute(stmt.order_by(customers.c.id).limit(limit).offset(offset)).all()
    return total, [dict(r._mapping) for r in rows]


def _export_records(req: SubjectRequest) -> list[dict[str, Any]]:
    """The person's records as each source system sent them (CRM, web shop, loyalty …)."""
    rows = req.conn.execute(
        select(customers)
        .where(customers.c.customer_id.in_(req.subject.ids))
        .order_by(customers.c.source_system, customers.c.source_record_id)
    )
    return [plain(r) for r in rows]


def _erase_records(req: SubjectRequest) -> int:
    result = req.conn.execute(delete(customers).where(customers.c.customer_id.in_(req.subject.ids)))
    return int(result.rowcount or 0)


register(PersonalStore("source_records", _export_records, _erase_records, tables=("customers",)))
