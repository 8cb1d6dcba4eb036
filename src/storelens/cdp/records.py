"""Customer source records: as each source system holds them, before identity resolution.

Imports become ``customer.upserted`` events (so the log stays the one source of
truth and erasure has one place to start) and the records table is their projection.
Until identity resolution links records, a record's provisional customer id is its
loyalty id, or ``source:record`` when it has none.

An imported record's event id is a keyed hash of its content (:class:`ImportIds`):
re-importing a file stores nothing new, and no one without the installation's secret
key can compute the id a future import will use and take it first.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, or_, select

from storelens.config import Settings
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.storage.dialects import dialect_for
from storelens.storage.eventlog import StoredEvent
from storelens.storage.tables import customers

__all__ = [
    "CUSTOMER_TYPES",
    "FIELDS",
    "PREFERENCE_FIELDS",
    "ImportIds",
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
LEGACY_NAMESPACE = uuid.UUID("6b0a6b55-6a8f-4c07-9d4e-5a1f6e0c2a11")
"""Import ids used to be ``uuid5(LEGACY_NAMESPACE, content)``: public, so anyone could
compute them. Events stored under them keep their ids (the log is append-only)."""
_PURPOSE = b"storelens/customer-import-event-ids/v1"


class ImportIds:
    """Event ids for imported records: HMAC-SHA256 of the record's content under a key
    derived from the installation's secret key, as a UUID (version 8, custom).

    Deterministic on one installation, so a re-import is a duplicate; a device key, or
    anyone who can guess a record's content, can no longer compute the id and store
    something else under it first. Changing the secret key changes every id: the next
    import then stores each unchanged record once more (harmless, see ``customer_events``).
    """

    __slots__ = ("_key",)

    def __init__(self, secret: str) -> None:
        self._key = hmac.new(secret.encode(), _PURPOSE, hashlib.sha256).digest()

    @classmethod
    def of(cls, settings: Settings) -> ImportIds:
        return cls(settings.secret_key.get_secret_value())

    def __repr__(self) -> str:
        return "ImportIds(<key hidden>)"

    def __call__(self, content: bytes) -> uuid.UUID:
        digest = hmac.new(self._key, content, hashlib.sha256).digest()
        value = int.from_bytes(digest[:16], "big")
        value &= ~(0xF000 << 64) & ~(0xC000 << 48)  # version and variant bits, as RFC 9562
        return uuid.UUID(int=value | (0x8000 << 64) | (0x8000 << 48))


def provisional_id(source_system: str, source_record_id: str, loyalty_id: str | None) -> str:
    return loyalty_id or f"{source_system}:{source_record_id}"


def customer_events(
    source_system: str, rows: Sequence[dict[str, Any]], ids: ImportIds
) -> list[dict[str, Any]]:
    """Raw ``customer.upserted`` events for imported rows.

    The event id is ``ids`` of the record's content (sorted-key JSON, so no two
    different records share a spelling), so importing the same file twice stores
    nothing new while a changed record is a new event. Records imported under the
    old public ids (:data:`LEGACY_NAMESPACE`) get a new id at their next import and
    are stored once more: the projection upserts by (source system, record id), so
    the record keeps its values and customer id; its ``updated_at`` becomes that
    import's time, as for any record a source sends again.
    """
    now = datetime.now(UTC).isoformat()
    out = []
    for row in rows:
        payload = {k: v for k, v in row.items() if v not in (None, "")}
        payload["source_system"] = source_system
        content = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS, default=str)
        out.append(
            {
                "id": str(ids(content)),
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
