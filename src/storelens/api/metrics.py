"""Prometheus metrics: one registry per app, so several apps (tests) never collide."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.routing import Match

__all__ = ["ApiMetrics"]


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "storelens_events",
            "Events received, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.requests = Histogram(
            "storelens_http_request_duration_seconds",
            "HTTP request duration by route",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def middleware(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = "unmatched"
        for r in request.app.router.routes:
            match, _ = r.matches(request.scope)
            if match == Match.FULL:
                route = getattr(r, "path", "unmatched")
                break
        self.requests.labels(request.method, route, str(response.status_code)).observe(
            time.perf_counter() - start
        )
        return response
