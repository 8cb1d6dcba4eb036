"""BI downloads: a store's daily zone, operations and heat tables as CSV or Parquet.

The same tables as ``storelens export`` (:mod:`storelens.instore.export_tables`), for
the dashboard's download buttons and for BI tools that pull over HTTP. They are
aggregates without customer or track ids, so every person who may see the store's
operations (admin, analyst, staff) may download them; device keys may not.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import AfterValidator

from storelens.api.deps import AnyPerson, EngineDep, KnownStore, SettingsDep
from storelens.api.errors import error_responses
from storelens.instore.export_data import CSV_TYPE, PARQUET_TYPE, export_range, table_bytes
from storelens.instore.export_tables import EXPORT_TABLES

__all__ = ["router"]

router = APIRouter(prefix="/v1/stores/{store_id}/exports", tags=["exports"])

EARLIEST, LATEST = date(1970, 1, 1), date(2199, 12, 31)
"""Days an export may name: no data exists outside, and near year 9999 the day after
``to`` (the period's end) cannot be written as a date."""


def _in_range(value: date) -> date:
    if not EARLIEST <= value <= LATEST:
        raise ValueError(f"must be between {EARLIEST} and {LATEST}")
    return value


ExportDay = Annotated[date, AfterValidator(_in_range)]

_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The table: CSV with a header row, or a Parquet file whose schema "
        "metadata gives each column's unit",
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            PARQUET_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    },
    **error_responses(403, 404, 422),
}
_DOWNLOAD[404]["description"] = "Unknown store or table, no layout, or no data in the period"
_MEDIA = {"csv": CSV_TYPE, "parquet": PARQUET_TYPE}


def _filename_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


@router.get("/{table}", response_class=Response, responses=_DOWNLOAD)
def download(
    _: AnyPerson,  # the role gate first: no caller learns which stores exist
    store_id: KnownStore,
    table: Annotated[str, Path(max_length=32, description=f"one of {', '.join(EXPORT_TABLES)}")],
    engine: EngineDep,
    settings: SettingsDep,
    first: Annotated[ExportDay, Query(alias="from", description="first local day")],
    last: Annotated[ExportDay, Query(alias="to", description="last local day, inclusive")],
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> Response:
    """One table over ``[from, to]`` (local days, inclusive), one row per the table's
    grain: ``zones`` per day, daypart and zone; ``operations`` per day, hour, register
    and barista; ``heat`` per day, daypart and grid cell. Whole-day rows have
    ``daypart = "all"`` (``hour`` empty in ``operations``). A period with no data is a
    404 with a message, never an empty file."""
    data = export_range(engine, store_id, table, first, last, max_days=settings.export_max_days)
    name = f"{_filename_part(table)}_{_filename_part(store_id)}_{first}_{last}.{fmt}"
    return Response(
        content=table_bytes(data, fmt),
        media_type=_MEDIA[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
