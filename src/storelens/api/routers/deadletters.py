"""Messages that could not be ingested, for administrators: bodies may hold personal data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from storelens.api.deps import AdminOnly, EngineDep, Offset
from storelens.api.errors import error_responses
from storelens.api.schemas import ListOf
from storelens.ingest.deadletters import count_dead_letters, list_dead_letters
from storelens.privacy import audit

__all__ = ["DeadLetterPublic", "router"]

router = APIRouter(
    prefix="/v1/dead-letters", tags=["dead letters"], responses=error_responses(403, 422)
)


class DeadLetterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    received_at: datetime
    channel: str
    origin: str | None
    reason: str
    body: str


@router.get("")
def list_dead_letters_route(
    principal: AdminOnly,
    engine: EngineDep,
    channel: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> ListOf[DeadLetterPublic]:
    """Newest first; ``count`` is the total for the filter, so a client can page."""
    rows = list_dead_letters(engine, limit=limit, offset=offset, channel=channel)
    with engine.begin() as conn:  # bodies may hold personal data: a read is audited
        audit.record(
            conn, principal.actor, "dead_letters.read", "dead_letter", None,
            {"channel": channel, "offset": offset, "returned": len(rows)},
        )  # fmt: skip
    return ListOf(
        data=[DeadLetterPublic.model_validate(r) for r in rows],
        count=count_dead_letters(engine, channel=channel),
    )
