"""The audit trail, for administrators."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from storelens.api.deps import AdminOnly, EngineDep, Offset
from storelens.api.errors import error_responses
from storelens.api.schemas import AuditPublic, ListOf
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
