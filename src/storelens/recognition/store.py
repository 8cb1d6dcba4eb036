"""The I/O half of recognition: consents, sealed embeddings, and each store's switch.

Biometric consent is recorded apart from marketing consent (``consent_records``): it
names its purpose, the text version the person read, who recorded it and when, and the
stores it covers. Embeddings hang off the consent that allowed them, sealed with
:mod:`storelens.recognition.keyring`. Withdrawal and erasure delete the embeddings in
the same transaction that records them; no copy survives in this module.

This module registers the ``faces`` personal store with the privacy registry, and it
imports no face code: erasing a member works without the ``faces`` extra.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, delete, func, select, update

from storelens.core.errors import NotFound
from storelens.privacy.consent import consent_state
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.subject import canonical_id, current_ids, people_ids
from storelens.privacy.subject import person_ids as subject_ids
from storelens.recognition.consent_texts import ConsentText, text_of
from storelens.recognition.keyring import (
    EMBEDDING_DIM,
    FaceKeyring,
    Sealed,
)
from storelens.recognition.matcher import Gallery
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import (
    customer_aliases,
    face_consents,
    face_embeddings,
    store_recognition,
    stores,
    users,
)

__all__ = [
    "PURPOSE",
    "active_admins",
    "active_consent",
    "add_embeddings",
    "approval_holds",
    "consent_active",
    "consent_by_id",
    "consent_in_force",
    "current_consents",
    "known_person",
    "load_gallery",
    "person_ids",
    "recognition_enabled",
    "record_consent",
    "set_recognition",
    "withdraw",
]

_CHUNK = 500  # ids per statement: bound lists stay well under every driver's limit
PURPOSE = "returning-customer recognition"
"""What the face data is for (staff are told when the member enters a store) and for
nothing else; the text the person read is named by the consent's ``text_version``."""


def person_ids(conn: Connection, customer_id: str) -> list[str]:
    """Every id the person's face rows may carry: the one asked, the current one, and
    ids retired into it by merges."""
    current = canonical_id(conn, customer_id) or customer_id
    aliases = conn.execute(
        select(customer_aliases.c.alias).where(customer_aliases.c.customer_id == current)
    ).scalars()
    return sorted({customer_id, current, *aliases})


def known_person(conn: Connection, customer_id: str) -> bool:
    """A customer storelens knows, or one with biometric consent rows of their own."""
    if canonical_id(conn, customer_id) is not None:
        return True
    found = conn.execute(
        select(face_consents.c.id).where(face_consents.c.customer_id == customer_id).limit(1)
    ).first()
    return found is not None


def record_consent(
    conn: Connection,
    customer_id: str,
    *,
    text_version: str,
    store_ids: Sequence[str] | None,
    recorded_by: str,
    at: datetime,
    approved_by: str | None = None,
    text_sha256: str | None = None,
) -> int:
    """A new biometric consent; an earlier active one is withdrawn (superseded) with its
    embeddings, so a person has one set of reference photos at a time.

    Without ``approved_by`` it waits for an admin (:mod:`storelens.recognition.approval`):
    replacing an approved member's photos must not let whoever recorded the new ones skip
    the approval. The replaced rows name the new one in ``replaced_by_consent``: their end was
    this enrollment, not the member's withdrawal."""
    in_force = face_consents.c.customer_id.in_(person_ids(conn, customer_id)) & (
        face_consents.c.withdrawn_at.is_(None)
    )
    replaced = list(conn.execute(select(face_consents.c.id).where(in_force)).scalars())
    withdraw(conn, customer_id, by=recorded_by, at=at)
    result = conn.execute(
        face_consents.insert().values(
            customer_id=customer_id,
            purpose=PURPOSE,
            text_version=text_version,
            text_sha256=text_sha256,
            store_ids=sorted(set(store_ids)) if store_ids is not None else None,
            granted_at=at,
            recorded_by=recorded_by,
            approved_at=at if approved_by is not None else None,
            approved_by=approved_by,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    if replaced:
        conn.execute(
            update(face_consents)
            .where(face_consents.c.id.in_(replaced))
            .values(replaced_by_consent=int(key[0]))
        )
    return int(key[0])


def add_embeddings(
    conn: Connection,
    consent_id: int,
    customer_id: str,
    vectors: Sequence[npt.NDArray[np.float32]],
    keyring: FaceKeyring,
    at: datetime,
) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in vectors]
    rows = []
    for row_id, vector in zip(ids, vectors, strict=True):
        sealed = keyring.seal(row_id, vector)
        rows.append(
            {
                "id": row_id,
                "consent_id": consent_id,
                "customer_id": customer_id,
                "key_id": sealed.key_id,
                "nonce": sealed.nonce,
                "ciphertext": sealed.ciphertext,
                "created_at": at,
            }
        )
    if rows:
        conn.execute(face_embeddings.insert(), rows)
    return ids


def _with_photos(conn: Connection, row: Any) -> dict[str, Any]:
    count = conn.execute(
        select(func.count()).where(face_embeddings.c.consent_id == row.id)
    ).scalar_one()
    return {**dict(row._mapping), "photos": int(count)}


def active_consent(conn: Connection, customer_id: str) -> dict[str, Any] | None:
    """The person's newest consent in force, under any of their ids, with its embedding
    count, or None. Older ones still in force (ids merged later, or two enrollments at
    once) are superseded by it everywhere: matching, approval and the pending list."""
    row = conn.execute(
        select(face_consents)
        .where(
            face_consents.c.customer_id.in_(person_ids(conn, customer_id)),
            face_consents.c.withdrawn_at.is_(None),
        )
        .order_by(face_consents.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _with_photos(conn, row)


def consent_by_id(conn: Connection, consent_id: int) -> dict[str, Any] | None:
    """One consent row with its embedding count, in force or not."""
    row = conn.execute(select(face_consents).where(face_consents.c.id == consent_id)).first()
    return None if row is None else _with_photos(conn, row)


def current_consents(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each person's newest consent in force, by their current customer id (ids resolved
    in one batch: one lookup per consent took 6 s for 10,000 members on PostgreSQL)."""
    rows = conn.execute(
        select(face_consents)
        .where(face_consents.c.withdrawn_at.is_(None))
        .order_by(face_consents.c.id)
    ).all()
    current = current_ids(conn, {str(r.customer_id) for r in rows})
    newest: dict[str, dict[str, Any]] = {}
    for r in rows:  # ascending ids: a later consent of the same person replaces an earlier
        newest[current.get(r.customer_id, r.customer_id)] = dict(r._mapping)
    return newest


def active_admins(conn: Connection) -> dict[str, datetime]:
    """Active admins by username, with when each account was made."""
    rows = conn.execute(
        select(users.c.username, users.c.created_at).where(
            users.c.role == "admin", users.c.active.is_(True)
        )
    ).all()
    return {str(r.username): r.created_at for r in rows}


def approval_holds(
    conn: Connection, consent: dict[str, Any], admins: dict[str, datetime] | None = None
) -> bool:
    """Whether the consent's approval counts now. An admin's own enrollment approves
    itself, so that approval lasts only while its account is an active admin, the same
    account (made before the approval: a new admin given a departed one's name does
    not revive it). Demoted or disabled, they would otherwise keep a face of their
    making standing for a customer and claim its notices as staff (a review).
    ``admins`` (:func:`active_admins`) saves the lookup when checking many."""
    if consent["approved_at"] is None:
        return False
    if consent["approved_by"] != consent["recorded_by"]:
        return True
    made = (admins if admins is not None else active_admins(conn)).get(consent["approved_by"])
    return made is not None and _utc(made) <= _utc(consent["approved_at"])


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def withdraw(conn: Connection, customer_id: str, *, by: str, at: datetime) -> int:
    """Withdraw every active consent of the person and delete their embeddings now.

    Returns how many embeddings were deleted. The consent rows stay, marked withdrawn,
    as the record of what was agreed and when it ended (erasure removes them too).
    """
    ids = person_ids(conn, customer_id)
    deleted = conn.execute(delete(face_embeddings).where(face_embeddings.c.customer_id.in_(ids)))
    conn.execute(
        update(face_consents)
        .where(face_consents.c.customer_id.in_(ids), face_consents.c.withdrawn_at.is_(None))
        .values(withdrawn_at=at, withdrawn_by=by)
    )
    return int(deleted.rowcount or 0)


def recognition_enabled(conn: Connection, store_id: str) -> bool:
    """The store's switch; off unless an admin turned it on."""
    value = conn.execute(
        select(store_recognition.c.enabled).where(store_recognition.c.store_id == store_id)
    ).scalar_one_or_none()
    return bool(value)


def set_recognition(
    conn: Connection, store_id: str, enabled: bool, *, by: str, at: datetime
) -> None:
    if conn.execute(select(stores.c.id).where(stores.c.id == store_id)).first() is None:
        raise NotFound(f"no store {store_id!r}")
    conn.execute(delete(store_recognition).where(store_recognition.c.store_id == store_id))
    conn.execute(
        store_recognition.insert().values(
            store_id=store_id, enabled=enabled, updated_at=at, updated_by=by
        )
    )


def _covers(store_ids: Any, store_id: str) -> bool:
    return store_ids is None or store_id in store_ids


def consent_active(conn: Connection, customer_id: str, store_id: str) -> bool:
    """Whether the member may be recognised in this store right now: the switch is on,
    a biometric consent covering the store is in force with its embeddings, and no
    ``recognition`` withdrawal (``consent.changed``, under any of the person's ids)
    came after that consent was given. A ``consent.changed`` grant alone allows
    nothing (docs/privacy.md), but a "no" said in the app must not be outlived by
    the form signed at the counter before it."""
    return recognition_enabled(conn, store_id) and consent_in_force(conn, customer_id, store_id)


def consent_in_force(conn: Connection, customer_id: str, store_id: str) -> bool:
    """:func:`consent_active` without the store's switch, for a caller that read the
    switch itself (to say which of the two refused). A consent waiting for an admin's
    approval is not in force for matching."""
    consent = active_consent(conn, customer_id)
    if (
        consent is None
        or consent["photos"] == 0
        or not _covers(consent["store_ids"], store_id)
        or not approval_holds(conn, consent)
    ):
        return False
    said = consent_state(conn, subject_ids(conn, customer_id))
    return not any(
        s.purpose == "recognition" and not s.granted and s.ts >= consent["granted_at"] for s in said
    )


def load_gallery(conn: Connection, store_id: str, keyring: FaceKeyring) -> Gallery:
    """Decrypted embeddings of the members this store may recognise, and nobody else's:
    each person's newest consent in force, if it covers the store and its approval
    holds (an enrollment waiting for approval is nobody's yet)."""
    if not recognition_enabled(conn, store_id):
        return Gallery.empty()
    admins = active_admins(conn)
    matched = {
        consent["id"]: person
        for person, consent in current_consents(conn).items()
        if _covers(consent["store_ids"], store_id) and approval_holds(conn, consent, admins)
    }
    rows = conn.execute(
        select(face_embeddings)
        .where(face_embeddings.c.consent_id.in_(list(matched)))
        .order_by(face_embeddings.c.customer_id, face_embeddings.c.created_at)
    ).all()
    vectors = [keyring.open_sealed(r.id, Sealed(r.key_id, r.nonce, r.ciphertext)) for r in rows]
    ids = [matched[r.consent_id] for r in rows]
    return Gallery(np.array(vectors, dtype=np.float32).reshape(len(ids), EMBEDDING_DIM), ids)


def _export(req: SubjectRequest) -> list[dict[str, Any]]:
    """Biometric consents (purpose, text version and the words of that text, who recorded
    it, when, withdrawal) and which embeddings exist (id, time, key id); the vectors
    themselves stay sealed."""
    ids = list(req.subject.ids)
    consents = req.conn.execute(
        select(face_consents).where(face_consents.c.customer_id.in_(ids))
    ).all()
    embeddings = req.conn.execute(
        select(
            face_embeddings.c.id,
            face_embeddings.c.consent_id,
            face_embeddings.c.customer_id,
            face_embeddings.c.created_at,
            face_embeddings.c.key_id,
        ).where(face_embeddings.c.customer_id.in_(ids))
    ).all()
    texts = {c.text_version: text_of(req.conn, c.text_version) for c in consents}
    return [
        {"consent": plain(c), "consent_text": _words(texts[c.text_version], c.text_sha256)}
        for c in consents
    ] + [{"embedding": plain(e)} for e in embeddings]


def _words(text: ConsentText | None, agreed: str | None) -> dict[str, Any] | None:
    """The words the member agreed to; None for a consent recorded before texts were
    published (storelens never held those words), even where a text was published
    later under the version it named (a review: those words were shown as theirs)."""
    if text is None or agreed is None or text.sha256 != agreed:
        return None
    return {"version": text.version, "body": text.body, "sha256": text.sha256,
            "published_at": text.published_at.isoformat()}  # fmt: skip


def _erase(req: SubjectRequest) -> int:
    ids = list(req.subject.ids)
    gone = req.conn.execute(delete(face_embeddings).where(face_embeddings.c.customer_id.in_(ids)))
    consents = req.conn.execute(delete(face_consents).where(face_consents.c.customer_id.in_(ids)))
    return int(gone.rowcount or 0) + int(consents.rowcount or 0)


def _relink(conn: Connection, named: frozenset[str]) -> int:
    """Resolution just linked or split the people ``named`` ids belong to: their
    approved enrollments in force wait for an admin again. An approval says these photos
    are this customer's; after a merge the same photos may stand for someone else (a
    review: a staff member's own approved face, merged into a customer's record by a
    changed e-mail, matched as that customer, and unmerging kept the alias). Returns how
    many approvals were cleared."""
    approved = face_consents.c.approved_at.is_not(None) & face_consents.c.withdrawn_at.is_(None)
    if conn.execute(select(face_consents.c.id).where(approved).limit(1)).first() is None:
        return 0  # nothing approved: a first resolution names every record
    ids = sorted(people_ids(conn, set(named)))
    one_of = dialect_for(conn).one_of
    cleared = 0
    for i in range(0, len(ids), _CHUNK):
        written = conn.execute(
            update(face_consents)
            .where(approved, one_of(face_consents.c.customer_id, ids[i : i + _CHUNK]))
            .values(approved_at=None, approved_by=None)
        )
        cleared += int(written.rowcount or 0)
    return cleared


register(
    PersonalStore(
        "faces",
        _export,
        _erase,
        relink=_relink,
        tables=("face_consents", "face_embeddings"),
        description=_export.__doc__ or "",
    )
)
