"""Enrollment: a member's photos become sealed embeddings, under their biometric consent.

The order of the steps is the privacy argument. Consent is checked before a single
pixel is decoded; every photo must show exactly one usable face before anything is
written; and the photos exist only as bytes and pixel arrays in this call, which
returns embeddings and nothing else. A refused enrollment stores nothing at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, select

from storelens.accounts import Role
from storelens.config import Settings
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.privacy.subject import canonical_id
from storelens.recognition.consent_texts import require_in_force
from storelens.recognition.keyring import FaceKeyring
from storelens.recognition.store import add_embeddings, record_consent
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import stores

__all__ = ["BiometricConsent", "Enrolled", "embed_photos", "enroll", "parse_store_ids"]

_STORE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class BiometricConsent:
    """What the person agreed to, as the form recorded it."""

    given: bool
    text_version: str
    store_ids: tuple[str, ...] | None  # None: every store of the chain


@dataclass(frozen=True, slots=True)
class Enrolled:
    customer_id: str
    consent_id: int
    photos: int
    granted_at: datetime
    approved: bool


def _refuse(loc: tuple[str | int, ...], message: str, kind: str) -> InvalidInput:
    return InvalidInput(message, [FieldError.at(("body", *loc), message, kind)])


def parse_store_ids(raw: str | None) -> tuple[str, ...] | None:
    """``"cafe-01, cafe-02"`` as store ids; empty or absent means every store."""
    if raw is None or not raw.strip():
        return None
    ids = tuple(dict.fromkeys(s.strip() for s in raw.split(",") if s.strip()))
    bad = [s for s in ids if not _STORE_ID.match(s)]
    if bad:
        raise _refuse(("stores",), f"not store ids: {', '.join(bad[:5])}", "store_ids")
    return ids


def _check_consent(consent: BiometricConsent) -> None:
    if not consent.given:
        raise _refuse(
            ("consent",),
            "biometric consent is required: the person must agree, in the store, to "
            "recognition before any photo is taken",
            "consent_missing",
        )
    if not 1 <= len(consent.text_version.strip()) <= 40:
        raise _refuse(
            ("consent_text_version",),
            "name the version of the consent text the person read (1 to 40 characters)",
            "consent_text_version",
        )


def _require_stores(conn: Connection, store_ids: Sequence[str] | None) -> None:
    """Every store the consent names exists: a mistyped id made a consent that covered
    no store at all, answered 201 (a new user's review)."""
    if store_ids is None:
        return
    known = set(conn.execute(select(stores.c.id).where(stores.c.id.in_(store_ids))).scalars())
    unknown = [s for s in store_ids if s not in known]
    if unknown:
        raise _refuse(("stores",), f"no such store: {', '.join(unknown[:5])}", "store_ids")


def embed_photos(
    pipeline: object, photos: Sequence[bytes], *, max_photos: int, max_bytes: int
) -> list[npt.NDArray[np.float32]]:
    """One embedding per photo, or an input error naming the photo and what is wrong."""
    from storelens.recognition.faces import FacePipeline, decode_photo  # the faces extra

    assert isinstance(pipeline, FacePipeline)
    if not 1 <= len(photos) <= max_photos:
        raise _refuse(("photos",), f"send 1 to {max_photos} photos, not {len(photos)}", "photos")
    vectors = []
    for i, data in enumerate(photos):
        rgb = decode_photo(data, loc=("photos", i), max_bytes=max_bytes)
        faces = pipeline.find(rgb)
        del rgb
        if not faces:
            raise _refuse(("photos", i), "no face found in this photo", "photo_no_face")
        if len(faces) > 1:
            raise _refuse(
                ("photos", i),
                f"{len(faces)} faces in this photo: it must show the member alone",
                "photo_many_faces",
            )
        if not faces[0].verdict.usable:
            raise _refuse(("photos", i), "; ".join(faces[0].verdict.reasons), "photo_quality")
        vectors.append(pipeline.embed(faces[0]))
    return vectors


def enroll(
    engine: Engine,
    settings: Settings,
    customer_id: str,
    consent: BiometricConsent,
    photos: Sequence[bytes],
    *,
    recorded_by: audit.Actor,
    now: datetime,
    pipeline: object | None = None,
    still_allowed: Callable[[Connection], object] | None = None,
    detail: Mapping[str, str] | None = None,
) -> Enrolled:
    """Check consent, embed every photo, then store consent and embeddings together.

    An admin's enrollment is approved as it is stored; anyone else's waits for an admin
    (:func:`storelens.recognition.approval.approve`), so no one can make their own face
    stand for a customer alone.

    The consent must name a published consent text in force
    (:mod:`storelens.recognition.consent_texts`), checked before any photo is read.
    Embedding takes seconds, so the write checks again, under the erasure lock, that the
    person is still known and the text not retired, and runs ``still_allowed`` (a
    claimed notice's gate) in the same transaction: an erasure that ran meanwhile left a
    whole enrollment of the person it had erased, and a claim closed meanwhile still
    enrolled (a review).
    ``detail`` goes into the audit entry (the notice it came through)."""
    _check_consent(consent)
    with engine.connect() as conn:
        current = canonical_id(conn, customer_id)
        if current is not None:
            require_in_force(conn, consent.text_version)  # before any photo is read
            _require_stores(conn, consent.store_ids)
    if current is None:
        raise NotFound(f"no customer {customer_id!r}")
    if pipeline is None:
        from storelens.recognition.faces import FacePipeline

        pipeline = FacePipeline.from_settings(settings)
    vectors = embed_photos(
        pipeline,
        photos,
        max_photos=settings.faces_max_photos,
        max_bytes=int(settings.faces_max_photo_mb * 2**20),
    )
    keyring = FaceKeyring.open(settings.faces_key_path, create=True)
    approved = recorded_by.role == Role.admin
    with engine.begin() as conn:
        dialect_for(conn).lock_erasures(conn, shared=True)
        still = canonical_id(conn, customer_id)
        if still is None:
            raise NotFound("the customer is no longer known: erased while the photos were read")
        current = still  # a merge meanwhile: the person's id now
        if still_allowed is not None:
            still_allowed(conn)
        text = require_in_force(conn, consent.text_version)  # not retired meanwhile
        consent_id = record_consent(
            conn,
            current,
            text_version=text.version,
            text_sha256=text.sha256,
            store_ids=consent.store_ids,
            recorded_by=recorded_by.name,
            at=now,
            approved_by=recorded_by.name if approved else None,
        )
        add_embeddings(conn, consent_id, current, vectors, keyring, now)
        audit.record(
            conn,
            recorded_by,
            "faces.enroll",
            "customer",
            current,
            {
                "photos": len(vectors),
                "consent_id": consent_id,
                "text_version": text.version,
                "text_sha256": text.sha256,
                "approved": approved,
                **(detail or {}),
            },
        )
    return Enrolled(current, consent_id, len(vectors), now, approved)
