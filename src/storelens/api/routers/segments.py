"""Segments of the latest scoring run, and who is in them (member reads are audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from storelens.api.deps import AnalystOrAdmin, EngineDep
from storelens.api.errors import error_responses
from storelens.api.predict_schemas import SegmentMember, SegmentMembers, SegmentPublic
from storelens.api.schemas import ListOf
from storelens.core.errors import NotFound
from storelens.predict.store import list_segments, segment_page
from storelens.privacy import audit

router = APIRouter(prefix="/v1/segments", tags=["segments"], responses=error_responses(403, 422))

SegmentId = Annotated[
    str, Path(min_length=1, max_length=64, description="e.g. rfm:champions or cluster:cluster-1")
]
MAX_PAGE = 1000


@router.get("")
def get_segments(principal: AnalystOrAdmin, engine: EngineDep) -> ListOf[SegmentPublic]:
    """RFM and clustering segments with size, revenue share, trend and a plain description."""
    with engine.connect() as conn:
        rows = list_segments(conn)
    return ListOf(data=[SegmentPublic.model_validate(r) for r in rows], count=len(rows))


@router.get("/{segment_id}/members", responses=error_responses(403, 404, 422))
def get_segment_members(
    segment_id: SegmentId,
    principal: AnalystOrAdmin,
    engine: EngineDep,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="next_cursor of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> SegmentMembers:
    """A page of the segment's members (customer id order) with their scores."""
    with engine.begin() as conn:
        known = {s["id"] for s in list_segments(conn)}
        if segment_id not in known:
            raise NotFound(f"no segment {segment_id!r}")
        page = segment_page(conn, segment_id, cursor, limit)
        audit.record(
            conn,
            principal.actor,
            "segment.members.read",
            "segment",
            segment_id,
            {"members": len(page.members), "cursor": cursor is not None},
            customers=[m["customer_id"] for m in page.members],
        )
    return SegmentMembers(
        data=[SegmentMember.model_validate(m) for m in page.members], next_cursor=page.next_cursor
    )
