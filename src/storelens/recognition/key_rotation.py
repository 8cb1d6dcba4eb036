"""Key rotation for the sealed face embeddings: every row re-encrypted under a new key.

Kept apart from the consent and matching rules in :mod:`storelens.recognition.store`:
rotation touches every embedding and no rule about who may be recognised.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Connection, Engine, select, update

from storelens.privacy import audit
from storelens.recognition.keyring import (
    FaceKeyring,
    Sealed,
    key_id_of,
    pending_path,
    read_key_file,
    write_key_file,
)
from storelens.storage.tables import face_embeddings

__all__ = ["reseal_all", "rotate_key"]


def reseal_all(conn: Connection, old: FaceKeyring, new: FaceKeyring) -> int:
    """Re-encrypt every embedding under ``new`` (one transaction: all or none)."""
    rows = conn.execute(select(face_embeddings)).all()
    for r in rows:
        vector = old.open_sealed(r.id, Sealed(r.key_id, r.nonce, r.ciphertext))
        sealed = new.seal(r.id, vector)
        conn.execute(
            update(face_embeddings)
            .where(face_embeddings.c.id == r.id)
            .values(key_id=sealed.key_id, nonce=sealed.nonce, ciphertext=sealed.ciphertext)
        )
    return len(rows)


def rotate_key(engine: Engine, key_file: Path) -> tuple[str, int]:
    """A new key for every embedding: returns its id and how many rows were re-sealed.

    The new key is written to ``<file>.new`` before any row changes and moved over the
    old file only after the transaction committed; a rotation interrupted anywhere
    leaves every row readable and is finished by running it again.
    """
    old = FaceKeyring.open(key_file)  # holds the pending key too, if a rotation broke off
    pending = pending_path(key_file)
    write_key_file(pending)  # a broken-off rotation's key is kept and reused
    new_key = read_key_file(pending)
    with engine.begin() as conn:
        count = reseal_all(conn, old, old.with_current(new_key))
        audit.record(
            conn, audit.SYSTEM, "faces.rotate_key", "face_key", key_id_of(new_key), {"rows": count}
        )
    os.replace(pending, key_file)
    return key_id_of(new_key), count
