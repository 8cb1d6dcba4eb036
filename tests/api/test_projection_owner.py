"""One owner of the ops projection: the real server with projections on, CLIs alongside.

The fault: the server's loop kept its ops tracker in memory while `storelens ops
report` and `storelens cdp import` ran projections of their own on the same cursor;
the server then carried on from stale state and reported one order both complete and
incomplete. Here events arrive over HTTP in batches while those commands run against
the same database, and the server's report must equal the batch report of the same
events, order for order.
"""

from __future__ import annotations

import csv
import tomllib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.live_server import LiveServer
from typer.testing import CliRunner

from storelens import accounts
from storelens.api.app import create_app
from storelens.cdp.cli import cdp_app
from storelens.config import Settings
from storelens.instore.cli import ops_app
from storelens.instore.processor import report_from_file
from storelens.processors import ProjectionLoop
from storelens.storage.db import create_engine

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
SECRET = "projection-owner-test-secret-0123456789abcdef"
LAYOUT = resources.files("storelens.samples") / "layouts" / "cafe.toml"


class ThreadedServer(LiveServer):
    """uvicorn serving ``create_app(run_projections=True)`` on a loopback port."""

    def __init__(self, db_url: str) -> None:
        settings = Settings(env="test", database_url=db_url, secret_key=SECRET)
        super().__init__(create_app(settings, run_projections=True))

    @property
    def loop(self) -> ProjectionLoop:
        loop = self.app.state.projection_loop
        assert isinstance(loop, ProjectionLoop)
        return loop


def _event(type_: str, sec: float, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": (T0 + timedelta(seconds=sec)).isoformat(),
        "source": "test",
        "store_id": "cafe-01",
        "payload": payload,
    }


def _day() -> list[dict[str, Any]]:
    """Two baristas, 24 orders a few minutes apart (the last three never handed off),
    and a customer walking in for each order; every visit ends through the door."""
    line = {"product_id": "latte", "qty": 1, "unit_price": 3.4, "category": "coffee"}
    out = [
        _event("staff.clock_in", 0, staff_id="ana", role="barista"),
        _event("staff.clock_in", 5, staff_id="ben", role="barista"),
    ]
    for i in range(24):
        t = 60 + 150 * i
        staff = "ana" if i % 2 else "ben"
        order = f"o{i}"
        track = f"t{i}"
        out += [
            _event("vision.zone_enter", t - 50, zone_id="entrance", track_id=track),
            _event("vision.zone_exit", t - 46, zone_id="entrance", track_id=track),
            _event("vision.zone_enter", t - 46, zone_id="queue", track_id=track),
            _event("vision.zone_exit", t - 10, zone_id="queue", track_id=track),
            _event("vision.zone_enter", t - 10, zone_id="counter", track_id=track),
            _event("pos.order_paid", t, order_id=order, lines=[line], register_id="reg-1"),
            _event("vision.zone_exit", t + 5, zone_id="counter", track_id=track),
            _event("order.started", t + 20 + i, order_id=order, staff_id=staff),
            _event("order.ready", t + 200 + 3 * i, order_id=order, staff_id=staff),
        ]
        if i < 21:
            out.append(_event("order.handed_off", t + 210 + 3 * i, order_id=order, staff_id=staff))
        out += [
            _event("vision.zone_enter", t + 300, zone_id="entrance", track_id=track),
            _event("vision.zone_exit", t + 304, zone_id="entrance", track_id=track),
        ]
    out += [
        _event("staff.clock_out", 4200, staff_id="ana"),
        _event("staff.clock_out", 4300, staff_id="ben"),
    ]
    return sorted(out, key=lambda e: e["ts"])


def _utc_as_z(node: Any) -> Any:
    """The batch report's times as the API writes them (UTC as ``Z``); same instants."""
    if isinstance(node, dict):
        return {k: _utc_as_z(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_utc_as_z(v) for v in node]
    if isinstance(node, str) and node.endswith("+00:00") and "T" in node:
        return node.removesuffix("+00:00") + "Z"
    return node


def _headers(client: httpx.Client, engine_url: str) -> dict[str, dict[str, str]]:
    engine = create_engine(engine_url)
    out: dict[str, dict[str, str]] = {}
    with engine.begin() as conn:
        for role in ("admin", "analyst", "staff"):
            accounts.create_user(conn, f"{role}-1", "correct horse battery", accounts.Role(role))
        _, key = accounts.create_api_key(conn, "pos-1")
    engine.dispose()
    for role in ("admin", "analyst", "staff"):
        r = client.post(
            "/v1/auth/token", data={"username": f"{role}-1", "password": "correct horse battery"}
        )
        assert r.status_code == 200, r.text
        out[role] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    out["device"] = {"X-API-Key": key}
    return out


@pytest.fixture
def live(db_url: str) -> Iterator[ThreadedServer]:
    with ThreadedServer(db_url) as server:
        yield server


def _without_alerts(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "alerts"}


def test_server_report_equals_batch_while_clis_share_the_database(
    live: ThreadedServer, db_url: str, tmp_path: Path
) -> None:
    events = _day()
    jsonl = tmp_path / "day.jsonl"
    jsonl.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    runner = CliRunner()

    def server_catches_up(n: int) -> None:
        """A customer import: the route wakes the server's loop and waits for it."""
        rows = [{"source_record_id": f"r{n}", "first_name": "Ada", "email": f"a{n}@example.com"}]
        r = client.post("/v1/customers/import?source=crm", json=rows, headers=h["analyst"])
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

    def cli_ops_report() -> None:
        args = ["report", "--database-url", db_url, "--store", "cafe-01", "--json"]
        result = runner.invoke(ops_app, args)
        assert result.exit_code == 0, result.output

    def cli_cdp_import(n: int) -> None:
        path = tmp_path / f"crm{n}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["source_record_id", "first_name", "email"])
            writer.writerow([f"k{n}", "Grace", f"g{n}@example.com"])
        args = ["import", "shop", str(path), "--database-url", db_url, "--json"]
        result = runner.invoke(cdp_app, args)
        assert result.exit_code == 0, result.output

    def server_loop_catches_up() -> None:
        """The server's own loop reaches the head (what it does every second anyway)."""
        assert live.loop.catch_up()

    steps: list[Callable[[], None]] = [
        server_loop_catches_up,
        cli_ops_report,
        lambda: server_catches_up(1),
        lambda: cli_cdp_import(1),
        server_loop_catches_up,
        cli_ops_report,
        lambda: cli_cdp_import(2),
        server_loop_catches_up,
        lambda: server_catches_up(2),
    ]
    with httpx.Client(base_url=live.url, timeout=60) as client:
        h = _headers(client, db_url)
        doc = tomllib.loads(LAYOUT.read_text())
        store = {"id": "cafe-01", "name": "Café", "timezone": "Europe/Berlin"}
        assert client.post("/v1/stores", json=store, headers=h["admin"]).status_code == 201
        assert client.put("/v1/stores/cafe-01/layout", json=doc, headers=h["admin"]).is_success
        size = -(-len(events) // len(steps))
        for n, step in enumerate(steps):
            batch = events[n * size : (n + 1) * size]
            r = client.post("/v1/events", json=batch, headers=h["device"])
            assert r.json()["accepted"] == len(batch), r.text
            step()
        server_catches_up(3)
        served = client.get("/v1/stores/cafe-01/ops", params={"detail": True}, headers=h["staff"])
        health = client.get("/health").json()

    batch_report = report_from_file(jsonl, Path(str(LAYOUT)), detail=True)
    report = served.json()
    f = report["fulfillment"]
    incomplete = {o["order_id"] for o in f["incomplete_orders"]}
    assert (f["complete"], f["incomplete"]) == (21, 3)
    assert incomplete == {"o21", "o22", "o23"}
    assert not incomplete & set(f["per_order"])  # no order both complete and incomplete
    assert report == _utc_as_z(_without_alerts(batch_report))
    lags = {p["name"]: (p["lag_events"], p["failing"]) for p in health["projections"]}
    served_projections = ("orders", "consent", "customer-records", "predict-withdrawals",
                          "recommend-withdrawals", "ops", "recommend-candidates")  # fmt: skip
    assert lags == {name: (0, False) for name in served_projections}
