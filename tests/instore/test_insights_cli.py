"""``storelens insights`` on a real database (SQLite and PostgreSQL): JSON, HTML, bad input."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from storelens import catalogue, stores
from storelens.cli import app
from storelens.core.durations import duration_in, duration_unit
from storelens.core.events import event_adapter, make_event
from storelens.sim import run_simulation
from storelens.sim.apparel import apparel_catalogue
from storelens.sim.config import SimConfig
from storelens.storage.eventlog import EventLog

APPAREL = Path(str(files("storelens.samples").joinpath("layouts", "apparel.toml")))
KEPT = {"vision.zone_enter", "vision.zone_exit", "pos.order_paid"}
runner = CliRunner()
DAY = ("--store", "apparel-01", "--from", "2026-11-02", "--to", "2026-11-02")


@pytest.fixture(scope="module")
def shop_day(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """One simulated day of the fashion store, planted, as JSON lines: simulated once
    per module (seconds), loaded into each test's own database."""
    config = SimConfig(attractive_fixture="new-arrivals", cold_zone="sale-rack")
    summary = run_simulation(APPAREL, 1, 7, tmp_path_factory.mktemp("sim"), config=config)
    lines = summary.events_path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if json.loads(line)["type"] in KEPT]


@pytest.fixture
def shop(engine: Engine, db_url: str, shop_day: list[str]) -> str:
    """The planted day in the database, with two heatmaps; returns the URL."""
    with engine.begin() as conn:
        stores.load_layout_file(conn, APPAREL)
        catalogue.upsert_products(conn, [asdict(p) for p in apparel_catalogue()[0]])
    events = [event_adapter.validate_json(line) for line in shop_day]
    rows, cols = 80, 120  # the 30 x 20 m floor in 0.25 m cells
    values = [0.0] * (rows * cols)
    values[40 * cols + 60] = 900.0
    for hour in (9, 15):
        events.append(
            make_event(
                "vision.heatmap",
                {"period_s": 900, "cell_m": 0.25, "rows": rows, "cols": cols, "values": values},
                ts=datetime(2026, 11, 2, hour, 15, tzinfo=ZoneInfo("Europe/Berlin")),
                store_id="apparel-01",
                source="vision",
            )
        )
    log = EventLog(engine)
    for start in range(0, len(events), 2000):
        log.append(events[start : start + 2000])
    return db_url


def insights(url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["insights", *args, "--database-url", url])
    return result.exit_code, result.output


def test_json_names_the_planted_zones(shop: str) -> None:
    code, out = insights(shop, *DAY, "--json")
    assert code == 0, out
    data = json.loads(out)
    found = {(f["kind"], f["zone_id"]) for f in data["findings"]}
    assert ("high_traffic_low_sales", "new-arrivals") in found
    assert ("cold_zone", "sale-rack") in found
    assert [k for k, _ in found].count("cold_zone") == 1
    assert [k for k, _ in found].count("high_traffic_low_sales") == 1
    zones = {z["zone_id"]: z for z in data["zones"]}
    assert "stockroom" not in zones  # staff only
    assert zones["new-arrivals"]["merchandised"] is True
    assert data["since"] == "2026-11-02T00:00:00+01:00"


def test_html_report_embeds_heatmaps(shop: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, out = insights(shop, *DAY, "--html", str(target))
    assert code == 0, out
    page = target.read_text(encoding="utf-8")
    # the whole day, the morning and the afternoon: three pictures of the one floor
    assert page.count('src="data:image/png;base64,') == 3
    assert "New arrivals draws people but does not sell" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


@pytest.mark.parametrize(
    ("store", "first", "last", "message"),
    [
        ("nowhere", "2026-11-02", "2026-11-02", "no store 'nowhere'"),
        ("apparel-01", "2026-11-03", "2026-11-02", "is after --to"),
        ("apparel-01", "2026-12-01", "2026-12-07", "has no zone visits, sales or heatmaps"),
        ("apparel-01", "yesterday", "2026-12-07", "must be a date like"),
    ],
)
def test_bad_input_is_a_clear_message_and_exit_2(
    shop: str, store: str, first: str, last: str, message: str
) -> None:
    code, out = insights(shop, "--store", store, "--from", first, "--to", last)
    assert code == 2
    assert message in out
    assert "Traceback" not in out


def test_html_target_that_cannot_be_written_is_exit_2(shop: str, tmp_path: Path) -> None:
    """A missing folder is refused before the work; a target that is a folder after it."""
    missing = tmp_path / "no-such-folder" / "report.html"
    code, out = insights(shop, *DAY, "--html", str(missing))
    assert code == 2 and "no such directory" in out and "Traceback" not in out
    code, out = insights(shop, *DAY, "--html", str(tmp_path))
    assert code == 2 and f"--html {tmp_path}" in " ".join(out.split())
    assert "Traceback" not in out


def test_the_table_gives_dwell_in_one_unit_as_the_json_has_it(shop: str) -> None:
    """It printed "1548 s" where the dashboard says "25.8 min"."""
    code, out = insights(shop, *DAY, "--json")
    assert code == 0, out
    dwell = [z["median_dwell_s"] for z in json.loads(out)["zones"]]
    unit = duration_unit(dwell)
    code, table = insights(shop, *DAY)
    assert code == 0, table
    rows = table.split("zone traffic against sales", 1)[1]  # the findings say "10 s"
    assert all(duration_in(d, unit) in rows for d in dwell if d is not None)
    if unit == "min":
        assert not re.search(r"\b\d+ s\b", rows)
