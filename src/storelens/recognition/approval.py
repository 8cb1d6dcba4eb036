"""The second person behind a face enrollment: an admin approves what staff recorded.

The consent box on the enrollment form is the enroller's to tick, so one staff member
alone could enroll their own face under a customer's id, walk past the entrance camera,
claim the notice and read that customer's history. A staff member's enrollment therefore
matches no one until an admin approves it.

An approval names one enrollment (its consent id), never a customer: a review showed an
approval addressed to a customer landing on a staff member's re-enrollment made between
the admin's look at the pending list and the click. So an approval is refused (409)
unless that enrollment is still the person's newest in force and has no approval that
holds, and it is written only if the row is unchanged since it was read. Whoever
recorded an enrollment cannot approve it (403). An admin who does not know the photos
to be the member's refuses the enrollment by its id the same way (:func:`refuse`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, update

from storelens.core.errors import Conflict, Forbidden, NotFound
from storelens.privacy import audit
from storelens.recognition.store import (
    active_admins,
    active_consent,
    approval_holds,
    consent_by_id,
    current_consents,
)
from storelens.storage.tables import face_consents, face_embeddings

__all__ = ["approve", "pending_approval", "read_pending", "refuse"]


def pending_approval(conn: Connection, limit: int) -> list[dict[str, Any]]:
    """Each person's newest enrollment in force whose approval does not hold, oldest
    first, with its photo count. A superseded enrollment is not listed: it cannot be
    approved."""
    admins = active_admins(conn)
    waiting = [
        (person, c)
        for person, c in current_consents(conn).items()
        if not approval_holds(conn, c, admins)
    ]
    waiting.sort(key=lambda pc: (pc[1]["granted_at"], pc[1]["id"]))
    found = []
    for person, c in waiting[:limit]:
        row = consent_by_id(conn, int(c["id"]))
        if row is not None:  # the person it would stand for now, and the id it was made under
            found.append({**row, "customer_id": person, "enrolled_as": row["customer_id"]})
    return found


def read_pending(
    conn: Connection,
    limit: int,
    reader: audit.Actor,
    *,
    store_id: str | None = None,
    via: str | None = None,
) -> list[dict[str, Any]]:
    """:func:`pending_approval` for a person to read (the API, the command line, the
    dashboard): only enrollments covering ``store_id`` when given, and the read audited
    with the customers it names."""
    rows = [
        c
        for c in pending_approval(conn, limit)
        if store_id is None or c["store_ids"] is None or store_id in c["store_ids"]
    ]
    detail: dict[str, Any] = {"listed": len(rows)}
    if store_id is not None:
        detail["store_id"] = store_id
    if via is not None:
        detail["via"] = via
    customers = [str(r["customer_id"]) for r in rows]
    audit.record(
        conn, reader, "faces.pending.read", "faces", "pending", detail, customers=customers
    )
    return rows


def approve(
    conn: Connection,
    consent_id: int,
    *,
    actor: audit.Actor,
    at: datetime,
    via: str | None = None,
) -> dict[str, Any]:
    """Approve enrollment ``consent_id`` as ``actor`` and audit it; returns the row.

    NotFound: no such enrollment. Conflict: it was withdrawn or replaced, a newer one of
    the same person is in force, or it is already approved. Forbidden: ``actor``
    recorded it. ``via`` names the way in (the dashboard) in the audit entry.
    """
    by = actor.name
    consent = consent_by_id(conn, consent_id)
    if consent is None:
        raise NotFound(f"no face enrollment {consent_id}")
    if consent["withdrawn_at"] is not None:
        raise Conflict(f"face enrollment {consent_id} was withdrawn or replaced")
    newest = active_consent(conn, consent["customer_id"])
    if newest is None or newest["id"] != consent_id:
        replaced_by = "another" if newest is None else f"enrollment {newest['id']}"
        raise Conflict(
            f"face enrollment {consent_id} is no longer the member's newest: {replaced_by}"
            " replaced it; review that one"
        )
    if approval_holds(conn, consent):
        raise Conflict(f"face enrollment {consent_id} is already approved")
    login = by.removeprefix("cli:") if actor.kind == "system" else by
    if consent["recorded_by"] in (by, login):  # a staff member at the server's shell too
        raise Forbidden("an enrollment you recorded needs another admin's approval")
    unchanged = (
        face_consents.c.approved_at.is_(None)
        if consent["approved_at"] is None
        else face_consents.c.approved_at == consent["approved_at"]
    )
    written = conn.execute(
        update(face_consents)
        .where(face_consents.c.id == consent_id, face_consents.c.withdrawn_at.is_(None), unchanged)
        .values(approved_at=at, approved_by=by)
    )
    if written.rowcount != 1:
        raise Conflict(f"face enrollment {consent_id} changed meanwhile: list pending again")
    _audit_decision(conn, actor, "faces.approve", consent, via)
    return {**consent, "approved_at": at, "approved_by": by}


def refuse(
    conn: Connection,
    consent_id: int,
    *,
    actor: audit.Actor,
    at: datetime,
    via: str | None = None,
) -> int:
    """Refuse enrollment ``consent_id``: its embeddings are deleted and the consent is
    marked withdrawn by ``actor``; audited. Returns how many embeddings were deleted.

    One enrollment, named by its id, as an approval is: refusing "the customer's" would
    end whatever enrollment was in force by the time of the click. NotFound: no such
    enrollment. Conflict: it was withdrawn or replaced already, or its approval holds
    (end that with a withdrawal, which the member asks for)."""
    consent = consent_by_id(conn, consent_id)
    if consent is None:
        raise NotFound(f"no face enrollment {consent_id}")
    if consent["withdrawn_at"] is not None:
        raise Conflict(f"face enrollment {consent_id} was withdrawn or replaced already")
    if approval_holds(conn, consent):
        raise Conflict(
            f"face enrollment {consent_id} is approved: to end it, withdraw the member's "
            "faces (DELETE /v1/customers/{id}/faces)"
        )
    marked = conn.execute(
        update(face_consents)
        .where(face_consents.c.id == consent_id, face_consents.c.withdrawn_at.is_(None))
        .values(withdrawn_at=at, withdrawn_by=actor.name)
    )
    if marked.rowcount != 1:
        raise Conflict(f"face enrollment {consent_id} changed meanwhile: list pending again")
    deleted = conn.execute(
        delete(face_embeddings).where(face_embeddings.c.consent_id == consent_id)
    )
    count = int(deleted.rowcount or 0)
    _audit_decision(conn, actor, "faces.refuse", consent, via, deleted=count)
    return count


def _audit_decision(
    conn: Connection,
    actor: audit.Actor,
    action: str,
    consent: dict[str, Any],
    via: str | None,
    **extra: int,
) -> None:
    """An approval's or a refusal's audit entry: the enrollment, who recorded it, and
    the way in (``via``: the dashboard) where there was one."""
    detail: dict[str, Any] = {"consent_id": consent["id"], "recorded_by": consent["recorded_by"]}
    detail |= extra
    if via is not None:
        detail["via"] = via
    audit.record(conn, actor, action, "customer", str(consent["customer_id"]), detail)
