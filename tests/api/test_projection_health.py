"""Each projection fails alone: the others stay current, and /health and /metrics say
which one is failing, where, and how far behind it is (injected clocks, no sleeps)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, select

from storelens.processors import (
    ProjectionLoop,
    TableProjection,
    default_projections,
    retry_delay,
)
from storelens.storage.eventlog import EventLog, StoredEvent
from storelens.storage.tables import events as events_table

RawEvent = Callable[..., dict[str, Any]]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _broken(conn: Connection, batch: list[StoredEvent]) -> None:
    # PostgreSQL's second line quotes the row: /health is public, so only the first
    # line may reach it (a review).
    raise RuntimeError("disk full\nDETAIL:  Key (email)=(ada@example.org) already exists.")


def _received_at(engine: Engine) -> datetime:
    with engine.connect() as conn:
        value = conn.execute(
            select(events_table.c.received_at).order_by(events_table.c.seq)
        ).first()
    assert value is not None
    return value[0]  # type: ignore[no-any-return]


def test_a_failing_projection_leaves_the_others_current_and_shows_on_health(
    client: TestClient,
    engine: Engine,
    device_key: Callable[..., dict[str, str]],
    raw_event: RawEvent,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = [raw_event(), raw_event("consent.changed"), raw_event("sensor.espresso_shot")]
    assert client.post("/v1/events", json=events, headers=device_key()).json()["accepted"] == 3
    clock = Clock(_received_at(engine) + timedelta(seconds=42))
    broken = TableProjection("broken", ("pos.order_paid",), _broken)
    loop = ProjectionLoop(
        EventLog(engine),
        projections=[broken, *default_projections()],
        now=clock,
        retry_base_s=2.0,
        retry_cap_s=30.0,
    )
    client.app.state.projection_loop = loop  # type: ignore[attr-defined]
    client.app.state.clock = clock  # type: ignore[attr-defined]

    with caplog.at_level(logging.ERROR, logger="storelens.processors"):
        counts = loop.run_once()
    assert counts == {"orders": 1, "consent": 1, "customer-records": 0,
                      "predict-withdrawals": 1, "recommend-withdrawals": 1,
                      "ops": 3}  # fmt: skip
    (record,) = [r for r in caplog.records if "broken" in r.getMessage()]
    assert "failed at log position 0 (next event seq 1" in record.getMessage()

    response = client.get("/health")
    assert "ada@example.org" not in response.text
    health = response.json()
    assert health["status"] == "degraded"
    by_name = {p["name"]: p for p in health["projections"]}
    assert set(by_name) == {"broken", "orders", "consent", "customer-records",
                            "predict-withdrawals", "recommend-withdrawals", "ops"}  # fmt: skip
    bad = by_name["broken"]
    assert (bad["lag_events"], bad["lag_seconds"], bad["failing"]) == (3, 42.0, True)
    assert bad["last_error"] == "RuntimeError"  # the class only: /health is public
    assert bad["last_error_position"] == 0 and bad["errors_total"] == 1
    for name in ("orders", "consent", "customer-records", "predict-withdrawals",
                 "recommend-withdrawals", "ops"):  # fmt: skip
        assert (by_name[name]["lag_events"], by_name[name]["lag_seconds"]) == (0, 0.0)
        assert by_name[name]["failing"] is False

    metrics = client.get("/metrics").text
    assert 'storelens_projection_lag_events{projection="broken"} 3.0' in metrics
    assert 'storelens_projection_lag_events{projection="ops"} 0.0' in metrics
    assert 'storelens_projection_failing{projection="broken"} 1.0' in metrics
    assert 'storelens_projection_errors_total{projection="broken"} 1.0' in metrics
    assert 'storelens_projection_lag_seconds{projection="orders"} 0.0' in metrics

    # Backoff: 2 s after the first failure, then 4 s; no retry before it is due.
    assert loop.run_once() == {"orders": 0, "consent": 0, "customer-records": 0,
                               "predict-withdrawals": 0, "recommend-withdrawals": 0,
                               "ops": 0}  # fmt: skip
    clock.now += timedelta(seconds=2)
    loop.run_once()
    (status,) = [s for s in loop.statuses() if s.name == "broken"]
    assert (status.failures, status.errors_total) == (2, 2)
    assert status.retry_at == clock.now + timedelta(seconds=4)

    # Fixed: the next due pass brings it to the head and clears the failing flag.
    loop.projections[0] = TableProjection("broken", ("pos.order_paid",), lambda c, b: None)
    clock.now += timedelta(seconds=4)
    loop.run_once()
    health = client.get("/health").json()
    bad = {p["name"]: p for p in health["projections"]}["broken"]
    assert (bad["lag_events"], bad["failing"], bad["errors_total"]) == (0, False, 2)
    assert health["status"] == "ok"


def test_retry_delay_doubles_up_to_its_cap_and_never_overflows() -> None:
    assert [retry_delay(n, 1.0, 60.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert retry_delay(100_000, 1.0, 60.0) == 60.0


def test_catch_up_wakes_the_running_loop_and_waits_for_it(
    engine: Engine, raw_event: RawEvent
) -> None:
    from storelens.core.events import event_adapter

    log = EventLog(engine)
    loop = ProjectionLoop(log, interval=3600)  # only a wake makes it run again
    loop.start()
    try:
        assert loop.catch_up()
        log.append([event_adapter.validate_python(raw_event()) for _ in range(3)])
        assert loop.catch_up()
        assert {p.name: log.position(p.name) for p in loop.projections} == {
            "orders": 3,
            "consent": 3,
            "predict-withdrawals": 3,
            "recommend-withdrawals": 3,
            "customer-records": 3,
            "ops": 3,
        }
    finally:
        loop.stop()
    assert not loop.running


def test_health_without_a_loop_reads_lag_from_the_database(
    client: TestClient, device_key: Callable[..., dict[str, str]], raw_event: RawEvent
) -> None:
    client.app.state.clock = lambda: datetime(2100, 1, 1, tzinfo=UTC)  # type: ignore[attr-defined]
    assert client.get("/health").json()["projections"][0] == {
        "name": "orders",
        "position": 0,
        "lag_events": 0,
        "lag_seconds": 0.0,
        "failing": False,
        "errors_total": 0,
        "last_error": None,
        "last_error_at": None,
        "last_error_position": None,
    }


def test_a_database_error_is_named_by_its_classes_not_its_text() -> None:
    from sqlalchemy.exc import IntegrityError

    from storelens.processors import _error_kind

    class UniqueViolation(Exception):
        pass

    exc = IntegrityError("INSERT …", {}, UniqueViolation('Key (email)=("ada@example.org")'))
    assert _error_kind(exc) == "IntegrityError (UniqueViolation)"
    assert _error_kind(RuntimeError("no customer 'ada'")) == "RuntimeError"
