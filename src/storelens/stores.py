"""Stores and their layouts: versioned layout documents, with zones and cameras as rows.

A layout is kept whole (the document as written, so it can be re-read and diffed)
and every save is a new version; the zones and cameras tables always reflect the
latest one, for queries that join events to zone kinds.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from storelens.core.errors import Conflict, LayoutError, NotFound
from storelens.core.layout import StoreLayout, load_layout, parse_layout
from storelens.storage.tables import cameras, store_layouts, stores, zones

__all__ = [
    "create_store",
    "delete_store",
    "ensure_store",
    "get_layout",
    "get_store",
    "list_stores",
    "load_layout_file",
    "queue_zone_ids",
    "save_layout",
    "update_store",
]


def _store(conn: Connection, row: Any) -> dict[str, Any]:
    d = dict(row._mapping)
    d["layout_version"] = conn.execute(
        select(func.max(store_layouts.c.version)).where(store_layouts.c.store_id == d["id"])
    ).scalar()
    return d


def create_store(
    conn: Connection, store_id: str, name: str, timezone: str = "UTC", kind: str = "other"
) -> dict[str, Any]:
    if conn.execute(select(stores.c.id).where(stores.c.id == store_id)).first():
        raise Conflict(f"store {store_id!r} already exists")
    conn.execute(
        stores.insert(),
        {
            "id": store_id,
            "name": name,
            "timezone": timezone,
            "kind": kind,
            "created_at": datetime.now(UTC),
        },
    )
    return get_store(conn, store_id)


def ensure_store(conn: Connection, layout: StoreLayout) -> None:
    """Create the store a layout describes if it does not exist yet."""
    if not conn.execute(select(stores.c.id).where(stores.c.id == layout.store_id)).first():
        create_store(conn, layout.store_id, layout.name, layout.timezone, layout.kind)


def get_store(conn: Connection, store_id: str) -> dict[str, Any]:
    row = conn.execute(select(stores).where(stores.c.id == store_id)).first()
    if row is None:
        raise NotFound(f"no store {store_id!r}")
    return _store(conn, row)


def list_stores(conn: Connection) -> list[dict[str, Any]]:
    return [_store(conn, r) for r in conn.execute(select(stores).order_by(stores.c.id))]


def update_store(conn: Connection, store_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in changes.items() if v is not None}
    if values:
        done = conn.execute(update(stores).where(stores.c.id == store_id).values(**values))
        if done.rowcount == 0:
            raise NotFound(f"no store {store_id!r}")
    return get_store(conn, store_id)


def delete_store(conn: Connection, store_id: str) -> None:
    # Children first: SQLite only cascades when foreign keys are on for the connection.
    for table in (zones, cameras, store_layouts):
        conn.execute(delete(table).where(table.c.store_id == store_id))
    if conn.execute(delete(stores).where(stores.c.id == store_id)).rowcount == 0:
        raise NotFound(f"no store {store_id!r}")


def save_layout(
    conn: Connection,
    store_id: str,
    document: Mapping[str, Any],
    created_by: str | None = None,
) -> tuple[int, StoreLayout]:
    """Validate and store a new layout version; raises LayoutError naming the bad key."""
    layout = parse_layout(document, path=f"layout of {store_id}")
    if layout.store_id != store_id:
        raise LayoutError(
            f"layout of {store_id}", "store.id", f"is {layout.store_id!r}, expected {store_id!r}"
        )
    get_store(conn, store_id)
    version = (
        conn.execute(
            select(func.max(store_layouts.c.version)).where(store_layouts.c.store_id == store_id)
        ).scalar()
        or 0
    ) + 1
    conn.execute(
        store_layouts.insert(),
        {
            "store_id": store_id,
            "version": version,
            "document": dict(document),
            "created_at": datetime.now(UTC),
            "created_by": created_by,
        },
    )
    conn.execute(delete(zones).where(zones.c.store_id == store_id))
    conn.execute(delete(cameras).where(cameras.c.store_id == store_id))
    conn.execute(
        zones.insert(),
        [
            {
                "store_id": store_id,
                "zone_id": z.id,
                "name": z.name,
                "kind": z.kind,
                "polygon": [list(p) for p in z.polygon],
            }
            for z in layout.zones
        ],
    )
    if layout.cameras:
        conn.execute(
            cameras.insert(),
            [
                {
                    "store_id": store_id,
                    "camera_id": c.id,
                    "name": c.name,
                    "source": c.source,
                    "fps": c.fps,
                    "calibration": c.calibration.model_dump(mode="json"),
                }
                for c in layout.cameras
            ],
        )
    return version, layout


def load_layout_file(
    conn: Connection, path: Path, created_by: str | None = None
) -> tuple[int, StoreLayout]:
    """Store a layout file as its store's newest version, creating the store if needed."""
    layout = load_layout(path)
    ensure_store(conn, layout)
    return save_layout(conn, layout.store_id, tomllib.loads(path.read_text()), created_by)


def get_layout(conn: Connection, store_id: str) -> tuple[int, dict[str, Any]]:
    row = conn.execute(
        select(store_layouts.c.version, store_layouts.c.document)
        .where(store_layouts.c.store_id == store_id)
        .order_by(store_layouts.c.version.desc())
        .limit(1)
    ).first()
    if row is None:
        raise NotFound(f"store {store_id!r} has no layout yet")
    return row.version, row.document


def queue_zone_ids(conn: Connection, store_id: str) -> list[str]:
    """Zones of the store's current layout whose kind is ``queue``."""
    return list(
        conn.execute(
            select(zones.c.zone_id).where(zones.c.store_id == store_id, zones.c.kind == "queue")
        ).scalars()
    )
