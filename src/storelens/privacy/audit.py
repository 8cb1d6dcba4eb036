"""The audit trail: who touched whose personal data, and who changed who may.

Rows are written in the same transaction as the action they describe where there
is one, so an audited read that fails leaves no row and a row always means it ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Connection, Engine, select

from storelens.storage.tables import audit_log

__all__ = ["SYSTEM", "Actor", "AuditEntry", "list_entries", "record"]


@dataclass(frozen=True, slots=True)
class Actor:
    name: str
    kind: Literal["user", "api_key", "system"]
    role: str | None = None
    ip: str | None = None


SYSTEM = Actor(name="storelens", kind="system")


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
) -> None:
    """One row; names and ids are cut to their columns' widths, so whatever a caller
    sends (a megabyte "username") can neither fail the write nor bloat the trail."""
    conn.execute(
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
