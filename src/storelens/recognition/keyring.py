"""Face embeddings are encrypted at rest with AES-256-GCM under a key kept in a file.

A stolen database holds only ciphertext: without the key file (0600, beside the secret
key file, never logged) an embedding cannot be read, compared or linked to a photo. Each
row names the key that sealed it (``key_id``, a digest of the key, not the key), so a
rotation can be interrupted safely: ``rotate`` writes the new key to ``<file>.new``
first, re-encrypts every row in one transaction, and only then moves the new key into
place. A keyring opened in between holds both keys and reads every row either way.

Each row's id is the associated data, so a ciphertext copied onto another row (another
customer) fails to decrypt instead of lending its face to someone else.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from storelens.core.errors import ConfigError, MissingExtra

__all__ = [
    "EMBEDDING_DIM",
    "FaceKeyring",
    "Sealed",
    "key_id_of",
    "pending_path",
    "read_key_file",
    "write_key_file",
]

EMBEDDING_DIM = 128
_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # the GCM standard nonce


@dataclass(frozen=True, slots=True)
class Sealed:
    """One encrypted embedding as stored: which key, the nonce, ciphertext with its tag."""

    key_id: str
    nonce: bytes
    ciphertext: bytes


def key_id_of(key: bytes) -> str:
    """A short public name for a key: rows say which key sealed them without holding it."""
    return hashlib.sha256(b"storelens-faces-key:" + key).hexdigest()[:16]


def _aesgcm(key: bytes):  # type: ignore[no-untyped-def]
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise MissingExtra("face embedding encryption (cryptography)", "faces") from exc
    return AESGCM(key)


def write_key_file(path: Path) -> bool:
    """Create ``path`` with a new random key, owner-only; False if it exists already."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode() + "\n")
    return True


def read_key_file(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_text().strip(), validate=True)
    except (ValueError, OSError) as exc:
        raise ConfigError(f"face key file {path} cannot be read as a base64 key") from exc
    if len(key) != _KEY_BYTES:
        raise ConfigError(f"face key file {path} must hold a {_KEY_BYTES}-byte key")
    return key


def pending_path(path: Path) -> Path:
    """Where a rotation keeps the next key until every row is sealed with it."""
    return path.with_name(path.name + ".new")


class FaceKeyring:
    """The key that seals new embeddings, and every key that may still open old ones."""

    def __init__(self, current: bytes, readable: tuple[bytes, ...] = ()) -> None:
        self._current = current
        self._keys = {key_id_of(k): k for k in (current, *readable)}

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> FaceKeyring:
        """The keyring of the key file (and of an interrupted rotation's pending key).

        ``create`` writes a new key file when there is none: enrollment does, so the
        first member needs no extra setup step; reading never does, because a new key
        cannot open rows sealed with a lost one.
        """
        if create:
            write_key_file(path)
        if not path.is_file():
            raise ConfigError(
                f"face key file {path} does not exist (set STORELENS_FACES_KEY_FILE, "
                "or run storelens init)"
            )
        current = read_key_file(path)
        pending = pending_path(path)
        extra = (read_key_file(pending),) if pending.is_file() else ()
        return cls(current, extra)

    @property
    def key_id(self) -> str:
        return key_id_of(self._current)

    def seal(self, row_id: uuid.UUID, embedding: npt.NDArray[np.floating]) -> Sealed:
        vector = np.asarray(embedding, dtype="<f4").reshape(-1)
        if vector.shape != (EMBEDDING_DIM,) or not np.all(np.isfinite(vector)):
            raise ValueError(f"an embedding is {EMBEDDING_DIM} finite numbers")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = _aesgcm(self._current).encrypt(nonce, vector.tobytes(), row_id.bytes)
        return Sealed(self.key_id, nonce, sealed)

    def open_sealed(self, row_id: uuid.UUID, sealed: Sealed) -> npt.NDArray[np.float32]:
        """The embedding, or ConfigError when its key is not here or the row was tampered."""
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise ConfigError(
                f"a face embedding is sealed with key {sealed.key_id}, which the face key "
                "file does not hold"
            )
        from cryptography.exceptions import InvalidTag

        try:
            plain = _aesgcm(key).decrypt(sealed.nonce, sealed.ciphertext, row_id.bytes)
        except InvalidTag as exc:
            raise ConfigError("a face embedding failed authentication (altered row?)") from exc
        return np.frombuffer(plain, dtype="<f4").astype(np.float32)

    def with_current(self, key: bytes) -> FaceKeyring:
        """This keyring, sealing new rows with ``key`` and still opening the old ones."""
        return FaceKeyring(key, tuple(self._keys.values()))
