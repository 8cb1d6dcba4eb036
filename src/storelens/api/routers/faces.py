"""Face enrollment under biometric consent, its withdrawal, and each store's switch.

Staff enroll a member at the counter with the member present (``POST``, multipart
photos and the consent form's fields); the member can withdraw at any time
(``DELETE``), which deletes their embeddings before the response is sent. A staff
member's enrollment matches no one until an admin approves that enrollment
(``POST /v1/faces/{consent_id}/approval``; ``GET /v1/faces/pending`` lists what
waits): the consent box is staff's to tick, so one person alone could otherwise make
their own face stand for a customer and read that customer's history from the notice.
Only an admin turns recognition on for a store. The routes never return or log a photo
or an embedding: the answers carry counts, times and the consent's terms only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Path, Query, Request, UploadFile, status
from pydantic import BaseModel
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from storelens.accounts import Role
from storelens.api.auth import Principal, allow
from storelens.api.deps import (
    MAX_ROW_ID,
    AdminOnly,
    EngineDep,
    Now,
    SettingsDep,
    hold_staff_to_rate,
    paced_for_staff,
)
from storelens.api.errors import error_responses
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.recognition import store as face_store
from storelens.recognition.approval import approve, read_pending
from storelens.recognition.enrollment import BiometricConsent, enroll, parse_store_ids

__all__ = ["router"]

router = APIRouter(tags=["recognition"], responses=error_responses(400, 403, 413, 422))
StaffOrAdmin = Annotated[Principal, allow(Role.admin, Role.staff)]
CustomerId = Annotated[str, Path(min_length=1, max_length=200)]
StoreId = Annotated[str, Path(min_length=1, max_length=64)]


class FaceEnrollment(BaseModel):
    """A member's biometric consent in force (never the photos or embeddings)."""

    customer_id: str
    consent_id: int
    purpose: str
    text_version: str
    stores: list[str] | None  # None: every store
    granted_at: datetime
    recorded_by: str
    photos: int
    approved_at: datetime | None  # None: waiting for an admin; matches no one until then
    approved_by: str | None
    enrolled_as: str | None = None
    """In the pending list: the id it was enrolled under, where a merge has since made
    ``customer_id`` (the person it would stand for now) another."""


class PendingEnrollments(BaseModel):
    """Enrollments waiting for an admin's approval, oldest first."""

    items: list[FaceEnrollment]


class FaceWithdrawal(BaseModel):
    customer_id: str
    embeddings_deleted: int
    withdrawn_at: datetime


class StoreRecognition(BaseModel):
    enabled: bool


class StoreRecognitionPublic(StoreRecognition):
    store_id: str
    updated_at: datetime
    updated_by: str


def _refuse_nul(**fields: str | None) -> None:
    """The NUL guard lets photo uploads through (image bytes hold NULs): text fields are
    checked here, as PostgreSQL text cannot store U+0000."""
    bad = [name for name, value in fields.items() if value is not None and "\x00" in value]
    if bad:
        raise InvalidInput(
            "text fields must not contain NUL",
            [
                FieldError.at(("body", n), "must not contain a NUL character", "string_nul")
                for n in bad
            ],
        )


def _public(row: dict[str, object]) -> FaceEnrollment:
    moved = row.get("enrolled_as") not in (None, row["customer_id"])
    return FaceEnrollment.model_validate(
        {
            **row,
            "consent_id": row["id"],
            "stores": row["store_ids"],
            "enrolled_as": row["enrolled_as"] if moved else None,
        }
    )


@router.post(
    "/v1/customers/{customer_id}/faces",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(403, 404, 413, 422, 429),
)
async def enroll_faces(
    request: Request,
    customer_id: CustomerId,
    principal: StaffOrAdmin,
    engine: EngineDep,
    settings: SettingsDep,
    now: Now,
    photos: Annotated[list[UploadFile], File(description="1 to 5 photos, one face each")],
    consent: Annotated[bool, Form(description="the member agreed to recognition, in person")],
    consent_text_version: Annotated[
        str, Form(min_length=1, max_length=40, description="version of the text they read")
    ],
    stores: Annotated[
        str | None, Form(max_length=2000, description="comma-separated store ids; empty: all")
    ] = None,
) -> FaceEnrollment:
    """Enroll 1 to 5 photos under a new biometric consent (replacing an earlier one).

    Refused with nothing stored: no consent, a photo with no face or several, a face
    too small, blurred or turned away. The photos are discarded once embedded. An
    admin's enrollment is approved at once; a staff member's has ``approved_at`` null
    and matches no one until an admin approves it.

    A staff login's answer names the member by the id it was sent, never the customer id
    it was stored under: enrolling under a card number told staff whose card it was (a
    review). An id that is no customer is 404 before any photo is read: no face is processed
    without a person to consent. That tells a staff login which ids are customers (a
    review: a junk "photo" was a free, unaudited probe), so a staff login's enrollments
    count against its rate of writes about customers (:func:`hold_staff_to_rate`) and
    a miss is audited (``faces.enroll.not_found``)."""
    hold_staff_to_rate(request, principal)
    _refuse_nul(consent_text_version=consent_text_version, stores=stores)
    terms = BiometricConsent(consent, consent_text_version, parse_store_ids(stores))
    data = [await p.read() for p in photos]
    for p in photos:
        await p.close()
    try:
        done = await run_in_threadpool(
            enroll, engine, settings, customer_id, terms, data, recorded_by=principal.actor, now=now
        )
    except NotFound:
        await run_in_threadpool(_audit_enroll_miss, engine, principal, customer_id)
        raise
    del data
    with engine.connect() as conn:  # this enrollment, even if another came meanwhile
        row = face_store.consent_by_id(conn, done.consent_id)
    if row is None:  # erased between the two transactions
        raise NotFound(f"customer {customer_id!r}'s enrollment is gone")
    done_row = _public(row)
    if principal.role is Role.staff:  # the id as sent: a card number must not name its owner
        return done_row.model_copy(update={"customer_id": customer_id, "enrolled_as": None})
    return done_row


def _audit_enroll_miss(engine: Engine, principal: Principal, customer_id: str) -> None:
    with engine.begin() as conn:
        audit.record(conn, principal.actor, "faces.enroll.not_found", "customer", customer_id, {})


@router.get("/v1/customers/{customer_id}/faces", responses=error_responses(403, 404, 422))
def face_enrollment(
    customer_id: CustomerId, principal: AdminOnly, engine: EngineDep
) -> FaceEnrollment:
    """The member's biometric consent in force and how many photos it holds (admins;
    audited).

    Staff get 403 whatever the id. By id, this told a staff login who is enrolled for
    recognition, on what terms, and (from a card number or a retired id) the customer id
    behind it (reviews); staff enroll with the member present and see that enrollment in
    the answer to the enrollment itself, and the staff app never reads it back."""
    with engine.begin() as conn:
        row = face_store.active_consent(conn, customer_id)
        audit.record(
            conn, principal.actor, "faces.read", "customer", customer_id, {"found": row is not None}
        )
    if row is None:
        raise NotFound(f"customer {customer_id!r} has no biometric consent in force")
    return _public(row)


@router.post("/v1/faces/{consent_id}/approval", responses=error_responses(403, 404, 409, 422))
def approve_faces(
    consent_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    principal: AdminOnly,
    engine: EngineDep,
    now: Now,
) -> FaceEnrollment:
    """Approve one enrollment (its ``consent_id`` from the pending list) so the entrance
    may recognise the member (admins only).

    Approve only when you know the photos are the member's (you saw them enrolled, or
    asked them): this is the check that the person who ticked the consent box cannot
    make alone. 409 when the enrollment was withdrawn or replaced, a newer one of the
    member is in force, or it is already approved; 403 for one you recorded yourself."""
    with engine.begin() as conn:
        row = approve(conn, consent_id, actor=principal.actor, at=now)
    return _public(row)


@router.get("/v1/faces/pending", responses=error_responses(403, 422))
def pending_enrollments(
    principal: AdminOnly,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> PendingEnrollments:
    """Enrollments waiting for approval, oldest first, with who recorded each (audited)."""
    with engine.begin() as conn:
        rows = read_pending(conn, limit, principal.actor)
    return PendingEnrollments(items=[_public(r) for r in rows])


@router.delete("/v1/customers/{customer_id}/faces", responses=error_responses(403, 404, 422, 429))
def withdraw_faces(
    request: Request,
    customer_id: CustomerId,
    principal: StaffOrAdmin,
    engine: EngineDep,
    now: Now,
) -> FaceWithdrawal:
    """Withdraw biometric consent: embeddings are deleted now and matching stops now.

    For an id that is no customer a staff login gets what a customer with nothing
    enrolled gets (nothing is written; the miss is audited): staff may not learn whether
    an id exists (docs/staff-app.md), and a 404 told them (a review). Admins get the 404.
    A known id takes longer, so staff are held to a rate and a floor on the answer's
    time (:func:`paced_for_staff`)."""
    with paced_for_staff(request, principal), engine.begin() as conn:
        if not face_store.known_person(conn, customer_id):
            if principal.role is not Role.staff:
                raise NotFound(f"no customer {customer_id!r}")
            audit.record(
                conn, principal.actor, "faces.withdraw.not_found", "customer", customer_id, {}
            )
            return FaceWithdrawal(customer_id=customer_id, embeddings_deleted=0, withdrawn_at=now)
        deleted = face_store.withdraw(conn, customer_id, by=principal.name, at=now)
        audit.record(
            conn, principal.actor, "faces.withdraw", "customer", customer_id, {"deleted": deleted}
        )
    return FaceWithdrawal(customer_id=customer_id, embeddings_deleted=deleted, withdrawn_at=now)


@router.put("/v1/stores/{store_id}/recognition", responses=error_responses(403, 404, 422))
def set_store_recognition(
    store_id: StoreId, body: StoreRecognition, principal: AdminOnly, engine: EngineDep, now: Now
) -> StoreRecognitionPublic:
    """Turn returning-customer recognition on or off for one store (off by default)."""
    with engine.begin() as conn:
        face_store.set_recognition(conn, store_id, body.enabled, by=principal.name, at=now)
        audit.record(
            conn, principal.actor, "store.recognition", "store", store_id, {"enabled": body.enabled}
        )
    return StoreRecognitionPublic(
        store_id=store_id, enabled=body.enabled, updated_at=now, updated_by=principal.name
    )
