"""``storelens init``/``serve`` secrets, and the user and key administration commands."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

import storelens
from storelens import accounts
from storelens.cli import app
from storelens.config import DEV_SECRET, Settings
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.tables import audit_log

runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh working directory with no secret in the environment."""
    names = ("STORELENS_SECRET_KEY", "STORELENS_SECRET_KEY_FILE", "STORELENS_ENV")
    for name in (*names, "STORELENS_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_init_writes_an_owner_only_secret_that_settings_use(workdir: Path) -> None:
    assert Settings().placeholder_secret
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    key_file = workdir / "storelens.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_text().strip()
    assert len(secret) >= 48 and Settings().secret_key.get_secret_value() == secret
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert key_file.read_text().strip() == secret  # a re-run never rotates it


def test_serve_refuses_the_placeholder_off_loopback(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **kw: calls.append(kw))
    migrate.upgrade(create_engine("sqlite:///./storelens.db"))
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0"])  # noqa: S104
    assert result.exit_code == 2 and "placeholder secret" in result.output
    assert runner.invoke(app, ["serve", "--host", "127.0.0.1"]).exit_code == 0
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["serve", "--host", "0.0.0.0"]).exit_code == 0  # noqa: S104
    assert [c["host"] for c in calls] == ["127.0.0.1", "0.0.0.0"]  # noqa: S104
    assert all(c["proxy_headers"] is False for c in calls)
    assert all("redact_credentials" in c["log_config"]["filters"] for c in calls)


def test_user_and_key_administration(workdir: Path) -> None:
    assert runner.invoke(app, ["init"]).exit_code == 0
    engine = create_engine("sqlite:///./storelens.db")

    def run(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    run("users", "create", "ana", "--role", "staff")
    with engine.connect() as conn:
        first = accounts.get_user(conn, "ana").token_version
    run("users", "set-role", "ana", "analyst")
    run("users", "disable", "ana")
    with engine.connect() as conn:
        user = accounts.get_user(conn, "ana")
    # each change ends the sessions: two changes, two versions on
    assert (user.role, user.active, user.token_version) == (accounts.Role.analyst, False, first + 2)
    run("users", "enable", "ana")
    assert "ana" in run("users", "list")
    run("users", "delete", "ana", "--yes")
    assert runner.invoke(app, ["users", "disable", "ana"]).exit_code == 2  # names nobody now

    out = run("keys", "create", "crm-sync", "--type", "customer.upserted")
    assert "may send: customer.upserted" in out
    run("keys", "create", "consent-hub", "--type", "web.event", "--consent-source")
    bad = runner.invoke(app, ["keys", "create", "x", "--type", "consent.changed"])
    assert bad.exit_code == 2 and "consent source" in bad.output  # refused input
    keys = {k.name: k for k in accounts.list_api_keys(engine)}
    assert keys["consent-hub"].event_types == {"web.event", "consent.changed"}
    run("keys", "revoke", str(keys["crm-sync"].id))
    listing = run("keys", "list")
    assert "revoked" in listing and "consent-hub" in listing and "slk_" not in listing
    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action).order_by(audit_log.c.id)).scalars()
        assert list(actions)[1:] == [
            "user.create", "user.role", "user.disable", "user.enable", "user.delete",
            "api_key.create", "api_key.create", "api_key.revoke",
        ]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_served_as_the_readme_says_no_forged_token_works_and_no_secret_is_logged(
    workdir: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORELENS_")}
    env["PYTHONPATH"] = str(Path(storelens.__file__).resolve().parents[1])  # this checkout
    cli = [sys.executable, "-m", "storelens.cli"]
    subprocess.run([*cli, "init"], env=env, cwd=workdir, check=True, capture_output=True)
    port = _free_port()
    log_path = workdir / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [*cli, "serve", "--port", str(port)],
            env={**env, "STORELENS_RUN_PROJECTIONS": "false"},
            cwd=workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(400):
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        now = datetime.now(UTC)
        forged = jwt.encode(
            {"sub": "admin", "role": "admin", "ver": 0, "iss": "storelens", "iat": now,
             "exp": now + timedelta(minutes=5)},
            DEV_SECRET,
            algorithm="HS256",
        )  # fmt: skip
        r = httpx.get(f"{url}/v1/users", headers={"Authorization": f"Bearer {forged}"})
        assert r.status_code == 401
        httpx.get(f"{url}/v1/stores/x/alerts/ws?token={forged}")
        httpx.get(f"{url}/health?key=slk_0a1b2c3d_secretsecretsecret")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log_path.read_text()
    assert "token=***" in text and "key=***" in text
    assert forged not in text and "secretsecretsecret" not in text


def test_users_are_offered_only_the_roles_a_person_can_have(db_url: str) -> None:
    """``device`` was offered and then refused: devices use API keys."""
    runner = CliRunner()
    help_text = runner.invoke(app, ["users", "create", "--help"]).output
    assert "admin|analyst|staff" in help_text and "device" not in help_text
    refused = runner.invoke(
        app, ["users", "create", "cam-1", "--role", "device", "--database-url", db_url]
    )
    assert refused.exit_code == 2 and "device" in refused.output
    made = runner.invoke(
        app, ["users", "create", "ana", "--role", "staff", "--database-url", db_url]
    )
    assert made.exit_code == 0 and "created staff" in made.output


def test_the_last_active_admin_cannot_be_disabled_demoted_or_deleted(db_url: str) -> None:
    """A new user deleted the only admin with `users delete admin --yes`: nobody could
    then create users or keys without editing the database."""
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, [*args, "--database-url", db_url])

    assert run("users", "create", "boss", "--role", "admin").exit_code == 0
    for attempt in (
        ("users", "delete", "boss", "--yes"),
        ("users", "disable", "boss"),
        ("users", "set-role", "boss", "analyst"),
    ):
        refused = run(*attempt)
        assert refused.exit_code == 2, refused.output
        assert "last active admin" in refused.output
    assert run("users", "create", "deputy", "--role", "admin").exit_code == 0
    assert run("users", "disable", "deputy").exit_code == 0  # boss is still active
    refused = run("users", "delete", "boss", "--yes")
    assert refused.exit_code == 2 and "last active admin" in refused.output
    assert run("users", "enable", "deputy").exit_code == 0
    done = run("users", "delete", "boss", "--yes")
    assert done.exit_code == 0, done.output
