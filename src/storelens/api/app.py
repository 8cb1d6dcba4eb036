"""The application factory: no engine, settings or state exist until ``create_app`` runs."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from sqlalchemy import Engine
from starlette.types import ASGIApp, Receive, Scope, Send

from storelens import __version__
from storelens.api.arrival_notices import DeskArrivalSink, recognition_gate
from storelens.api.auth_cache import SignedInCache, users_signal
from storelens.api.bodylimit import BodyLimit
from storelens.api.claimer_sources import EngineSuggester
from storelens.api.docs_page import install_docs
from storelens.api.errors import install_error_handlers
from storelens.api.keepalive import KeepAliveLimit
from storelens.api.metrics import ApiMetrics
from storelens.api.nul_guard import NulGuard
from storelens.api.ratelimit import limiter_for
from storelens.api.recommendations_lane import RecommendationsLane
from storelens.api.routers import (
    audit,
    auth,
    consent_texts,
    customers,
    deadletters,
    events,
    exports,
    faces,
    notices,
    ops,
    privacy,
    products,
    segments,
    staff_app,
    stores,
    system,
)
from storelens.api.routers import recommendations as recommendations_api
from storelens.config import Settings
from storelens.processors import ProjectionLoop, default_projections, projection_health
from storelens.recommend.candidate_store import MemoryCandidates, candidate_store
from storelens.recommend.engine import RecommendationEngine
from storelens.recommend.follower import CandidateFollower
from storelens.staff.hub import StoreHub
from storelens.staff.notices import NoticeDesk
from storelens.staff.suggestions import PurchaseHistorySuggester
from storelens.staff.webhook import Webhook
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

__all__ = ["NO_TELEMETRY", "create_app"]

NO_TELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "auto_configure": False,
}

log = logging.getLogger(__name__)

DESCRIPTION = """
storelens turns store cameras, POS terminals, sensors, the web shop and CRM exports into
in-store metrics and customer profiles, with consent and audit built in.

**Auth**: people sign in at `/v1/auth/token` (OAuth2 password flow) and send
`Authorization: Bearer <token>`; devices send `X-API-Key: <key>`. Every route lists
the roles it allows: `admin`, `analyst`, `staff`, `device`.
"""


class _MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.timed = metrics.middleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.timed(scope, receive, send)


_startup_heap_frozen = threading.Event()


def _freeze_startup_heap() -> None:
    """Everything built before the first app starts (the app, its routes and models, the
    imported libraries) lives as long as the process: moved out of the collector's way,
    a full collection walks only what requests made since instead of the whole heap
    (measured in-process: pauses of up to 0.2 s every few thousand requests otherwise).
    Once per process, so a test run that starts many apps frees the later ones."""
    if not _startup_heap_frozen.is_set():
        _startup_heap_frozen.set()
        gc.freeze()


def alert_message(row: dict[str, Any]) -> dict[str, Any]:
    """An alert row as JSON-ready data for devices and webhooks."""
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


def _rescore_now(engine: Engine, settings: Settings) -> None:
    """The scheduled scoring run (``STORELENS_PREDICT_RESCORE_EVERY_S``), as of now."""
    from datetime import UTC, datetime

    from storelens.predict.store import rescore_as_configured

    rescore_as_configured(engine, datetime.now(UTC), settings)


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    run_projections: bool | None = None,
) -> FastAPI:
    """Build the API. ``run_projections`` keeps read models current in a background thread."""
    settings = settings or Settings()
    engine = engine or create_engine(settings.database_url)
    event_log = EventLog(engine)
    if run_projections is None:
        run_projections = settings.run_projections
    hub = StoreHub()
    webhook = Webhook(settings.alert_webhook_url) if settings.alert_webhook_url else None

    def deliver(rows: list[dict[str, Any]]) -> None:
        messages = [alert_message(r) for r in rows]
        hub.publish(messages)
        if webhook is not None:
            webhook.publish(messages)

    notice_hub = StoreHub()  # its own hub: an alert socket never carries notices
    notice_webhook = Webhook(settings.notice_webhook_url) if settings.notice_webhook_url else None

    def deliver_notices(messages: list[dict[str, Any]]) -> None:
        notice_hub.publish(messages)
        if notice_webhook is not None:
            notice_webhook.publish(
                [{k: v for k, v in m.items() if k != "audience"} for m in messages]
            )

    desk = NoticeDesk(
        engine,
        open_for=timedelta(seconds=settings.notice_open_s),
        max_shift=timedelta(hours=settings.shift_max_hours),
        audience=settings.notice_audience,
        publish=deliver_notices,
        gate=recognition_gate,
    )

    async def sweep_notices() -> None:
        """Expire notices nobody claimed in time, withdrawing them from devices."""
        while True:
            await asyncio.sleep(settings.notice_sweep_s)
            try:
                await asyncio.to_thread(desk.expire_due, desk.clock())
            except Exception:  # a database hiccup must not end the sweeping
                log.exception("expiring notices failed; retrying next sweep")

    recommendations = RecommendationEngine(engine, settings, candidate_store(settings))
    # Lists in this process's memory follow what other processes wrote (recommend.follower).
    # With Redis it only follows identity changes (the projection writes the lists).
    follower = CandidateFollower(
        engine,
        recommendations,
        every_s=settings.recommend_follow_s,
        follow_events=isinstance(recommendations.candidates, MemoryCandidates),
    )
    loop = (
        ProjectionLoop(
            event_log,
            retention_days=settings.raw_tracking_retention_days,
            projections=default_projections(
                on_alerts=deliver,
                recommendations=recommendations,
                shift_max_hours=settings.shift_max_hours,
            ),
            identity_every_s=settings.identity_resolve_every_s or None,
            rescore_every_s=settings.predict_rescore_every_s or None,
            rescore=lambda: _rescore_now(engine, settings),
            impressions_keep_days=settings.recommend_impressions_keep_days,
        )
        if run_projections
        else None
    )

    bridge = None
    if settings.mqtt_url:  # devices publish over MQTT: bridge them into the same log
        from storelens.ingest.mqtt import MqttBridge
        from storelens.ingest.mqtt_messages import BridgeConfig

        bridge = MqttBridge(BridgeConfig.from_settings(settings), event_log)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _freeze_startup_heap()
        hub.bind(asyncio.get_running_loop())
        notice_hub.bind(asyncio.get_running_loop())
        sweeper = asyncio.create_task(sweep_notices())
        if loop is not None:
            loop.start()
        if follower is not None:
            follower.start()
        if bridge is not None:
            bridge.start()
            # A new broker session keeps nothing published before we subscribe.
            if not await asyncio.to_thread(bridge.wait_ready, 10.0):
                log.warning("MQTT bridge not subscribed yet; it keeps retrying")
        try:
            yield
        finally:
            sweeper.cancel()
            if notice_webhook is not None:
                notice_webhook.close()
            if bridge is not None:
                bridge.stop()
            if loop is not None:
                loop.stop()
            if follower is not None:
                follower.stop()
            if webhook is not None:
                webhook.close()
            app.state.recommendations.close()  # writes the impressions still queued
            app.state.signed_in.close()

    app = FastAPI(
        title="storelens",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served from the installation: docs_page.install_docs
        redoc_url=None,
        # FastAPI's own OpenTelemetry off, auto-configuration included: its spans and
        # logs carry request paths, and ours hold customer ids, so an OTLP endpoint in
        # the environment would ship personal data off the machine. It also cost every
        # request 3-5 µs to ask whether a provider was configured.
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.event_log = event_log
    app.state.recommendations = recommendations  # candidates in memory or Redis, per settings
    app.state.candidate_follower = follower
    # The claimer view's suggestions: the engine, in the notice's store, under its consent.
    app.state.suggester = EngineSuggester(
        lambda: app.state.recommendations, fallback=PurchaseHistorySuggester()
    )
    app.state.metrics = ApiMetrics()
    app.state.hub = hub
    app.state.notice_hub = notice_hub
    app.state.notice_desk = desk  # staff.raise_notice(app.state.notice_desk, ...) in-process
    # An entrance camera run in this process: recognition.entrance.open_entrance(..., sink=)
    app.state.arrival_sink = DeskArrivalSink(desk)
    app.state.deliver_alerts = deliver  # what the ops processor calls after each commit
    app.state.projection_loop = loop  # the one owner: requests wake it and wait (catch_up)
    app.state.metrics.watch_projections(
        lambda: projection_health(event_log, app.state.projection_loop)
    )
    # Verified tokens, reused until the users table may have changed (any worker, any CLI).
    app.state.signed_in = SignedInCache(
        users_signal(engine, postgres=settings.signed_in_cache_postgres)
    )
    # Refused notices per device key: each refusal tells the key something about an id.
    app.state.notice_refusals = limiter_for(
        settings.redis_url, settings.notice_refusals_per_hour, 3600, prefix="sl:notice-refusals"
    )
    # Innermost: the warm recommendation answer without FastAPI's dependency solving;
    # anything it cannot answer exactly as the route would goes on to the route.
    app.add_middleware(
        RecommendationsLane,
        roles=frozenset(recommendations_api.READERS),
        body_of=recommendations_api.answer_json,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_mb * 1024 * 1024)
    app.add_middleware(NulGuard)
    app.add_middleware(_MetricsMiddleware, metrics=app.state.metrics)
    if settings.keepalive_max_requests:  # a connection held long goes back to the workers
        app.add_middleware(KeepAliveLimit, max_requests=settings.keepalive_max_requests)
    if settings.cors_origins:  # for a dashboard served from another origin
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key"],
        )
    install_error_handlers(app)
    install_docs(app)
    # Routes are matched in order, router by router: the hot recommendation route first
    # saves every request walking the whole API (no other route shares its paths).
    app.include_router(recommendations_api.router)
    for module in (
        system,
        auth,
        events,
        stores,
        ops,
        exports,
        products,
        customers,
        segments,
        audit,
        deadletters,
    ):
        app.include_router(module.router)
    app.include_router(privacy.router)  # data-subject export and erasure
    app.include_router(notices.router)  # staff notices: raise, first to claim, claimer view
    app.include_router(staff_app.router)  # the staff app's page, manifest and service worker
    app.include_router(faces.router)  # recognition: enrollment under consent, store switch
    app.include_router(consent_texts.router)  # recognition: the texts members agree to

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import (
                get_openapi,
                validation_error_definition,
                validation_error_response_definition,
            )

            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            events.document_event_body(schema)
            # Every route declares its 422 itself, so FastAPI adds none and with it
            # none of the schemas that our 422 and 400 entries point to.
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.setdefault("ValidationError", validation_error_definition)
            components.setdefault("HTTPValidationError", validation_error_response_definition)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
