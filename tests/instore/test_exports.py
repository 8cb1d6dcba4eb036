"""BI exports on a real database (SQLite and PostgreSQL): the API downloads and
``storelens export``, read back with pyarrow and compared with the functions the
insights and the operations report use on the same facts."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from storelens import catalogue, stores
from storelens.catalogue import load_catalogue
from storelens.cli import app
from storelens.core.events import event_adapter
from storelens.instore.insights_data import insights_of, load_inputs, local_period
from storelens.instore.insights_heat import average_density
from storelens.instore.report import ops_report
from storelens.instore.store import load_facts
from storelens.processors import run_projections
from storelens.sim import default_layout_path, run_simulation
from storelens.sim.config import SimConfig
from storelens.storage.eventlog import EventLog

DAY = date(2026, 11, 2)
STORE = "cafe-01"
URL = f"/v1/stores/{STORE}/exports"
runner = CliRunner()
Login = Callable[[str], dict[str, str]]


@pytest.fixture(scope="module")
def cafe_day(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One simulated café day with quarter-hour heatmaps, as JSON lines (no raw tracks:
    zone crossings carry everything the exports read)."""
    out = tmp_path_factory.mktemp("sim")
    summary = run_simulation(
        default_layout_path(), 1, 7, out, config=SimConfig(heatmap_every_s=900)
    )
    lines = summary.events_path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if '"vision.track"' not in line]


@pytest.fixture
def cafe_floor(engine: Engine) -> Engine:
    """The café's layout and menu, no day: enough for requests refused before any read."""
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
        catalogue.upsert_products(conn, [asdict(p) for p in load_catalogue()])
    return engine


@pytest.fixture
def cafe(cafe_floor: Engine, cafe_day: list[str]) -> Engine:
    engine = cafe_floor
    events = [event_adapter.validate_json(line) for line in cafe_day]
    log = EventLog(engine)
    for start in range(0, len(events), 5000):
        log.append(events[start : start + 5000])
    run_projections(log)
    return engine


def _get(client: TestClient, headers: dict[str, str], table: str, **query: str) -> pa.Table:
    response = client.get(f"{URL}/{table}", params=query, headers=headers)
    assert response.status_code == 200, response.text
    if query.get("format") == "parquet":
        assert response.headers["content-type"] == "application/vnd.apache.parquet"
        return pq.read_table(io.BytesIO(response.content))
    assert response.headers["content-type"].startswith("text/csv")
    return pa_csv.read_csv(io.BytesIO(response.content))


def _day_query(fmt: str) -> dict[str, str]:
    return {"from": DAY.isoformat(), "to": DAY.isoformat(), "format": fmt}


def test_zone_download_equals_the_insights_zone_table(
    cafe: Engine, client: TestClient, login: Login
) -> None:
    staff = login("staff")
    response = client.get(f"{URL}/zones", params=_day_query("csv"), headers=staff)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="zones_{STORE}_{DAY}_{DAY}.csv"'
    )
    for fmt in ("csv", "parquet"):
        rows = _get(client, staff, "zones", **_day_query(fmt)).to_pylist()
        expected = insights_of(load_inputs(cafe, STORE, DAY, DAY))
        whole = {r["zone_id"]: r for r in rows if r["daypart"] == "all"}
        assert set(whole) == {z.zone_id for z in expected.zones}
        for zone in expected.zones:
            got = whole[zone.zone_id]
            assert got["visits"] == zone.visits
            assert got["unique_visitors"] == zone.unique_visitors
            assert got["stoppers"] == zone.stoppers
            assert got["units"] == zone.units
            assert got["revenue"] == pytest.approx(zone.revenue)
            assert got["median_dwell_s"] == pytest.approx(zone.median_dwell_s, nan_ok=True)
        for part in expected.by_daypart:
            got = next(
                r for r in rows if r["daypart"] == part.period and r["zone_id"] == part.zone_id
            )
            assert (got["visits"], got["units"]) == (part.visits, part.units)
        assert sum(r["visits"] for r in rows if r["daypart"] != "all") == sum(
            z.visits for z in expected.zones
        )
        assert sum(z.visits for z in expected.zones) > 1000  # a real day, not an empty one


def test_operations_download_equals_the_ops_report(
    cafe: Engine, client: TestClient, login: Login
) -> None:
    rows = _get(client, login("analyst"), "operations", **_day_query("parquet")).to_pylist()
    since, until = local_period(DAY, DAY, "Europe/Berlin")
    facts = load_facts(cafe, STORE, since, until)
    day = ops_report(facts, store_id=STORE, since=since, until=until, timezone="Europe/Berlin")
    store_row = next(r for r in rows if r["hour"] is None and r["dimension"] == "store")
    assert store_row["orders"] == day["fulfillment"]["orders"] > 300
    assert store_row["fulfillment_p50_s"] == day["fulfillment"]["p50_s"]
    assert store_row["fulfillment_p90_s"] == day["fulfillment"]["p90_s"]
    assert store_row["drinks"] == sum(b["drinks"] for b in day["baristas"])
    for b in day["baristas"]:
        got = next(r for r in rows if r["hour"] is None and r["key"] == b["staff_id"])
        assert got["drinks_per_barista_hour"] == b["drinks_per_hour"]
        assert got["on_shift_h"] == b["on_shift_h"]
    for g in day["fulfillment"]["by_register"]:
        got = next(r for r in rows if r["hour"] is None and r["key"] == g["key"])
        assert (got["fulfilled_orders"], got["fulfillment_p90_s"]) == (g["count"], g["p90_s"])
    nine = since + timedelta(hours=9)  # 09:00 local, the morning rush
    rush = ops_report(
        facts, store_id=STORE, since=nine, until=nine + timedelta(hours=1), timezone="Europe/Berlin"
    )
    got = next(r for r in rows if r["hour"] == 9 and r["dimension"] == "store")
    assert got["orders"] == rush["fulfillment"]["orders"] > 0
    assert got["fulfillment_p50_s"] == rush["fulfillment"]["p50_s"]
    hourly = [r for r in rows if r["hour"] is not None and r["dimension"] == "store"]
    assert sum(r["orders"] for r in hourly) == store_row["orders"]


def test_heat_download_is_the_average_density(
    cafe: Engine, client: TestClient, login: Login
) -> None:
    table = _get(client, login("admin"), "heat", **_day_query("parquet"))
    meta = table.schema.field("people_per_m2").metadata
    assert meta[b"unit"] == "people per m²".encode()
    inputs = load_inputs(cafe, STORE, DAY, DAY)
    for part in (None, "morning"):
        heat = average_density(
            inputs.heat,
            timezone="Europe/Berlin",
            label="x",
            daypart=part,
            since=inputs.since,
            until=inputs.until,
        )
        assert heat is not None
        rows = [r for r in table.to_pylist() if r["daypart"] == (part or "all")]
        assert len(rows) == int((heat.people_per_m2 > 0).sum()) > 0
        for r in rows[:50]:
            assert r["people_per_m2"] == pytest.approx(heat.people_per_m2[r["row"], r["col"]])
            assert r["observed_h"] == pytest.approx(heat.hours, abs=1e-4)


def test_downloads_carry_no_customer_ids(
    cafe: Engine, cafe_day: list[str], client: TestClient, login: Login
) -> None:
    paid = [json.loads(line) for line in cafe_day if '"pos.order_paid"' in line]
    members = {ev["subject"] for ev in paid if ev.get("subject")}
    assert len(members) > 20  # members did pay in the simulated day, with their loyalty ids
    admin = login("admin")
    for table in ("zones", "operations", "heat"):
        text = client.get(f"{URL}/{table}", params=_day_query("csv"), headers=admin).text
        header = text.splitlines()[0]
        assert "customer" not in header and "track" not in header
        assert not any(member in text for member in members)


@pytest.mark.parametrize(
    ("path", "query", "status", "loc"),
    [
        ("nowhere/exports/zones", {"from": "2026-11-02", "to": "2026-11-02"}, 404, None),
        (f"{STORE}/exports/customers", {"from": "2026-11-02", "to": "2026-11-02"}, 404, None),
        (f"{STORE}/exports/zones", {"from": "2026-11-09", "to": "2026-11-02"}, 422, "to"),
        (f"{STORE}/exports/zones", {"from": "2026-11-02", "to": "2026-13-02"}, 422, "to"),
        (f"{STORE}/exports/zones", {"from": "2026-01-01", "to": "2026-12-31"}, 422, "to"),
        (f"{STORE}/exports/zones", {"from": "9999-12-31", "to": "9999-12-31"}, 422, "from"),
        (f"{STORE}/exports/zones", {"from": "2026-11-02"}, 422, "to"),
        (f"{STORE}/exports/zones", {**_day_query("xlsx")}, 422, "format"),
        (f"{STORE}/exports/heat", {"from": "2026-12-01", "to": "2026-12-07"}, 404, None),
    ],
)
def test_bad_requests_are_refused_with_a_reason(
    request: pytest.FixtureRequest,
    cafe_floor: Engine,
    client: TestClient,
    login: Login,
    path: str,
    query: dict[str, str],
    status: int,
    loc: str | None,
) -> None:
    if "/heat" in path:  # a week without data: refused although another day has some
        request.getfixturevalue("cafe")
    response = client.get(f"/v1/stores/{path}", params=query, headers=login("staff"))
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if loc is None:
        assert isinstance(detail, str) and detail
    else:
        assert loc in [e["loc"][-1] for e in detail], detail


def test_device_keys_cannot_download(
    cafe_floor: Engine, client: TestClient, device_key: Callable[..., dict[str, str]]
) -> None:
    response = client.get(f"{URL}/zones", params=_day_query("csv"), headers=device_key())
    assert response.status_code == 403


def test_export_command_writes_a_file_per_table_and_day(
    cafe: Engine, db_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "bi"
    args = ["export", "--store", STORE, "--from", "2026-11-01", "--to", "2026-11-02"]
    result = runner.invoke(app, [*args, "--to-dir", str(out), "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "1 of 2 day(s) had data" in result.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet"))
    assert files == [f"{t}/{t}_{STORE}_2026-11-02.parquet" for t in ("heat", "operations", "zones")]
    zones = pq.read_table(out / "zones" / f"zones_{STORE}_2026-11-02.parquet")
    assert zones.schema.metadata[b"storelens.table"] == b"zones"
    assert zones.schema.field("mean_dwell_s").metadata[b"unit"] == b"seconds"
    expected = insights_of(load_inputs(cafe, STORE, DAY, DAY))
    whole = [r for r in zones.to_pylist() if r["daypart"] == "all"]
    assert {r["zone_id"]: r["visits"] for r in whole} == {
        z.zone_id: z.visits for z in expected.zones
    }
    again = runner.invoke(app, [*args, "--to-dir", str(out), "--database-url", db_url])
    assert again.exit_code == 0, again.output
    assert len(list(out.rglob("*.parquet"))) == 3  # replaced, not duplicated
    assert not list(out.rglob("*.partial"))


@pytest.mark.parametrize(
    ("store", "first", "last", "message"),
    [
        ("nowhere", "2026-11-02", "2026-11-02", "no store 'nowhere'"),
        (STORE, "2026-11-03", "2026-11-02", "--from 2026-11-03 is after --to 2026-11-02"),
        (STORE, "2026-12-01", "2026-12-03", "nothing was written"),
        (STORE, "2026-11-31", "2026-12-03", "--from must be a date"),
    ],
)
def test_export_command_refuses_bad_input_and_writes_nothing(
    request: pytest.FixtureRequest,
    cafe_floor: Engine,
    db_url: str,
    tmp_path: Path,
    store: str,
    first: str,
    last: str,
    message: str,
) -> None:
    if message == "nothing was written":  # refused although another day has data
        request.getfixturevalue("cafe")
    out = tmp_path / "bi"
    args = ["export", "--store", store, "--from", first, "--to", last, "--to-dir", str(out)]
    result = runner.invoke(app, [*args, "--database-url", db_url])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert not out.exists()
