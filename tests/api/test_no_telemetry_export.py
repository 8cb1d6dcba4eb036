"""FastAPI's native OpenTelemetry stays off: its spans and logs carry request paths, and
ours name customers (``/v1/customers/{id}/...``). Stock FastAPI configures an OTLP
exporter by itself when the environment asks for one; storelens must not, whatever
the environment says."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens.api.app import create_app
from storelens.config import Settings

AUTO_EXPORT = {
    "FASTAPI_OTEL_AUTO_CONFIGURE": "true",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9",  # discard port: nothing listens
}


def _telemetry_messages(app: FastAPI, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    with caplog.at_level(logging.DEBUG), TestClient(app) as client:
        assert client.get("/health").status_code in (200, 503)
    return [r.getMessage() for r in caplog.records if "telemetry" in r.getMessage().lower()]


def test_stock_fastapi_would_try_to_export(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The control: without the opt-out the same environment starts FastAPI's exporter
    set-up (here it fails for want of the SDK, and says so)."""
    for name, value in AUTO_EXPORT.items():
        monkeypatch.setenv(name, value)
    stock = FastAPI()

    @stock.get("/health")
    async def _health() -> dict[str, str]:
        return {"status": "ok"}

    assert _telemetry_messages(stock, caplog), "stock FastAPI no longer auto-configures"


def test_storelens_never_configures_an_exporter(
    settings: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    for name, value in AUTO_EXPORT.items():
        monkeypatch.setenv(name, value)
    app = create_app(settings, engine=engine, run_projections=False)
    assert _telemetry_messages(app, caplog) == []
