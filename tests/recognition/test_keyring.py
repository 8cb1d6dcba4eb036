"""Embeddings at rest: unreadable without the key, bound to their row, and rotatable."""

from __future__ import annotations

import os
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from storelens.cli import app
from storelens.config import Settings
from storelens.core.errors import ConfigError
from storelens.recognition import store as face_store
from storelens.recognition.key_rotation import reseal_all
from storelens.recognition.keyring import FaceKeyring, Sealed, pending_path, write_key_file
from storelens.storage.tables import face_embeddings

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
rng = np.random.default_rng(3)


def _vector() -> np.ndarray:
    return rng.normal(0, 0.09, 128).astype(np.float32)


def test_a_sealed_embedding_opens_with_its_key_and_row_only(tmp_path: Path) -> None:
    path = tmp_path / "faces.key"
    assert write_key_file(path)
    assert not write_key_file(path)  # never overwritten
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    ring = FaceKeyring.open(path)
    row, vector = uuid.uuid4(), _vector()
    sealed = ring.seal(row, vector)
    assert vector.tobytes() not in sealed.ciphertext
    assert np.array_equal(ring.open_sealed(row, sealed), vector)
    with pytest.raises(ConfigError, match="failed authentication"):
        ring.open_sealed(uuid.uuid4(), sealed)  # copied onto another row
    other = tmp_path / "other.key"
    write_key_file(other)
    with pytest.raises(ConfigError, match="does not hold"):
        FaceKeyring.open(other).open_sealed(row, sealed)
    forged = Sealed(ring.key_id, sealed.nonce, sealed.ciphertext[:-1] + b"\x00")
    with pytest.raises(ConfigError, match="failed authentication"):
        ring.open_sealed(row, forged)


@pytest.mark.parametrize("bad", [np.zeros(127), np.full(128, np.nan)])
def test_only_128_finite_numbers_are_sealed(tmp_path: Path, bad: np.ndarray) -> None:
    write_key_file(tmp_path / "k")
    with pytest.raises(ValueError, match="128 finite"):
        FaceKeyring.open(tmp_path / "k").seal(uuid.uuid4(), bad)


@pytest.mark.parametrize("content", ["not base64!", "c2hvcnQ="])
def test_a_bad_key_file_is_a_config_error(tmp_path: Path, content: str) -> None:
    (tmp_path / "k").write_text(content)
    with pytest.raises(ConfigError):
        FaceKeyring.open(tmp_path / "k")
    with pytest.raises(ConfigError, match="does not exist"):
        FaceKeyring.open(tmp_path / "missing")


def _enroll_vectors(
    engine: Engine, ring: FaceKeyring, customer_id: str, n: int
) -> list[np.ndarray]:
    vectors = [_vector() for _ in range(n)]
    with engine.begin() as conn:
        consent = face_store.record_consent(
            conn, customer_id, text_version="v1", store_ids=None, recorded_by="staff-1", at=NOW
        )
        face_store.add_embeddings(conn, consent, customer_id, vectors, ring, NOW)
    return vectors


def test_rows_in_the_database_hold_no_readable_vector(engine: Engine, tmp_path: Path) -> None:
    write_key_file(tmp_path / "k")
    ring = FaceKeyring.open(tmp_path / "k")
    vectors = _enroll_vectors(engine, ring, "C1", 2)
    with engine.connect() as conn:
        rows = conn.execute(select(face_embeddings)).all()
    blobs = b"".join(bytes(r.ciphertext) + bytes(r.nonce) for r in rows)
    for v in vectors:
        assert v.tobytes() not in blobs
        assert v.astype("<f8").tobytes()[:16] not in blobs
        assert v[:4].tobytes() not in blobs  # not even the first four numbers


def test_rotate_key_re_encrypts_every_row_and_retires_the_old_key(
    engine: Engine, settings: Settings, db_url: str, tmp_path: Path
) -> None:
    key_path = settings.faces_key_path
    write_key_file(key_path)
    old = FaceKeyring.open(key_path)
    vectors = _enroll_vectors(engine, old, "C1", 3)
    old_copy = tmp_path / "old.key"
    old_copy.write_bytes(key_path.read_bytes())

    result = CliRunner().invoke(app, ["faces", "rotate-key", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 3 embeddings" in result.output
    assert not pending_path(key_path).exists()
    new = FaceKeyring.open(key_path)
    assert new.key_id != old.key_id

    with engine.connect() as conn:
        rows = conn.execute(select(face_embeddings).order_by(face_embeddings.c.created_at)).all()
    assert {r.key_id for r in rows} == {new.key_id}
    opened = {
        new.open_sealed(r.id, Sealed(r.key_id, r.nonce, r.ciphertext)).tobytes() for r in rows
    }
    assert opened == {v.tobytes() for v in vectors}
    retired = FaceKeyring.open(old_copy)
    with pytest.raises(ConfigError, match="does not hold"):
        retired.open_sealed(rows[0].id, Sealed(rows[0].key_id, rows[0].nonce, rows[0].ciphertext))


def test_an_interrupted_rotation_leaves_every_row_readable_and_finishes_on_rerun(
    engine: Engine, settings: Settings, db_url: str
) -> None:
    key_path = settings.faces_key_path
    write_key_file(key_path)
    vectors = _enroll_vectors(engine, FaceKeyring.open(key_path), "C1", 2)
    # A rotation that committed its rows but died before moving the new key into place:
    write_key_file(pending_path(key_path))
    both = FaceKeyring.open(key_path)
    pending = FaceKeyring.open(pending_path(key_path))
    with engine.begin() as conn:
        reseal_all(conn, both, pending)
    with engine.connect() as conn:  # still readable through the main key file's keyring
        rows = conn.execute(select(face_embeddings)).all()
        assert len(face_store.load_gallery(conn, "x", both)) == 0  # store switched off
    assert {
        both.open_sealed(r.id, Sealed(r.key_id, r.nonce, r.ciphertext)).tobytes() for r in rows
    } == {v.tobytes() for v in vectors}
    result = CliRunner().invoke(app, ["faces", "rotate-key", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    final = FaceKeyring.open(key_path)
    assert final.key_id == pending.key_id
    assert not pending_path(key_path).exists()


def test_rotate_key_without_a_key_file_says_so(db_url: str, settings: Settings) -> None:
    assert not settings.faces_key_path.exists()
    result = CliRunner().invoke(app, ["faces", "rotate-key", "--database-url", db_url])
    assert result.exit_code == 2
    assert "does not exist" in result.output
