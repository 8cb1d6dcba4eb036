"""The audit trail, for administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from storelens.api.deps import MAX_ROW_NUMBER, AdminOnly, EngineDep, Offset
from storelens.api.errors import error_responses
from storelens.api.schemas import AuditPublic, ListOf
from storelens.core.errors import NotFound
from storelens.privacy import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"], responses=error_responses(403, 422))


@router.get("")
def list_audit(
    principal: AdminOnly,
    engine: EngineDep,
    resource: str | None = None,
    resource_id: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> ListOf[AuditPublic]:
    rows = audit.list_entries(
        engine,
        resource=resource,
        resource_id=resource_id,
        action=action,
        limit=limit,
        offset=offset,
    )
    with engine.begin() as conn:  # the trail names customers and holds search terms
        audit.record(
            conn, principal.actor, "audit.read", "audit", resource_id,
            {"resource": resource, "action": action, "offset": offset, "returned": len(rows)},
        )  # fmt: skip
    return ListOf(data=[AuditPublic.model_validate(r) for r in rows], count=len(rows))


@router.get("/{audit_id}/customers", responses=error_responses(403, 404, 422))
def customers_read(
    principal: AdminOnly,
    engine: EngineDep,
    audit_id: Annotated[int, Path(ge=1, le=MAX_ROW_NUMBER)],
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> ListOf[str]:
    """The customers one audited bulk read returned (current ids when read; an erased
    person's pseudonym), so an investigator can tell whose data was pulled. ``count``
    is the total; a read of one customer names them in the row's ``resource_id``."""
    with engine.begin() as conn:
        total, page = audit.customers_named_by(conn, audit_id, limit=limit, offset=offset)
        if total is None:
            raise NotFound(f"no audit row {audit_id}")
        audit.record(  # the answer names customers: reading it is a read of them
            conn, principal.actor, "audit.customers.read", "audit", str(audit_id),
            {"offset": offset, "returned": len(page)}, customers=page,
        )  # fmt: skip
    return ListOf(data=page, count=total)
