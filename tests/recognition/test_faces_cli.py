"""``storelens faces switch`` and the face key written by ``storelens init``."""

from __future__ import annotations

import os
import stat

from sqlalchemy import Engine
from typer.testing import CliRunner

from storelens import stores
from storelens.cli import app
from storelens.config import Settings
from storelens.recognition.store import recognition_enabled

runner = CliRunner()


def test_switch_turns_a_store_on_and_off(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        assert not recognition_enabled(conn, "cafe-01")  # off by default
    on = runner.invoke(
        app, ["faces", "switch", "--store", "cafe-01", "--on", "--database-url", db_url]
    )
    assert on.exit_code == 0, on.output
    assert "recognition in cafe-01: on" in on.output
    with engine.connect() as conn:
        assert recognition_enabled(conn, "cafe-01")
    off = runner.invoke(
        app, ["faces", "switch", "--store", "cafe-01", "--off", "--database-url", db_url]
    )
    assert off.exit_code == 0
    with engine.connect() as conn:
        assert not recognition_enabled(conn, "cafe-01")
    unknown = runner.invoke(
        app, ["faces", "switch", "--store", "nowhere", "--on", "--database-url", db_url]
    )
    assert unknown.exit_code == 2
    assert "no store 'nowhere'" in unknown.output


def test_init_writes_an_owner_only_face_key_beside_the_secret_key(db_url: str) -> None:
    settings = Settings()
    assert settings.faces_key_path.parent == settings.secret_key_file.parent
    first = runner.invoke(app, ["init", "--database-url", db_url, "--admin", "boss"])
    assert first.exit_code == 0, first.output
    key = settings.faces_key_path
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    content = key.read_bytes()
    assert content.decode().strip() not in first.output  # never printed
    again = runner.invoke(app, ["init", "--database-url", db_url, "--admin", "boss"])
    assert again.exit_code == 0
    assert key.read_bytes() == content  # never replaced by a second init
