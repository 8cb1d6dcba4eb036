"""Dashboard page timings measured inside headless Chromium (reported, not asserted).

Simulates a café week (quarter-hour heatmaps on), serves it with
``storelens.web.site:create_site`` in a uvicorn subprocess with projections on, signs
in through the login form in Debian's Chromium (Playwright, ``executable_path``), then
measures, each as the median of ``--runs``:

* Floor over the whole week: navigation start to the heatmap drawn (the page's HTML,
  plotly.js, and the week's heat grids for the whole day and every daypart), with the
  server's view cache off (``_uncached``: every load builds the week from facts) and on
  (a manager reopening the week while no new events arrived);
* Floor daypart switch: click to the new grid drawn;
* Today: first contentful paint, and navigation start to the first live figures;
* Today live: the POST of an event returning to the page showing the new figures.

    python benchmarks/dashboard.py              # a week, 7 runs each
    python benchmarks/dashboard.py --days 1 --runs 3

Writes ``benchmarks/results/dashboard.json``. Targets from issue 13: Floor week < 1 s,
Today first paint < 500 ms, Today updated within 2 s of events arriving.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import sync_playwright
from rich.console import Console
from rich.table import Table

from storelens import accounts, catalogue, stores
from storelens.catalogue import load_catalogue
from storelens.ingest.batch import ingest_numbered
from storelens.ingest.files import read_items
from storelens.processors import run_projections
from storelens.samples import sample_layout_path
from storelens.sim import run_simulation
from storelens.sim.config import SimConfig
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

RESULTS = Path(__file__).parent / "results" / "dashboard.json"
SECRET = "dashboard-bench-secret-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple"
STORE = "cafe-01"
CHROMIUM = os.environ.get("STORELENS_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
console = Console()


def build(directory: Path, days: int) -> str:
    url = f"sqlite:///{directory / 'storelens.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    layout = sample_layout_path()
    with engine.begin() as conn:
        stores.load_layout_file(conn, layout)
        catalogue.upsert_products(conn, [asdict(p) for p in load_catalogue()])
        accounts.create_user(conn, "boss", PASSWORD, accounts.Role.admin)
    sim = run_simulation(layout, days, 7, directory / "sim", config=SimConfig(heatmap_every_s=900))
    log = EventLog(engine)
    ingest_numbered(log, read_items(sim.events_path), batch_size=5000)
    run_projections(log)
    engine.dispose()
    return url


def serve(url: str, workdir: Path, cache: bool) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "STORELENS_DATABASE_URL": url,
        "STORELENS_ENV": "prod",
        "STORELENS_SECRET_KEY": SECRET,
        "STORELENS_IDENTITY_RESOLVE_EVERY_S": "0",
        "STORELENS_WEB_VIEW_CACHE_SIZE": "32" if cache else "0",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "storelens.web.site:create_site",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
        cwd=workdir,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("the server did not start")


def median(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def measure(base: str, first: date, last: date, runs: int, floor_only: bool) -> dict[str, Any]:
    out: dict[str, list[float]] = {
        "floor_week_ms": [],
        "floor_week_html_ms": [],
        "floor_week_dom_ready_ms": [],
        "daypart_switch_ms": [],
        "today_first_paint_ms": [],
        "today_first_figures_ms": [],
        "today_live_update_ms": [],
    }
    token = httpx.post(f"{base}/v1/auth/token", data={"username": "boss", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{base}/login")
        page.fill("input[name=username]", "boss")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        floor = f"{base}/stores/{STORE}/floor?from={first}&to={last}"
        page.goto(floor)  # warm: plotly.js cached like a returning manager's browser
        for _ in range(runs):
            page.goto(floor)
            page.wait_for_selector("#chart-heat .main-svg")
            out["floor_week_ms"].append(page.evaluate("performance.now()"))
            nav = page.evaluate("performance.getEntriesByType('navigation')[0].toJSON()")
            out["floor_week_html_ms"].append(nav["responseEnd"] - nav["requestStart"])
            out["floor_week_dom_ready_ms"].append(nav["domContentLoadedEventEnd"])
            switched = page.evaluate(
                """() => new Promise(done => {
                    const el = document.getElementById('chart-heat');
                    const t = performance.now();
                    document.querySelector('[data-daypart="midday"]').click();
                    const check = () => el.dataset.shown === 'midday'
                        ? requestAnimationFrame(() => done(performance.now() - t))
                        : requestAnimationFrame(check);
                    check();
                })"""
            )
            out["daypart_switch_ms"].append(switched)
        today = f"{base}/stores/{STORE}/today"
        for i in range(0 if floor_only else runs):
            page.goto(today)
            page.wait_for_function("Number(document.body.dataset.updates || 0) > 0")
            out["today_first_figures_ms"].append(page.evaluate("performance.now()"))
            paint = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0].startTime"
            )
            out["today_first_paint_ms"].append(paint)
            as_of = datetime.fromisoformat(
                httpx.get(
                    f"{base}/web/api/stores/{STORE}/today",
                    cookies={c["name"]: c["value"] for c in page.context.cookies()},
                ).json()["as_of"]
            )
            seen = page.evaluate("Number(document.body.dataset.updates)")
            event = {
                "id": str(uuid.uuid4()),
                "type": "vision.zone_enter",
                "source": "bench",
                "ts": (as_of + timedelta(seconds=1)).isoformat(),
                "store_id": STORE,
                "payload": {"zone_id": "queue", "track_id": f"bench-{i}-{uuid.uuid4().hex[:6]}"},
            }
            httpx.post(f"{base}/v1/events", json=[event], headers=bearer).raise_for_status()
            posted = time.perf_counter()
            page.wait_for_function(
                "n => Number(document.body.dataset.updates) > n", arg=seen, polling="raf"
            )
            out["today_live_update_ms"].append((time.perf_counter() - posted) * 1000)
        browser.close()
    return {k: {"median": median(v), "runs": [round(x, 1) for x in v]} for k, v in out.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=7, help="simulated café days (Floor's period)")
    parser.add_argument("--runs", type=int, default=7, help="page loads per figure")
    parser.add_argument(
        "--database-url", help="an already simulated database (default: simulate --days anew)"
    )
    args = parser.parse_args()
    first = SimConfig().start_date
    last = first + timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        url = args.database_url or build(Path(tmp), args.days)
        console.print(f"simulated {args.days} day(s) in {time.perf_counter() - began:.0f} s")
        figures: dict[str, Any] = {}
        for cache in (False, True):  # every load built afresh, then the server as shipped
            proc, base = serve(url, Path(tmp), cache)
            try:
                found = measure(base, first, last, args.runs, floor_only=not cache)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            suffix = "" if cache else "_uncached"
            figures.update({f"{k}{suffix}": v for k, v in found.items()})
    table = Table(title=f"dashboard in Chromium, {args.days}-day period, median of {args.runs}")
    table.add_column("measure")
    table.add_column("median ms", justify="right")
    table.add_column("target", justify="right")
    targets = {
        "floor_week_ms": "< 1000",
        "floor_week_ms_uncached": "< 1000",
        "today_first_paint_ms": "< 500",
        "today_live_update_ms": "< 2000",
    }
    for name, value in figures.items():
        table.add_row(name, f"{value['median']:.1f}", targets.get(name, ""))
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                },
                "days": args.days,
                "runs": args.runs,
                "figures": figures,
                "command": f"python benchmarks/dashboard.py --days {args.days} --runs {args.runs}",
            },
            indent=2,
        )
        + "\n"
    )
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
