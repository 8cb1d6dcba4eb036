"""``storelens faces switch``, ``pending`` and ``approve``, and the face key written by
``storelens init``."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import Engine
from typer.testing import CliRunner

from storelens import stores
from storelens.cli import app
from storelens.config import Settings
from storelens.recognition import store as face_store
from storelens.recognition.keyring import EMBEDDING_DIM, FaceKeyring
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


def test_pending_lists_a_staff_enrollment_and_approve_lets_it_match(
    engine: Engine, db_url: str
) -> None:
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    vector = np.random.default_rng(3).standard_normal(EMBEDDING_DIM).astype(np.float32)
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        face_store.set_recognition(conn, "cafe-01", True, by="boss", at=at)
        consent = face_store.record_consent(
            conn, "C1", text_version="v1", store_ids=["cafe-01"], recorded_by="staff-1", at=at
        )
        face_store.add_embeddings(conn, consent, "C1", [vector], FaceKeyring(os.urandom(32)), at)
    listed = runner.invoke(app, ["faces", "pending", "--database-url", db_url])
    assert listed.exit_code == 0, listed.output
    assert "C1" in listed.output and "staff-1" in listed.output and "cafe-01" in listed.output
    with engine.connect() as conn:
        assert not face_store.consent_in_force(conn, "C1", "cafe-01")

    approved = runner.invoke(app, ["faces", "approve", str(consent), "--database-url", db_url])
    assert approved.exit_code == 0, approved.output
    said = " ".join(approved.output.split())  # rich wraps long lines
    assert f"approved enrollment {consent}: recorded by staff-1, approved by cli:" in said
    with engine.connect() as conn:
        assert face_store.consent_in_force(conn, "C1", "cafe-01")
    empty = runner.invoke(app, ["faces", "pending", "--database-url", db_url])
    assert "no enrollment waits for approval" in empty.output

    twice = runner.invoke(app, ["faces", "approve", str(consent), "--database-url", db_url])
    assert twice.exit_code == 2
    assert "already approved" in twice.output
    unknown = runner.invoke(app, ["faces", "approve", "999", "--database-url", db_url])
    assert unknown.exit_code == 2
    assert "no face enrollment 999" in unknown.output
    not_a_number = runner.invoke(app, ["faces", "approve", "C1", "--database-url", db_url])
    assert not_a_number.exit_code == 2
    bad = runner.invoke(app, ["faces", "pending", "--limit", "0", "--database-url", db_url])
    assert bad.exit_code == 2


def test_refuse_deletes_one_waiting_enrollment_and_spares_an_approved_one(
    engine: Engine, db_url: str
) -> None:
    at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    vector = np.random.default_rng(3).standard_normal(EMBEDDING_DIM).astype(np.float32)
    keyring = FaceKeyring(os.urandom(32))
    with engine.begin() as conn:
        doubtful = face_store.record_consent(
            conn, "C1", text_version="v1", store_ids=None, recorded_by="staff-1", at=at
        )
        face_store.add_embeddings(conn, doubtful, "C1", [vector], keyring, at)
        fine = face_store.record_consent(
            conn, "C2", text_version="v1", store_ids=None, recorded_by="staff-1", at=at,
            approved_by="boss",
        )  # fmt: skip
        face_store.add_embeddings(conn, fine, "C2", [vector], keyring, at)
    refused = runner.invoke(app, ["faces", "refuse", str(doubtful), "--database-url", db_url])
    assert refused.exit_code == 0, refused.output
    assert f"refused enrollment {doubtful}: 1 embedding(s) deleted" in refused.output
    empty = runner.invoke(app, ["faces", "pending", "--database-url", db_url])
    assert "no enrollment waits for approval" in empty.output
    approved = runner.invoke(app, ["faces", "refuse", str(fine), "--database-url", db_url])
    assert approved.exit_code == 2 and "is approved" in approved.output
    with engine.connect() as conn:
        assert face_store.active_consent(conn, "C2") is not None
        row = face_store.consent_by_id(conn, doubtful)
    assert row is not None and str(row["withdrawn_by"]).startswith("cli:")
    unknown = runner.invoke(app, ["faces", "refuse", "999", "--database-url", db_url])
    assert unknown.exit_code == 2 and "no face enrollment 999" in unknown.output
