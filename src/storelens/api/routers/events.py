"""Event intake and event queries."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from starlette.concurrency import run_in_threadpool

from storelens.api.deps import (
    After,
    AnalystOrAdmin,
    EngineDep,
    EventLogDep,
    EventWindow,
    EventWriter,
    QueryTime,
    SettingsDep,
)
from storelens.api.errors import error_responses
from storelens.api.permissions import EventPermit
from storelens.api.schemas import EventPublic, IngestResult, ListOf
from storelens.core.events import EVENT_TYPES, event_batch_adapter
from storelens.ingest.batch import ingest_json
from storelens.ingest.write_audit import audited
from storelens.privacy import audit
from storelens.privacy.spine import event_customers
from storelens.storage.eventlog import EventQuery

router = APIRouter(prefix="/v1/events", tags=["events"], responses=error_responses(403, 422))

_BATCH_SCHEMA = event_batch_adapter.json_schema(ref_template="#/components/schemas/{model}")


def document_event_body(openapi: dict[str, Any]) -> None:
    """Put the event schemas into the OpenAPI document (the route reads the raw body)."""
    openapi.setdefault("components", {}).setdefault("schemas", {}).update(
        _BATCH_SCHEMA.get("$defs", {})
    )
    body = openapi["paths"]["/v1/events"]["post"]["requestBody"]
    body["content"]["application/json"]["schema"] = {
        k: v for k, v in _BATCH_SCHEMA.items() if k != "$defs"
    }


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "array", "items": {}}}},
        "description": "A JSON array of events (see the Event schemas); at most "
        "STORELENS_MAX_BATCH (default 10,000) per request.",
    }
}


@router.post("", openapi_extra=_BODY_DOC, responses=error_responses(400, 403, 413, 422))
async def post_events(
    request: Request,
    principal: EventWriter,
    event_log: EventLogDep,
    settings: SettingsDep,
    window: EventWindow,
) -> IngestResult:
    """Append a batch; each event is accepted, a duplicate (the same event, same id,
    stored before), or rejected with field-level errors. One bad event never rejects the
    batch: an event type the key was not made for is rejected on its own (error type
    ``forbidden``), and so is an event whose id already names a different event (error
    type ``id_conflict`` on ``id``, also counted in ``conflicts``): the answer is still
    200, and that event is stored only when sent again under a new id."""
    body = await request.body()  # BodyLimit has already refused anything too large
    permit = EventPermit(principal)
    report = await run_in_threadpool(
        ingest_json,
        event_log,
        body,
        max_items=settings.max_batch,
        window=window,
        store_scope=principal.store_scope,
        permit=permit,
        sent_by=principal.actor.name,
        then=audited(principal.actor, principal.store_scope),  # committed with the events
    )
    counter = request.app.state.metrics.events
    counter.labels("accepted").inc(report.accepted)
    counter.labels("duplicate").inc(report.duplicates)
    counter.labels("conflict").inc(report.conflicts)  # outcomes partition the events
    counter.labels("rejected").inc(len(report.rejected) - report.conflicts)
    loop = getattr(request.app.state, "projection_loop", None)
    if report.accepted and loop is not None:
        loop.wake()  # live pages show new events now, not at the end of the loop's interval
    return IngestResult.model_validate(report.as_dict())


def _known_type(name: str) -> str:
    if name not in EVENT_TYPES:
        raise PydanticCustomError("event_type", "no such event type: {name}", {"name": name})
    return name


EventTypeName = Annotated[
    str,
    AfterValidator(_known_type),
    WithJsonSchema({"type": "string", "enum": sorted(EVENT_TYPES)}),
]
"""An event type filter: a typo answers 422 naming it instead of an empty page."""


@router.get("")
def get_events(
    principal: AnalystOrAdmin,
    event_log: EventLogDep,
    engine: EngineDep,
    store_id: str | None = None,
    type: Annotated[list[EventTypeName] | None, Query()] = None,  # the API's word
    since: QueryTime | None = None,
    until: QueryTime | None = None,
    subject: Annotated[str | None, Query(max_length=128)] = None,
    sent_by: Annotated[
        str | None,
        Query(max_length=128, description="only events this key, user or device handed in"),
    ] = None,
    after: After = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> ListOf[EventPublic]:
    """Events in log order; page with ``after`` = the last ``seq`` you received."""
    rows = event_log.query(
        EventQuery(
            store_id=store_id,
            types=type or (),
            since=since,
            until=until,
            subject=subject,
            sent_by=sent_by,
            after_seq=after,
            limit=limit,
        )
    )
    # Events can carry personal data (customer records, purchases by a customer): the
    # row names everyone the page was about, so their access requests list this read.
    with engine.begin() as conn:
        audit.record(
            conn,
            principal.actor,
            "events.read",
            "events",
            subject,
            {
                "store_id": store_id,
                "types": type,
                "sent_by": sent_by,
                "after": after,
                "count": len(rows),
            },
            customers=[c for r in rows for c in event_customers(r.subject, r.type, r.payload)],
        )
    return ListOf(data=[EventPublic.model_validate(r.as_json()) for r in rows], count=len(rows))
