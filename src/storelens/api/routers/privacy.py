"""Data-subject requests over HTTP: export a customer's data, or erase it with a scan.

Administrators only, and audited: both hand out or destroy everything held about a
person. A lookup of an id nobody holds is audited too (as ``*.not_found``), so probing
for whether someone is a customer leaves a trail.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from storelens.api.deps import AdminOnly, EngineDep, SettingsDep
from storelens.api.errors import ERROR_RESPONSES, error_responses
from storelens.core.errors import NotFound
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer, export_customer
from storelens.privacy.scan import expand_log_paths

__all__ = ["ErasureBody", "ErasurePublic", "router"]

router = APIRouter(prefix="/v1/customers", tags=["privacy"], responses=ERROR_RESPONSES)

Reason = Annotated[str, Field(min_length=3, max_length=500, pattern=r"\S")]


class ErasureBody(BaseModel):
    reason: Reason = Field(description="why: the request's reference or legal ground")


class TracePublic(BaseModel):
    location: str
    column: str | None
    kind: str
    count: int


class ScanPublic(BaseModel):
    traces: int = Field(description="identifiers of the person found after erasure (target 0)")
    found: list[TracePublic]
    searched: dict[str, Any]


class ErasurePublic(BaseModel):
    pseudonym: str = Field(description="the id kept rows (orders, audit) now carry")
    erased: dict[str, int]
    kept: dict[str, str]
    scan: ScanPublic


NOT_FOUND = error_responses(404)


def _refuse_unknown(
    engine: EngineDep, principal: AdminOnly, action: str, customer_id: str, exc: NotFound
) -> NotFound:
    with engine.begin() as conn:
        audit.record(conn, principal.actor, f"{action}.not_found", "customer", customer_id)
    return exc


@router.get("/{customer_id}/export", responses=NOT_FOUND)
def export_customer_data(
    customer_id: str, principal: AdminOnly, engine: EngineDep, settings: SettingsDep
) -> dict[str, Any]:
    """Everything storelens holds about the person, one key per registered store."""
    try:
        return export_customer(
            engine,
            customer_id,
            principal.actor,
            log_paths=expand_log_paths(settings.privacy_log_paths),
        )
    except NotFound as exc:
        raise _refuse_unknown(engine, principal, "customer.export", customer_id, exc) from None


@router.delete("/{customer_id}", responses=NOT_FOUND)
def erase_customer_data(
    customer_id: str,
    principal: AdminOnly,
    engine: EngineDep,
    settings: SettingsDep,
    body: Annotated[ErasureBody | None, Body()] = None,
    reason: Annotated[str | None, Query(min_length=3, max_length=500)] = None,
) -> ErasurePublic:
    """Erase the person everywhere, then scan every store, table and log for traces.

    Orders stay for the accounts and audit rows stay for accountability, both under
    the pseudonym in the answer. The reason goes in the body (``{"reason": ...}``)
    or the ``reason`` query parameter.
    """
    why = body.reason if body is not None else reason
    if why is None or not why.strip():
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body", "reason"), "msg": "Field required", "input": None}]
        )
    try:
        erasure = erase_customer(
            engine,
            customer_id,
            principal.actor,
            why,
            log_paths=expand_log_paths(settings.privacy_log_paths),
        )
    except NotFound as exc:
        raise _refuse_unknown(engine, principal, "customer.erase", customer_id, exc) from None
    return ErasurePublic.model_validate(erasure.as_dict())
