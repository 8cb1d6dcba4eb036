"""Store operations: the metrics report, stored alerts, and live alerts for staff devices."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, select

from storelens import stores
from storelens.accounts import Role
from storelens.api.deps import AdminOnly, AnyPerson, EngineDep
from storelens.api.websocket_auth import (
    clock_of,
    credential_expiry,
    store_refusal,
    websocket_principal,
)
from storelens.instore.alerts import DEFAULT_RULES, AlertRule
from storelens.instore.processor import report_from_db
from storelens.instore.store import list_alerts, save_store_rules, store_rules
from storelens.privacy import audit
from storelens.storage.tables import store_alert_rules, zones

router = APIRouter(prefix="/v1/stores/{store_id}", tags=["operations"])
PEOPLE = {Role.admin, Role.analyst, Role.staff}


def _aware(name: str, value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise HTTPException(422, detail=f"{name} needs a timezone offset")
    return value


@router.get("/ops")
def ops(
    store_id: str,
    _: AnyPerson,
    engine: EngineDep,
    since: Annotated[datetime | None, Query(alias="from")] = None,
    until: Annotated[datetime | None, Query(alias="to")] = None,
    detail: bool = False,
) -> dict[str, Any]:
    """Fulfillment time, barista productivity, queue and dwell over ``[from, to)``.

    Figures are as current as the ops processor (it runs every second in the server)."""
    with engine.connect() as conn:
        store = stores.get_store(conn, store_id)
        queue_zones = list(
            conn.execute(
                select(zones.c.zone_id).where(zones.c.store_id == store_id, zones.c.kind == "queue")
            ).scalars()
        )
    return report_from_db(
        engine,
        store_id,
        timezone=store["timezone"],
        queue_zones=queue_zones or ["queue"],
        since=_aware("from", since),
        until=_aware("to", until),
        detail=detail,
    )


@router.get("/alerts")
def alerts(
    store_id: str,
    _: AnyPerson,
    engine: EngineDep,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    rows = list_alerts(engine, store_id, limit=limit, since=_aware("since", since))
    return {"data": rows, "count": len(rows)}


@router.websocket("/alerts/ws")
async def live_alerts(
    websocket: WebSocket, store_id: str, ticket: str | None = None, token: str | None = None
) -> None:
    """Live alerts for one store, for staff, analysts and admins. Send the credential
    as an ``Authorization``/``X-API-Key`` header, or (browsers) as ``?ticket=`` from
    ``POST /v1/ws-ticket``; ``?token=`` still works but puts a long-lived secret in a
    URL. The socket closes with 4401 when the credential expires."""
    try:
        principal = websocket_principal(websocket, ticket=ticket, token=token)
    except HTTPException:
        principal = None
    if principal is None or principal.role not in PEOPLE:
        await websocket.close(code=4401 if principal is None else 4403)
        return
    refusal = await asyncio.to_thread(store_refusal, websocket, principal, store_id)
    if refusal is not None:
        await websocket.close(code=refusal)
        return
    hub = websocket.app.state.hub
    await websocket.accept()
    queue = hub.subscribe(store_id)

    async def forward() -> None:
        while True:
            message = await queue.get()
            await websocket.send_json({"type": "alert", **message})

    async def until_closed() -> None:  # the device hung up: stop waiting for alerts
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass

    expiry = asyncio.create_task(credential_expiry(principal, clock_of(websocket)))
    tasks = [asyncio.create_task(forward()), asyncio.create_task(until_closed()), expiry]
    try:
        await websocket.send_json({"type": "hello", "store_id": store_id})
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if expiry.done() and not tasks[1].done():
            await websocket.close(code=4401, reason="token expired")
    except WebSocketDisconnect:
        pass
    finally:
        for task in tasks:
            task.cancel()
        hub.unsubscribe(store_id, queue)


class AlertRuleIn(BaseModel):
    """One alert rule of a store; see ``storelens.instore.alerts.AlertRule``."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    kind: Literal["fulfillment_p90", "queue_length", "idle_barista"]
    threshold: float = Field(ge=0, allow_inf_nan=False)
    window_min: int = Field(default=15, ge=1, le=240)
    min_orders: int = Field(default=5, ge=1, le=1000)
    queue_min: int = Field(default=4, ge=0, le=1000)
    severity: Literal["info", "warning", "critical"] = "warning"
    raise_after_min: int = Field(default=2, ge=1, le=60)
    clear_after_min: int = Field(default=5, ge=1, le=240)


@router.get("/alert-rules")
def get_alert_rules(store_id: str, _: AnyPerson, engine: EngineDep) -> dict[str, Any]:
    """The store's alert rules (the defaults unless an admin set its own)."""
    with engine.connect() as conn:
        stores.get_store(conn, store_id)
        own = store_rules(conn).get(store_id)
    rules = own if own is not None else DEFAULT_RULES
    return {"data": [asdict(r) for r in rules], "count": len(rules), "default": own is None}


@router.put("/alert-rules")
def put_alert_rules(
    store_id: str, rules: list[AlertRuleIn], principal: AdminOnly, engine: EngineDep
) -> dict[str, Any]:
    """Replace the store's rules (an empty list silences its alerts); the ops processor
    applies them from its next pass."""
    if len({r.id for r in rules}) != len(rules):
        raise HTTPException(422, detail="rule ids must be unique within a store")
    with engine.begin() as conn:
        stores.get_store(conn, store_id)
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
    return {"data": [r.model_dump() for r in rules], "count": len(rules), "default": False}


@router.delete("/alert-rules", status_code=204)
def reset_alert_rules(store_id: str, principal: AdminOnly, engine: EngineDep) -> None:
    """Go back to the default rules."""
    with engine.begin() as conn:
        stores.get_store(conn, store_id)
        conn.execute(delete(store_alert_rules).where(store_alert_rules.c.store_id == store_id))
        audit.record(conn, principal.actor, "alert_rules.reset", "store", store_id)
