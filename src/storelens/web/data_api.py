"""The JSON behind the dashboard's pages, read with the session cookie.

Each route returns the model its page renders, and fails the way the API does: 404
for an unknown store or a period without data, 422 naming the query field for a bad
date or a range the wrong way round. The Today stream is ``text/event-stream``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from storelens import stores
from storelens.api.deps import EngineDep, Now, SettingsDep
from storelens.api.errors import error_responses
from storelens.web.customers import customers_view, segment_table_csv
from storelens.web.live import LiveBoard, sse_stream
from storelens.web.period import period_view
from storelens.web.schemas import CustomersView, FloorView, OperationsView, TodayView
from storelens.web.session import WebManager, WebPerson
from storelens.web.today import today_view

__all__ = ["router"]

router = APIRouter(
    prefix="/web/api/stores/{store_id}",
    tags=["dashboard"],
    responses=error_responses(401, 403, 404, 422),
)
StoreId = Annotated[str, Path(max_length=64)]
Day = Annotated[str | None, Query(max_length=40, description="a local date, YYYY-MM-DD")]


def _board(request: Request) -> LiveBoard:
    board: LiveBoard = request.app.state.live_board
    return board


@router.get("/today")
def today(store_id: StoreId, _: WebPerson, engine: EngineDep, now: Now) -> TodayView:
    """The store now: live counts, the day so far, open alerts."""
    return today_view(engine, store_id, now)


@router.get(
    "/today/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "TodayView events"}},
)
async def today_stream(
    request: Request,
    store_id: StoreId,
    person: WebPerson,
    engine: EngineDep,
    settings: SettingsDep,
    now: Now,
) -> StreamingResponse:
    """``event: today`` with a :class:`TodayView` now and whenever new events are processed."""
    await asyncio.to_thread(_known, engine, store_id)  # 404 before the stream starts

    async def compute() -> str:
        # The clock when the stream opened: a page kept open past midnight marks the
        # new day "behind" only when it is reloaded (the stream ends with the sign-in).
        view = await asyncio.to_thread(today_view, engine, store_id, now)
        return view.model_dump_json()

    stream = sse_stream(
        _board(request),
        f"today:{store_id}",
        compute,
        heartbeat_s=settings.web_live_heartbeat_s,
        expires_at=person.expires_at,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)


def _known(engine: EngineDep, store_id: str) -> None:
    with engine.connect() as conn:
        stores.get_store(conn, store_id)


@router.get("/floor")
def floor(
    request: Request,
    store_id: StoreId,
    _: WebPerson,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
) -> FloorView:
    """Heat grids (whole day and each daypart), the zone table and the findings."""
    view = period_view(request, "floor", store_id, since, until)
    assert isinstance(view, FloorView)
    return view


@router.get("/operations")
def operations(
    request: Request,
    store_id: StoreId,
    _: WebPerson,
    since: Annotated[Day, Query(alias="from")] = None,
    until: Annotated[Day, Query(alias="to")] = None,
) -> OperationsView:
    """Fulfillment and productivity by day, hour, daypart, register and barista; alerts."""
    view = period_view(request, "operations", store_id, since, until)
    assert isinstance(view, OperationsView)
    return view


def _customers(engine: EngineDep, settings: SettingsDep, store_id: str) -> CustomersView:
    return customers_view(
        engine,
        store_id,
        high_risk=settings.predict_high_churn_risk,
        clv_bins=settings.web_clv_bins,
        clv_months=settings.predict_clv_months,
    )


@router.get("/customers")
def customers(
    store_id: StoreId, _: WebManager, engine: EngineDep, settings: SettingsDep
) -> CustomersView:
    """The latest scoring run in aggregate (``scored`` false before the first run)."""
    return _customers(engine, settings, store_id)


@router.get(
    "/customers/segments.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the segment tables"}},
)
def segments_csv(
    store_id: StoreId, _: WebManager, engine: EngineDep, settings: SettingsDep
) -> Response:
    """The RFM and cluster segment tables as CSV (aggregates only, no customer ids)."""
    view = _customers(engine, settings, store_id)
    stamp = view.as_of.strftime("%Y-%m-%d") if view.as_of else "unscored"
    return Response(
        content=segment_table_csv(view),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="segments_{stamp}.csv"'},
    )
