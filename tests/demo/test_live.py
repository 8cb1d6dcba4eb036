"""The live demo's wiring: a real uvicorn server in this process, the replay posting a
short café morning through the HTTP ingest client with a device key of its own, the
server's projections turning it into facts; then everything stops and the key is
revoked. The replay's clock is a ManualClock, so nothing waits for café time."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from storelens import stores
from storelens.api.app import create_app
from storelens.cli import app as cli_app
from storelens.config import Settings
from storelens.core.retry import ManualClock
from storelens.demo.live import LiveDay, serve_with_replay
from storelens.demo.replay import ReplayReport
from storelens.processors import run_projections
from storelens.sim import default_layout_path
from storelens.storage.eventlog import EventLog, EventQuery
from storelens.storage.tables import api_keys, ops_orders

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
RawEvent = Callable[..., dict[str, Any]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _morning(raw_event: RawEvent) -> list[dict[str, Any]]:
    """Three orders, each paid, started, ready and handed off, over 20 café minutes."""
    out = []
    for i in range(3):
        paid = T0 + timedelta(minutes=7 * i)
        order = {"order_id": f"o-{i}"}
        for type_, after_s, payload in (
            ("pos.order_paid", 0, {**order, "register_id": "reg-1", "lines": [
                {"product_id": "flat-white", "qty": 1, "unit_price": 3.6}]}),
            ("order.started", 30, {**order, "staff_id": "barista-ana"}),
            ("order.ready", 150, order),
            ("order.handed_off", 170, {**order, "staff_id": "barista-ana"}),
        ):  # fmt: skip
            at = paid + timedelta(seconds=after_s)
            event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo-test/{type_}/{i}"))
            out.append(raw_event(type_, ts=at.isoformat(), id=event_id, payload=payload))
    return sorted(out, key=lambda e: e["ts"])


def test_the_replay_posts_a_day_into_the_running_server_and_stops_cleanly(
    engine: Engine, settings: Settings, raw_event: RawEvent, tmp_path: Path
) -> None:
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    events = _morning(raw_event)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    finished: list[ReplayReport] = []
    report = serve_with_replay(
        create_app(settings, engine=engine, run_projections=True),
        engine,
        settings,
        LiveDay(path, "cafe-01", speed=60),
        port=_free_port(),
        clock=ManualClock(),
        on_done=finished.append,
        stop_server_when_done=True,
    )
    assert report is not None and report.finished and finished == [report]
    assert (report.accepted, report.rejected) == (len(events), 0)
    stored = EventLog(engine).query(EventQuery(store_id="cafe-01", limit=100))
    assert [str(e.id) for e in stored] == [e["id"] for e in events]  # log order = café order
    with engine.connect() as conn:
        keys = conn.execute(select(api_keys.c.name, api_keys.c.revoked_at)).all()
    assert [k.name for k in keys] == ["demo-live-replay"]
    assert keys[0].revoked_at is not None  # no live credential left behind
    run_projections(EventLog(engine))  # what the server's loop does every second
    with engine.connect() as conn:
        orders = conn.execute(select(ops_orders.c.order_id)).scalars().all()
    assert sorted(orders) == ["o-0", "o-1", "o-2"]


def test_the_demo_command_wires_todays_day_into_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`storelens demo` prepares the history, simulates today and hands both to the
    server; the serving itself is swapped for a recorder here."""
    calls: list[dict[str, Any]] = []

    def record(
        app: Any, engine: Engine, settings: Settings, live: LiveDay | None, **kw: Any
    ) -> None:
        calls.append({"live": live, "settings": settings, **kw})

    monkeypatch.setattr("storelens.demo.live.serve_with_replay", record)
    monkeypatch.setenv("STORELENS_DEMO_SPEED", "120")
    args = ["demo", "--dir", str(tmp_path / "demo"), "--days", "1", "--port", "8123"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Dashboard: http://127.0.0.1:8123/" in text
    assert "username: admin" in text
    (call,) = calls
    live = call["live"]
    assert live.speed == 120 and live.store_id == "cafe-01"  # the setting, as no --speed
    assert live.events_path.exists() and call["port"] == 8123
    first = orjson.loads(live.events_path.read_text().splitlines()[0])
    today = datetime.now(UTC).date()
    assert abs((datetime.fromisoformat(first["ts"]).date() - today).days) <= 1
    assert call["settings"].event_max_future_skew_s >= 86_400
