"""Prometheus metrics: one registry per app, so several apps (tests) never collide.

Projection lag and errors are read when Prometheus scrapes (a collector, not gauges
set from the loop), so the numbers are those of the database at that moment.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storelens.processors import ProjectionHealth

__all__ = ["ApiMetrics", "ProjectionCollector"]

log = logging.getLogger(__name__)


class ProjectionCollector(Collector):
    """``storelens_projection_*`` per projection: lag in events and seconds, whether it
    is failing, and its errors since the server started."""

    def __init__(self, source: Callable[[], Sequence[ProjectionHealth]]) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        try:
            health = self.source()
        except Exception:  # a scrape must not fail because the database did
            log.exception("projection metrics unavailable")
            return []
        lag_events = GaugeMetricFamily(
            "storelens_projection_lag_events",
            "Events stored after the projection's cursor",
            labels=["projection"],
        )
        lag_seconds = GaugeMetricFamily(
            "storelens_projection_lag_seconds",
            "How long the oldest event the projection has not handled has waited",
            labels=["projection"],
        )
        failing = GaugeMetricFamily(
            "storelens_projection_failing",
            "1 while the projection's last run failed (it is retried with backoff)",
            labels=["projection"],
        )
        errors = CounterMetricFamily(
            "storelens_projection_errors",
            "Projection failures since the server started",
            labels=["projection"],
        )
        for h in health:
            lag_events.add_metric([h.name], h.lag_events)
            lag_seconds.add_metric([h.name], h.lag_seconds)
            failing.add_metric([h.name], 1.0 if h.status.failing else 0.0)
            errors.add_metric([h.name], h.status.errors_total)
        return [lag_events, lag_seconds, failing, errors]


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

    def watch_projections(self, source: Callable[[], Sequence[ProjectionHealth]]) -> None:
        self.registry.register(ProjectionCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Plain ASGI wrapper: BaseHTTPMiddleware would re-stream every request body."""

        # Each series' child, kept: ``labels()`` checks and joins its values on every
        # call, about 1 µs of each request.
        timings: dict[tuple[str, str, int], Histogram] = {}

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def capture(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                route = scope.get("route")
                key = (scope["method"], getattr(route, "path", "unmatched"), status)
                series = timings.get(key)
                if series is None:  # route templates x methods x statuses: a few hundred
                    series = timings[key] = self.requests.labels(key[0], key[1], str(status))
                series.observe(time.perf_counter() - start)

        return timed
