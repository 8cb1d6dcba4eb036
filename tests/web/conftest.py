"""Browser fixtures for the dashboard (and, later, the staff app): a live server on a free
port with a simulated café day loaded, real headless Chromium, and signed-in pages.

Chromium is Debian's (``/usr/bin/chromium``) driven by Playwright's Python package;
nothing is downloaded at test time (no ``playwright install``). Without Chromium the
browser tests skip locally and fail in CI, like a missing service. Screenshots go
under ``$STORELENS_SCREENSHOT_DIR`` when set, else the test run's temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import Engine, insert

from storelens import accounts, catalogue, stores
from storelens.catalogue import load_catalogue
from storelens.ingest.batch import ingest_numbered
from storelens.ingest.files import read_items
from storelens.processors import run_projections
from storelens.samples import sample_layout_path
from storelens.sim import run_simulation
from storelens.sim.config import SimConfig
from storelens.sim.lifecycle import LifecycleConfig, simulate_lifecycles, weeks_after
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import consent_records, orders

if TYPE_CHECKING:
    from storelens.predict.scoring import ScoreRun

SECRET = "web-test-secret-key-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple"
STORE = "cafe-01"
DAY = "2026-11-02"  # the simulator's first day (SimConfig.start_date)
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
USERS = {"admin": "boss", "analyst": "numbers", "staff": "floor"}


def simulated_store(directory: Path, days: int = 1, seed: int = 7) -> str:
    """A migrated SQLite database holding ``days`` simulated café days (with quarter-hour
    heatmaps), their facts projected, and one user per role; returns its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'storelens.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    layout = sample_layout_path()
    with engine.begin() as conn:
        stores.load_layout_file(conn, layout)
        catalogue.upsert_products(conn, [asdict(p) for p in load_catalogue()])
        for role, name in USERS.items():
            accounts.create_user(conn, name, PASSWORD, accounts.Role(role))
    sim = run_simulation(
        layout, days, seed, directory / "sim", config=SimConfig(heatmap_every_s=900)
    )
    log = EventLog(engine)
    ingest_numbered(log, read_items(sim.events_path), batch_size=5000)
    run_projections(log)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return url


HISTORY = LifecycleConfig(customers=300, weeks=40, join_weeks=30, seed=5)
HISTORY_AS_OF = weeks_after(HISTORY.start, 40)
NO_CONSENT = "S0000002"  # a customer of the history who never grants analytics consent
SCORING = {"window_days": 60, "clv_months": 6, "monthly_discount": 0.01, "seeds": 3}


def scored_history(engine: Engine, config: LifecycleConfig = HISTORY) -> set[str]:
    """Load the lifecycle simulator's orders (with analytics consent for all but
    ``NO_CONSENT``) and run ``predict score`` on them; returns the customer ids."""
    from storelens.predict.store import rescore, write_run

    sim, _ = simulate_lifecycles(config)
    rows = [
        {
            "store_id": STORE,
            "order_id": f"life-{i}",
            "ts": ts.to_pydatetime(),
            "channel": channel,
            "customer_id": cid,
            "total": float(amount),
            "currency": "EUR",
            "event_id": uuid.uuid4(),
        }
        for i, (cid, ts, amount, channel) in enumerate(
            sim[["customer_id", "ts", "amount", "channel"]].itertuples(index=False)
        )
    ]
    ids = {str(c) for c in sim["customer_id"]}
    consents = [
        {
            "subject": cid,
            "purpose": "analytics",
            "granted": True,
            "channel": "app",
            "ts": config.start,
            "event_id": uuid.uuid4(),
        }
        for cid in sorted(ids - {NO_CONSENT})
    ]
    with engine.begin() as conn:
        conn.execute(insert(orders), rows)
        conn.execute(insert(consent_records), consents)
    key = repr(config)
    if key in _RUNS:  # the same orders and consents score the same: write that run again
        with engine.begin() as conn:
            write_run(conn, _RUNS[key])
    else:  # the real path once per process: read from the database, fit, write
        _RUNS[key] = rescore(engine, HISTORY_AS_OF, threads=1, **SCORING)
    return ids


_RUNS: dict[str, ScoreRun] = {}
"""Score runs by history, per test process: fitting took 2 to 5 s in each of 26 tests."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Site:
    """``storelens.web.site:create_site`` under uvicorn in a subprocess, projections on."""

    db_url: str
    workdir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "STORELENS_DATABASE_URL": self.db_url,
            "STORELENS_ENV": "prod",
            "STORELENS_SECRET_KEY": SECRET,
            "STORELENS_RUN_PROJECTIONS": "true",
            "STORELENS_IDENTITY_RESOLVE_EVERY_S": "0",
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "storelens.web.site:create_site"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning", "--no-access-log"]
        with (self.workdir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        text = (self.workdir / "server.log").read_text()
        self.stop()
        pytest.fail(f"the dashboard server did not start:\n{text}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def token(self, role: str = "admin") -> dict[str, str]:
        """Bearer headers for the role's user, from the API's own sign-in."""
        r = httpx.post(
            f"{self.url}/v1/auth/token", data={"username": USERS[role], "password": PASSWORD}
        )
        r.raise_for_status()
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="session")
def simulated_day_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One simulated café day in SQLite (built once per session, about 10 s)."""
    return simulated_store(tmp_path_factory.mktemp("web-day"))


@pytest.fixture(scope="session")
def site(simulated_day_db: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The live site over the simulated day. Tests that post events keep to late in the
    day, so the day's figures other tests compare stay the API's at the time of asking."""
    srv = Site(simulated_day_db, tmp_path_factory.mktemp("web-server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("STORELENS_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _sign_in(page: Any, site: Site, role: str, next_path: str = "/") -> None:
    """Through the login form, as a person would."""
    page.goto(f"{site.url}/login?next={next_path}")
    page.fill("input[name=username]", USERS[role])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")


@pytest.fixture
def signed_in(browser: Any, site: Site) -> Iterator[Callable[..., Any]]:
    """A factory of signed-in pages: ``signed_in(role, viewport=DESKTOP)``; closed after."""
    contexts: list[Any] = []

    def _open(role: str = "admin", viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or DESKTOP)
        contexts.append(context)
        page = context.new_page()
        page.console_errors = []  # type: ignore[attr-defined]
        page.on(
            "console",
            lambda msg: page.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
        _sign_in(page, site, role)
        return page

    yield _open
    for context in contexts:
        context.close()


@pytest.fixture
def page(signed_in: Callable[..., Any]) -> Any:
    """A desktop page signed in as an admin."""
    return signed_in("admin")


@pytest.fixture
def sign_in() -> Callable[..., None]:
    """``sign_in(page, site, role, next_path="/")`` through the login form."""
    return _sign_in


@pytest.fixture
def score_history() -> Callable[[Engine], set[str]]:
    """:func:`scored_history`, for tests (test modules cannot import this conftest by name)."""
    return scored_history


def scored_store(directory: Path) -> str:
    """A migrated SQLite database with the sample café, one user per role, and the
    lifecycle simulator's 40 weeks of orders scored by ``predict score``; its URL."""
    directory.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{directory / 'storelens.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        stores.load_layout_file(conn, sample_layout_path())
        for role, name in USERS.items():
            accounts.create_user(conn, name, PASSWORD, accounts.Role(role))
    scored_history(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def scored_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live site over a scored customer history (no store day: Customers only)."""
    srv = Site(scored_store(tmp_path_factory.mktemp("web-scored")), tmp_path_factory.mktemp("srv"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def as_role(site: Any) -> Iterator[Callable[[str], Any]]:
    """A fresh client per role, signed in (its own cookie jar); "none" stays signed out.

    For the tests that need no browser: a module using it defines its own ``site``
    fixture returning ``tests.web.dashboard_clients.in_process_site``, and this takes
    that module's ``site`` (pytest resolves a fixture's dependencies from the requesting
    test), not the live server above."""
    from fastapi.testclient import TestClient
    from tests.web.dashboard_clients import sign_in_client

    made: list[TestClient] = []

    def _make(role: str) -> TestClient:
        client = TestClient(site.app)
        made.append(client)
        if role != "none":
            assert sign_in_client(client, role).status_code == 303
        return client

    yield _make
    for client in made:
        client.close()
