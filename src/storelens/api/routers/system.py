"""Liveness and metrics: open to anyone, and they reveal no personal data.

Besides the database, ``/health`` reports each projection's lag and last error: a
projection that fails keeps serving stale read models without any request failing,
so this is where an operator (or a monitor) sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import text

from storelens import __version__
from storelens.api.auth import public
from storelens.api.deps import EngineDep, EventLogDep
from storelens.processors import ProjectionLoop, projection_health

router = APIRouter(tags=["system"])


class ProjectionPublic(BaseModel):
    name: str
    position: int = Field(description="the last event-log position it committed")
    lag_events: int = Field(description="events stored after that position")
    lag_seconds: float = Field(description="how long the oldest of those has waited")
    failing: bool = Field(description="its last run failed; it is retried with backoff")
    errors_total: int = Field(description="failures since this server started")
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_error_position: int | None = Field(None, description="cursor when it last failed")


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when the database or a projection fails")
    database: str
    version: str
    projections: list[ProjectionPublic] = Field(
        description="each projection's lag; errors are known where its loop runs"
    )


def projection_loop(request: Request) -> ProjectionLoop | None:
    loop: ProjectionLoop | None = getattr(request.app.state, "projection_loop", None)
    return loop


def clock(request: Request) -> datetime:
    """Wall-clock now; tests put their own ``app.state.clock`` in its place."""
    now: Callable[[], datetime] | None = getattr(request.app.state, "clock", None)
    return now() if now is not None else datetime.now(UTC)


@router.get("/health", dependencies=[public()])
def health(request: Request, engine: EngineDep, event_log: EventLogDep) -> Health:
    projections: list[ProjectionPublic] = []
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
        for h in projection_health(event_log, projection_loop(request), clock(request)):
            s = h.status
            projections.append(
                ProjectionPublic(
                    name=h.name,
                    position=h.position,
                    lag_events=h.lag_events,
                    lag_seconds=round(h.lag_seconds, 3),
                    failing=s.failing,
                    errors_total=s.errors_total,
                    last_error=s.last_error,
                    last_error_at=s.last_error_at,
                    last_error_position=s.last_error_position,
                )
            )
    except Exception as exc:  # report, don't crash: this is what monitors poll
        database = f"error: {type(exc).__name__}"
    ok = database == "ok" and not any(p.failing for p in projections)
    return Health(
        status="ok" if ok else "degraded",
        database=database,
        version=__version__,
        projections=projections,
    )


@router.get("/metrics", dependencies=[public()], response_class=Response)
def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
