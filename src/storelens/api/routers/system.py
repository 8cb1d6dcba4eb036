"""Liveness and metrics: open to anyone, and they reveal no personal data."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from storelens import __version__
from storelens.api.auth import public
from storelens.api.deps import EngineDep

router = APIRouter(tags=["system"])


@router.get("/health", dependencies=[public()])
def health(engine: EngineDep) -> dict[str, Any]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        database = "ok"
    except Exception as exc:  # report, don't crash: this is what monitors poll
        database = f"error: {type(exc).__name__}"
    return {
        "status": "ok" if database == "ok" else "degraded",
        "database": database,
        "version": __version__,
    }


@router.get("/metrics", dependencies=[public()], response_class=Response)
def metrics(request: Request) -> Response:
    body = request.app.state.metrics.render()
    return Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")
