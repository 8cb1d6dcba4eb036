"""Customer records: import them, and read what storelens holds about a person (audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from storelens.api.deps import (
    AnalystOrAdmin,
    EngineDep,
    EventLogDep,
    EventWindow,
    Offset,
    SettingsDep,
)
from storelens.api.errors import error_responses
from storelens.api.predict_schemas import CustomerPrediction
from storelens.api.records import IMPORT_RESPONSES, RECORDS_BODY, read_records, report
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
from storelens.cdp.records import ImportIds, customer_events, search_customers
from storelens.cdp.resolution import canonical_id
from storelens.cdp.sources import BATCH as IMPORT_BATCH
from storelens.cdp.unmerge import unmerge
from storelens.core.errors import NotFound
from storelens.ingest.batch import IngestReport, ingest_items
from storelens.ingest.write_audit import audited
from storelens.predict.store import customer_prediction, why_unscored
from storelens.privacy import audit
from storelens.processors import catch_up

router = APIRouter(
    prefix="/v1/customers", tags=["customers"], responses=error_responses(400, 403, 422)
)
CustomerId = Annotated[str, Path(min_length=1, max_length=200)]

SOURCE = Query(
    min_length=1,
    max_length=64,
    pattern=r"^[a-z0-9][a-z0-9_-]*$",
    description="the source system these records come from, e.g. crm or webshop",
)


@router.post("/import", openapi_extra=RECORDS_BODY, responses=IMPORT_RESPONSES)
async def import_customers(
    request: Request,
    principal: AnalystOrAdmin,
    event_log: EventLogDep,
    window: EventWindow,
    settings: SettingsDep,
    source: Annotated[str, SOURCE],
) -> ImportReport:
    """Records become ``customer.upserted`` events; re-importing a file stores nothing twice."""
    rows: list[dict[str, Any]] = await read_records(request)
    ids = ImportIds.of(settings)

    def store() -> IngestReport:  # blocking database work: in a worker thread
        # A transaction (and an audit row) per 1,000 records, as `storelens cdp import`:
        # the append lock is held for one batch, not the whole upload, so tills and MQTT
        # batches do not queue behind 100,000 records and their audit work.
        then = audited(
            principal.actor, None, action="customers.import", resource="customer", source=source
        )
        total = IngestReport()
        for start in range(0, max(len(rows), 1), IMPORT_BATCH):
            part = ingest_items(
                event_log,
                customer_events(source, rows[start : start + IMPORT_BATCH], ids),
                window=window,
                sent_by=principal.actor.name,
                then=then,  # committed with the records
            )
            total.add(part, start.__add__)  # a rejection's place in the whole upload
        # The server's projection loop owns the read models: wake it and wait (bounded).
        catch_up(event_log, request.app.state.projection_loop)
        return total

    result = await run_in_threadpool(store)
    return report(
        result.accepted,
        result.duplicates,
        [(r.index, r.errors) for r in result.rejected],
        conflicts=result.conflicts,
    )


@router.get("")
def list_customers(
    principal: AnalystOrAdmin,
    engine: EngineDep,
    q: Annotated[str | None, Query(max_length=200, description="name or email contains")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> ListOf[CustomerRecordPublic]:
    with engine.begin() as conn:
        total, rows = search_customers(conn, q, limit=limit, offset=offset)
        audit.record(
            conn,
            principal.actor,
            "customer.list",
            "customer",
            None,
            {"q": q, "returned": len(rows)},
            customers=[r["customer_id"] for r in rows if r["customer_id"]],
        )
    return ListOf(data=[CustomerRecordPublic.model_validate(r) for r in rows], count=total)


@router.get("/{customer_id}", responses=error_responses(403, 404, 422))
def get_customer(
    customer_id: CustomerId, principal: AnalystOrAdmin, engine: EngineDep
) -> CustomerProfile:
    """The unified profile: golden record, sources, orders, behaviour, visits, consent.

    Any id the person is known by works (current, retired by a merge, or a loyalty id).
    """
    with engine.begin() as conn:
        profile = build_profile(conn, customer_id)
        ids = [] if profile is None else list(profile["known_ids"])
        prediction = None if profile is None else customer_prediction(conn, ids)
        missing = None if profile is None or prediction is not None else why_unscored(conn, ids)
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
            "predictions": None
            if prediction is None
            else CustomerPrediction.model_validate(prediction),
            "predictions_missing": missing,
        }
    )


@router.post("/{customer_id}/unmerge", responses=error_responses(403, 404, 409, 413, 422))
def unmerge_customer(
    customer_id: CustomerId, body: UnmergeRequest, principal: AnalystOrAdmin, engine: EngineDep
) -> UnmergeResult:
    """Split wrongly merged records off; later resolutions keep them apart.

    Ids follow the records that held them before the merge: the records split off get
    back the id they had (or a new one), and where they are the ones the customer's id
    was made for, they keep it and the records left behind get theirs back.
    ``customer_id`` in the answer is the id the records left behind have now.
    """
    with engine.begin() as conn:
        current = canonical_id(conn, customer_id) or customer_id
    split = unmerge(engine, current, body.records, principal.actor, body.reason)
    return UnmergeResult(
        customer_id=split.customer_id,
        new_customer_id=split.new_customer_id,
        records=list(split.records),
        aliases=list(split.aliases),
    )
