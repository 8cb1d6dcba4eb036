"""The dashboard's download buttons: the BI exports (CSV or Parquet) with the session cookie.

The exports themselves (``storelens.instore.export_data``: the tables ``storelens
export`` writes and ``GET /v1/stores/{id}/exports/{table}`` serves) are not computed
here. A browser link cannot carry the API's bearer token, and the session cookie
deliberately opens no ``/v1`` route, so the dashboard answers its own GET with the same
bytes. The export module arrives with the BI-export work; until it is installed this
route says so with a 404 rather than failing.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from storelens.api.auth import settings_of
from storelens.api.errors import error_responses
from storelens.core.errors import NotFound
from storelens.web.period import pick_period
from storelens.web.session import WebPerson

__all__ = ["EXPORT_MODULE", "TABLES", "router"]

EXPORT_MODULE = "storelens.instore.export_data"
TABLES = ("zones", "operations", "heat")
router = APIRouter(
    prefix="/web/api/stores/{store_id}/exports",
    tags=["dashboard"],
    responses=error_responses(401, 403, 404, 422),
)
Day = Annotated[str | None, Query(max_length=40, description="a local date, YYYY-MM-DD")]


def _exports() -> ModuleType:
    try:
        return importlib.import_module(EXPORT_MODULE)
    except ModuleNotFoundError:
        raise NotFound("exports are not installed in this version of storelens") from None


def _filename_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


@router.get(
    "/{table}",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
            "description": "the table as a file",
        }
    },
)
def download(
    request: Request,
    store_id: Annotated[str, Path(max_length=64)],
    table: Literal["zones", "operations", "heat"],
    _: WebPerson,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> Response:
    """The table over the period as ``GET /v1/stores/{id}/exports/{table}`` gives it."""
    settings = settings_of(request)
    engine = request.app.state.engine
    first, last = pick_period(
        engine,
        store_id,
        since,
        until,
        default_days=settings.web_default_days,
        max_days=settings.web_max_days,
    )
    exports = _exports()
    data = exports.export_range(
        engine, store_id, table, first, last, max_days=settings.web_max_days
    )
    media = exports.PARQUET_TYPE if fmt == "parquet" else exports.CSV_TYPE
    name = f"{table}_{_filename_part(store_id)}_{first}_{last}.{fmt}"
    return Response(
        content=exports.table_bytes(data, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
