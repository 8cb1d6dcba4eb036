"""Store operations: the metrics report, stored alerts, and live alerts for staff devices."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, WebSocket

from storelens import stores
from storelens.accounts import Role
from storelens.api.deps import AdminOnly, AnyPerson, EngineDep, KnownStore, QueryTime
from storelens.api.errors import error_responses
from storelens.api.live_socket import admit, relay
from storelens.api.schemas import ListOf
from storelens.api.store_schemas import AlertPublic, AlertRuleIn, AlertRuleSet, OpsReport
from storelens.core.errors import FieldError, InvalidInput
from storelens.instore.alerts import DEFAULT_RULES, AlertRule
from storelens.instore.processor import report_from_db
from storelens.instore.store import (
    list_alerts,
    reset_store_rules,
    save_store_rules,
    store_rules,
)
from storelens.privacy import audit

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/v1/stores/{store_id}",
    tags=["operations"],
    responses=error_responses(400, 403, 404, 422),
)
PEOPLE = {Role.admin, Role.analyst, Role.staff}


def _zone_or_utc(store_id: str, name: str) -> str:
    """A store saved before zones were checked may name one that does not exist: its
    report is then given in UTC (and says so) rather than failing on every call."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        log.warning("store %s has an unknown time zone; reporting in UTC", store_id)
        return "UTC"
    return name


@router.get("/ops", response_model_exclude_unset=True)  # detail-only keys stay absent
def ops(
    _: AnyPerson,  # the role gate first: no caller learns which stores exist
    store_id: KnownStore,
    engine: EngineDep,
    since: Annotated[QueryTime | None, Query(alias="from")] = None,
    until: Annotated[QueryTime | None, Query(alias="to")] = None,
    detail: bool = False,
) -> OpsReport:
    """Fulfillment time, barista productivity, queue and dwell over ``[from, to)``.

    Figures are as current as the ops processor (it runs every second in the server)."""
    if since is not None and until is not None and since > until:
        raise InvalidInput(
            "from is after to", [FieldError.at(("query", "to"), "must not be before from", "range")]
        )
    with engine.connect() as conn:
        store = stores.get_store(conn, store_id)
        queue_zones = stores.queue_zone_ids(conn, store_id)
    report = report_from_db(
        engine,
        store_id,
        timezone=_zone_or_utc(store_id, store["timezone"]),
        queue_zones=queue_zones or ["queue"],
        since=since,
        until=until,
        detail=detail,
    )
    return OpsReport.model_validate(report)


@router.get("/alerts")
def alerts(
    _: AnyPerson,
    store_id: KnownStore,
    engine: EngineDep,
    since: QueryTime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ListOf[AlertPublic]:
    rows = list_alerts(engine, store_id, limit=limit, since=since)
    return ListOf(data=[AlertPublic.model_validate(r) for r in rows], count=len(rows))


@router.websocket("/alerts/ws")
async def live_alerts(
    websocket: WebSocket, store_id: str, ticket: str | None = None, token: str | None = None
) -> None:
    """Live alerts for one store, for staff, analysts and admins. Send the credential
    as an ``Authorization``/``X-API-Key`` header, or (browsers) as ``?ticket=`` from
    ``POST /v1/ws-ticket``; ``?token=`` still works but puts a long-lived secret in a
    URL. The socket closes with 4401 when the credential expires."""
    principal = await admit(websocket, store_id, PEOPLE, ticket=ticket, token=token)
    if principal is None:
        return
    hub = websocket.app.state.hub
    await websocket.accept()
    queue = hub.subscribe(store_id)
    try:
        await relay(
            websocket,
            principal,
            queue,
            opening=[{"type": "hello", "store_id": store_id}],
            wrap=lambda message: {"type": "alert", **message},
        )
    finally:
        hub.unsubscribe(store_id, queue)


@router.get("/alert-rules")
def get_alert_rules(_: AnyPerson, store_id: KnownStore, engine: EngineDep) -> AlertRuleSet:
    """The store's alert rules (the defaults unless an admin set its own)."""
    with engine.connect() as conn:
        own = store_rules(conn).get(store_id)
    rules = own if own is not None else DEFAULT_RULES
    return AlertRuleSet(
        data=[AlertRuleIn.model_validate(asdict(r)) for r in rules],
        count=len(rules),
        default=own is None,
    )


@router.put("/alert-rules", responses=error_responses(403, 404, 413, 422))
def put_alert_rules(
    principal: AdminOnly, store_id: KnownStore, rules: list[AlertRuleIn], engine: EngineDep
) -> AlertRuleSet:
    """Replace the store's rules (an empty list silences its alerts); the ops processor
    applies them from its next pass."""
    seen: set[str] = set()
    for i, rule in enumerate(rules):
        if rule.id in seen:
            message = f"rule id {rule.id!r} is used twice; ids must be unique within a store"
            raise InvalidInput(message, [FieldError.at(("body", i, "id"), message, "duplicate")])
        seen.add(rule.id)
    with engine.begin() as conn:
        save_store_rules(
            conn, store_id, [AlertRule(**r.model_dump()) for r in rules], principal.name
        )
        audit.record(
            conn,
            principal.actor,
            "alert_rules.update",
            "store",
            store_id,
            {"rules": [r.id for r in rules]},
        )
    return AlertRuleSet(data=rules, count=len(rules), default=False)


@router.delete("/alert-rules", status_code=204)
def reset_alert_rules(principal: AdminOnly, store_id: KnownStore, engine: EngineDep) -> None:
    """Go back to the default rules."""
    with engine.begin() as conn:
        reset_store_rules(conn, store_id)
        audit.record(conn, principal.actor, "alert_rules.reset", "store", store_id)
