"""The audit trail: who touched whose personal data, and who changed who may.

Rows are written in the same transaction as the action they describe where there
is one, so an audited read that fails leaves no row and a row always means it ran.

A read that returns many customers (a page of events, of segment members, of customer
records, a batch of recommendations) names each of them in ``audit_subjects``: one row
per customer, keyed by the id the person had when read. A count alone could not
answer a person's access request ("who read my data?") nor tell an investigator whose
data an analyst pulled; a JSON list in ``detail`` could, but only by searching every
row's text, and it would grow with the page.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, func, select

from storelens.privacy.subject import PSEUDONYM_PREFIX, current_ids
from storelens.storage.tables import audit_log, audit_subjects

__all__ = [
    "ERASE_ACTION",
    "SYSTEM",
    "Actor",
    "AuditEntry",
    "customers_named_by",
    "last_erasure",
    "list_entries",
    "named_customers",
    "operator",
    "record",
]

_CHUNK = 1000  # rows per multi-row insert: one statement's size stays bounded


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it. ``device`` is a device known only by the MQTT topic the broker let it
    publish on (``mqtt:{store}/{source}``): MQTT never tells the bridge the publisher's
    credential, but the broker's ACL ties each credential to its topics."""

    name: str
    kind: Literal["user", "api_key", "device", "system"]
    role: str | None = None
    ip: str | None = None


SYSTEM = Actor(name="storelens", kind="system")
ERASE_ACTION = "customer.erase"
"""The audit action of an erasure: the one trace of it other processes can see."""


def last_erasure(conn: Connection, after: int) -> int | None:
    """The newest erasure's audit row id past ``after`` (a primary-key range), or None."""
    stmt = select(func.max(audit_log.c.id)).where(
        audit_log.c.id > after, audit_log.c.action == ERASE_ACTION
    )
    found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


def operator() -> Actor:
    """Whoever runs a command on the server, by login name: the command line has no
    token, but the trail should still say which operator imported a file."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        who = "unknown"
    return Actor(name=f"cli:{who}", kind="system")


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    ts: datetime
    actor: str
    actor_kind: str
    role: str | None
    action: str
    resource: str
    resource_id: str | None
    detail: dict[str, Any] | None
    ip: str | None


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    resource: str,
    resource_id: str | None = None,
    detail: dict[str, Any] | None = None,
    *,
    customers: Iterable[str] | None = None,
) -> int:
    """One row (its id is returned); names and ids are cut to their columns' widths, so
    whatever a caller sends (a megabyte "username") can neither fail the write nor
    bloat the trail.

    ``customers`` are the ids of the people a read returned, as the data carried them
    (loyalty ids, ``source:record`` keys, retired ids): each is stored once, as the
    person's current customer id, beside the row, and ``detail["customers"]`` says how
    many were named. Pass it (even empty) for every read that can return customers,
    so that "named nobody" is recorded too.
    """
    named = None if customers is None else named_customers(conn, customers)
    if named is not None:
        detail = {**(detail or {}), "customers": len(named)}
    result = conn.execute(
        audit_log.insert(),
        {
            "ts": datetime.now(UTC),
            "actor": _cut(actor.name, 128),
            "actor_kind": actor.kind,
            "role": actor.role,
            "action": action,
            "resource": resource,
            "resource_id": None if resource_id is None else _cut(resource_id, 256),
            "detail": detail,
            "ip": None if actor.ip is None else _cut(actor.ip, 64),
        },
    )
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert always has its key
    audit_id = int(key[0])
    rows = [{"audit_id": audit_id, "customer_id": c} for c in named or ()]
    for start in range(0, len(rows), _CHUNK):
        conn.execute(audit_subjects.insert(), rows[start : start + _CHUNK])
    return audit_id


def named_customers(conn: Connection, ids: Iterable[str]) -> list[str]:
    """The people behind ``ids``, once each, by their current customer id (an id no
    customer record holds, such as an order's customer before any import, stands for
    itself; an erasure's pseudonym names nobody and is dropped)."""
    raw = {i for i in ids if i and not i.startswith(PSEUDONYM_PREFIX)}
    if not raw:
        return []
    current = current_ids(conn, raw)
    found = {current.get(i, i) for i in raw}
    return sorted({_cut(i, 256) for i in found if not i.startswith(PSEUDONYM_PREFIX)})


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def list_entries(
    engine: Engine,
    *,
    resource: str | None = None,
    resource_id: str | None = None,
    action: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    if resource is not None:
        stmt = stmt.where(audit_log.c.resource == resource)
    if resource_id is not None:
        stmt = stmt.where(audit_log.c.resource_id == resource_id)
    if action is not None:
        stmt = stmt.where(audit_log.c.action == action)
    with engine.connect() as conn:
        return [AuditEntry(**dict(r._mapping)) for r in conn.execute(stmt)]


def customers_named_by(
    conn: Connection, audit_id: int, *, limit: int, offset: int = 0
) -> tuple[int | None, list[str]]:
    """Whom one audited read returned, in id order, a page at a time: (how many, the
    page), or (None, []) when there is no such audit row."""
    if conn.execute(select(audit_log.c.id).where(audit_log.c.id == audit_id)).first() is None:
        return None, []
    where = audit_subjects.c.audit_id == audit_id
    total = conn.execute(select(func.count()).select_from(audit_subjects).where(where))
    page = conn.execute(
        select(audit_subjects.c.customer_id)
        .where(where)
        .order_by(audit_subjects.c.customer_id)
        .limit(limit)
        .offset(offset)
    )
    return int(total.scalar_one()), list(page.scalars())
