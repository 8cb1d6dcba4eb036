"""Stores and their layouts (zones, lines, cameras on the floor plan)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, status

from storelens import stores
from storelens.accounts import Role
from storelens.api.deps import AdminOnly, AnyPerson, EngineDep, KnownStore
from storelens.api.errors import error_responses
from storelens.api.schemas import ListOf, StoreCreate, StorePublic, StoreUpdate
from storelens.api.store_schemas import LayoutPublic, LayoutSaved
from storelens.privacy import audit
from storelens.vision.capture import redact

__all__ = ["router"]

router = APIRouter(prefix="/v1/stores", tags=["stores"], responses=error_responses(400, 403, 422))
_ONE = error_responses(403, 404, 422)


@router.get("")
def list_stores(_: AnyPerson, engine: EngineDep) -> ListOf[StorePublic]:
    with engine.connect() as conn:
        rows = [StorePublic.model_validate(s) for s in stores.list_stores(conn)]
    return ListOf(data=rows, count=len(rows))


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(403, 409, 413, 422))
def create_store(body: StoreCreate, principal: AdminOnly, engine: EngineDep) -> StorePublic:
    with engine.begin() as conn:
        store = stores.create_store(conn, body.id, body.name, body.timezone, body.kind)
        audit.record(conn, principal.actor, "store.create", "store", body.id)
    return StorePublic.model_validate(store)


@router.get("/{store_id}", responses=_ONE)
def get_store(store_id: str, _: AnyPerson, engine: EngineDep) -> StorePublic:
    with engine.connect() as conn:
        return StorePublic.model_validate(stores.get_store(conn, store_id))


@router.patch("/{store_id}", responses=error_responses(403, 404, 413, 422))
def update_store(
    store_id: str, body: StoreUpdate, principal: AdminOnly, engine: EngineDep
) -> StorePublic:
    with engine.begin() as conn:
        store = stores.update_store(conn, store_id, body.model_dump(exclude_unset=True))
        audit.record(
            conn,
            principal.actor,
            "store.update",
            "store",
            store_id,
            body.model_dump(exclude_unset=True),
        )
    return StorePublic.model_validate(store)


@router.delete("/{store_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ONE)
def delete_store(store_id: str, principal: AdminOnly, engine: EngineDep) -> None:
    with engine.begin() as conn:
        stores.delete_store(conn, store_id)
        audit.record(conn, principal.actor, "store.delete", "store", store_id)


def _without_camera_secrets(document: dict[str, Any]) -> dict[str, Any]:
    cameras = document.get("cameras")
    if not isinstance(cameras, list):
        return document
    shown = [
        {**c, "source": redact(c["source"])}
        if isinstance(c, dict) and isinstance(c.get("source"), str)
        else c
        for c in cameras
    ]
    return {**document, "cameras": shown}


@router.get("/{store_id}/layout", responses=_ONE)
def get_layout(principal: AnyPerson, store_id: KnownStore, engine: EngineDep) -> LayoutPublic:
    """The store's current layout. Camera URLs often carry a password: only admins
    (who edit the layout and send it back) get them whole, everyone else with the
    credentials replaced by ``***`` (a security review found every staff login could
    read every camera's password)."""
    with engine.connect() as conn:
        version, document = stores.get_layout(conn, store_id)
    if principal.role is not Role.admin:
        document = _without_camera_secrets(document)
    return LayoutPublic(version=version, layout=document)


@router.put("/{store_id}/layout", responses=error_responses(403, 404, 413, 422))
def put_layout(
    principal: AdminOnly,  # the role gate first: no caller learns which stores exist
    store_id: KnownStore,
    engine: EngineDep,
    document: dict[str, Any] = Body(
        description="the layout in the same shape as a layout TOML file "
        "([store], [floor], [[zones]], [[lines]], [[cameras]])"
    ),
) -> LayoutSaved:
    """Store a new layout version; a bad layout is refused with the key at fault."""
    with engine.begin() as conn:
        version, layout = stores.save_layout(conn, store_id, document, principal.name)
        audit.record(
            conn, principal.actor, "layout.update", "store", store_id, {"version": version}
        )
    return LayoutSaved(version=version, zones=len(layout.zones), cameras=len(layout.cameras))
