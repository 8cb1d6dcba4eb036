"""Customer records: import them, and read what storelens holds about a person (audited)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import func, or_, select

from storelens.api.deps import AnalystOrAdmin, EngineDep, EventLogDep
from storelens.api.records import RECORDS_BODY, read_records, report
from storelens.api.schemas import (
    ConsentPublic,
    CustomerProfile,
    CustomerRecordPublic,
    ImportReport,
    ListOf,
    OrderPublic,
    UnmergeRequest,
    UnmergeResult,
)
from storelens.cdp.profile import build_profile
from storelens.cdp.records import customer_events
from storelens.cdp.resolution import canonical_id, unmerge
from storelens.core.errors import NotFound
from storelens.ingest.batch import ingest_items
from storelens.privacy import audit
from storelens.processors import catch_up
from storelens.storage.tables import customers

router = APIRouter(prefix="/v1/customers", tags=["customers"])

SOURCE = Query(
    min_length=1,
    max_length=64,
    pattern=r"^[a-z0-9][a-z0-9_-]*$",
    description="the source system these records come from, e.g. crm or webshop",
)


@router.post("/import", openapi_extra=RECORDS_BODY)
async def import_customers(
    request: Request,
    principal: AnalystOrAdmin,
    event_log: EventLogDep,
    engine: EngineDep,
    source: Annotated[str, SOURCE],
) -> ImportReport:
    """Records become ``customer.upserted`` events; re-importing a file stores nothing twice."""
    rows: list[dict[str, Any]] = await read_records(request)
    result = ingest_items(event_log, customer_events(source, rows))
    # The server's projection loop owns the read models: wake it and wait (bounded).
    await asyncio.to_thread(catch_up, event_log, request.app.state.projection_loop)
    with engine.begin() as conn:
        audit.record(
            conn,
            principal.actor,
            "customers.import",
            "customer",
            None,
            {"source": source, "accepted": result.accepted, "rejected": len(result.rejected)},
        )
    return report(
        result.accepted, result.duplicates, [(r.index, r.errors) for r in result.rejected]
    )


@router.get("")
def list_customers(
    principal: AnalystOrAdmin,
    engine: EngineDep,
    q: Annotated[str | None, Query(max_length=200, description="name or email contains")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ListOf[CustomerRecordPublic]:
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
    with engine.begin() as conn:
        total = conn.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
        rows = conn.execute(stmt.order_by(customers.c.id).limit(limit).offset(offset)).all()
        audit.record(
            conn,
            principal.actor,
            "customer.list",
            "customer",
            None,
            {"q": q, "returned": len(rows)},
        )
    return ListOf(
        data=[CustomerRecordPublic.model_validate(dict(r._mapping)) for r in rows], count=total
    )


@router.get("/{customer_id}")
def get_customer(customer_id: str, principal: AnalystOrAdmin, engine: EngineDep) -> CustomerProfile:
    """The unified profile: golden record, sources, orders, behaviour, visits, consent.

    Any id the person is known by works (current, retired by a merge, or a loyalty id).
    """
    with engine.begin() as conn:
        profile = build_profile(conn, customer_id)
        audit.record(  # a miss is audited too: probing for a person is a read
            conn,
            principal.actor,
            "customer.read",
            "customer",
            customer_id,
            {"found": False}
            if profile is None
            else {"records": len(profile["records"]), "orders": len(profile["orders"])},
        )
    if profile is None:
        raise NotFound(f"no customer {customer_id!r}")
    orders = profile["orders"]
    return CustomerProfile.model_validate(
        {
            **profile,
            "records": [CustomerRecordPublic.model_validate(r) for r in profile["records"]],
            "orders": [OrderPublic.model_validate(o, from_attributes=True) for o in orders],
            "consent": [
                ConsentPublic.model_validate(c, from_attributes=True) for c in profile["consent"]
            ],
            "total_spent": round(sum(o.total for o in orders), 2),
            "order_count": len(orders),
        }
    )


@router.post("/{customer_id}/unmerge")
def unmerge_customer(
    customer_id: str, body: UnmergeRequest, principal: AnalystOrAdmin, engine: EngineDep
) -> UnmergeResult:
    """Split wrongly merged records off into a new customer; later resolutions keep them apart."""
    with engine.begin() as conn:
        current = canonical_id(conn, customer_id) or customer_id
    new_id = unmerge(engine, current, body.records, principal.actor, body.reason)
    return UnmergeResult(customer_id=current, new_customer_id=new_id, records=sorted(body.records))
