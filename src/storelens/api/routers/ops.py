"""Store operations: the metrics report, stored alerts, and live alerts for staff devices."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, WebSocket, WebSocketDisconnect
from sqlalchemy import select

from storelens import stores
from storelens.accounts import Role
from storelens.api.auth import principal_from_credential
from storelens.api.deps import AnyPerson, EngineDep
from storelens.instore.processor import report_from_db
from storelens.instore.store import list_alerts
from storelens.storage.tables import zones

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
async def live_alerts(websocket: WebSocket, store_id: str, token: str | None = None) -> None:
    """Live alerts for one store. Browsers cannot set headers on WebSockets, so the
    bearer token (or a device key) comes as ``?token=``; staff, analysts and admins."""
    credential = token or websocket.headers.get("x-api-key") or ""
    try:
        principal = principal_from_credential(websocket, credential) if credential else None
    except HTTPException:
        principal = None
    if principal is None or principal.role not in PEOPLE:
        await websocket.close(code=4401 if principal is None else 4403)
        return
    hub = websocket.app.state.hub
    await websocket.accept()
    queue = hub.subscribe(store_id)
    try:
        await websocket.send_json({"type": "hello", "store_id": store_id})
        while True:
            message = await queue.get()
            await websocket.send_json({"type": "alert", **message})
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(store_id, queue)
