"""The Recognition page's data: the store's switch and the face enrollments waiting for
an admin, for the admin who approves them (docs/staff-app.md).

A staff member's enrollment matches no one until an admin approves that one enrollment;
a store manager does that here rather than at a command line. The page names the
customer (the admin has to know whom they approve) and who recorded the enrollment, so
every read is audited as the API's pending list is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Engine

from storelens import stores
from storelens.api.auth import Principal
from storelens.core.errors import NotFound
from storelens.privacy import audit
from storelens.recognition.approval import approve, read_pending, refuse
from storelens.recognition.store import consent_by_id, recognition_enabled

__all__ = [
    "Decision",
    "PendingEnrollment",
    "RecognitionView",
    "decide_from_page",
    "recognition_view",
]

PENDING_SHOWN = 500  # the API's page limit; a store with more has bigger problems


class PendingEnrollment(BaseModel):
    consent_id: int
    customer_id: str
    enrolled_as: str | None  # the id it was made under, where a merge changed it
    recorded_by: str
    granted_at: datetime
    photos: int
    stores: str  # "every store" or the ids it covers


class RecognitionView(BaseModel):
    store_id: str
    timezone: str  # the store's, for the enrollment times
    enabled: bool
    pending: list[PendingEnrollment]
    approved: PendingEnrollment | None
    """The enrollment just approved (after the redirect), to confirm whose it was."""
    refused: int | None = None
    """The enrollment just refused (after the redirect): its photos are gone."""


def _row(consent: dict[str, Any]) -> PendingEnrollment:
    covered = consent["store_ids"]
    return PendingEnrollment(
        consent_id=int(consent["id"]),
        customer_id=str(consent["customer_id"]),
        enrolled_as=(
            None
            if consent.get("enrolled_as") in (None, consent["customer_id"])
            else str(consent["enrolled_as"])
        ),
        recorded_by=str(consent["recorded_by"]),
        granted_at=consent["granted_at"],
        photos=int(consent["photos"]),
        stores="every store" if covered is None else ", ".join(covered),
    )


def recognition_view(
    engine: Engine,
    store_id: str,
    actor: audit.Actor,
    approved: int | None = None,
    refused: int | None = None,
) -> RecognitionView:
    """What waits for approval among the enrollments that cover this store."""
    with engine.begin() as conn:
        timezone = str(stores.get_store(conn, store_id)["timezone"])  # NotFound: unknown
        waiting = read_pending(conn, PENDING_SHOWN, actor, store_id=store_id, via="dashboard")
        enabled = recognition_enabled(conn, store_id)
        done = None
        if approved is not None:
            row = consent_by_id(conn, approved)
            done = None if row is None or row["approved_at"] is None else _row(row)
            if done is not None:  # the confirmation names a customer too
                audit.record(
                    conn, actor, "faces.read", "customer", done.customer_id, {"via": "dashboard"}
                )
    return RecognitionView(
        store_id=store_id,
        timezone=timezone,
        enabled=enabled,
        pending=[_row(c) for c in waiting],
        approved=done,
        refused=refused,
    )


Decision = Literal["approve", "refuse"]
"""What an admin's form on the page does to one enrollment."""


def decide_from_page(
    engine: Engine,
    store_id: str,
    consent_id: int,
    principal: Principal,
    now: datetime,
    decision: Decision,
) -> None:
    """Approve or refuse, as the signed-in admin, one of this store's enrollments; the
    errors are :func:`approve`'s or :func:`refuse`'s and :func:`_listed_here`'s."""
    act = approve if decision == "approve" else refuse
    with engine.begin() as conn:
        _listed_here(conn, store_id, consent_id)
        act(conn, consent_id, actor=principal.actor, at=now, via="dashboard")


def _listed_here(conn: Connection, store_id: str, consent_id: int) -> None:
    """The page lists the enrollments that cover its store, and its forms act on those
    only: a form posted from one store's page with another store's enrollment id acted
    on it (a review; admins may act anywhere, from that store's page)."""
    consent = consent_by_id(conn, consent_id)
    covered = None if consent is None else consent["store_ids"]
    if consent is None or (covered is not None and store_id not in covered):
        raise NotFound(f"no face enrollment {consent_id} among this store's")
