"""Face enrollment under biometric consent, its withdrawal, and each store's switch.

Staff enroll the member in front of them through the notice they claimed (``POST
/v1/notices/{id}/faces``, multipart photos and the consent form's fields; the member
scanned their card or checked in, so the notice is theirs); the member can withdraw at
any time (``DELETE`` on the same path), which deletes their embeddings before the
response is sent. Admins do both by customer id. Staff never act by id: each by-id
route told a staff login something about ids it guessed (reviews). A staff member's
enrollment matches no one until an admin approves that enrollment
(``POST /v1/faces/{consent_id}/approval``; ``GET /v1/faces/pending`` lists what
waits): the consent box is staff's to tick, so one person alone could otherwise make
their own face stand for a customer and read that customer's history from the notice.
Only an admin turns recognition on for a store. The routes never return or log a photo
or an embedding: the answers carry counts, times and the consent's terms only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, UploadFile, status
from pydantic import BaseModel
from sqlalchemy import Connection, Engine
from starlette.concurrency import run_in_threadpool

from storelens.api.auth import Principal
from storelens.api.deps import (
    MAX_ROW_ID,
    AdminOnly,
    EngineDep,
    Now,
    SettingsDep,
)
from storelens.api.errors import error_responses
from storelens.api.notice_schemas import NoticeFaceEnrollment, NoticeFaceWithdrawal
from storelens.api.routers.notices import NoticeId, StaffOnly, desk_of
from storelens.config import Settings
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.recognition import store as face_store
from storelens.recognition.approval import approve, read_pending
from storelens.recognition.enrollment import BiometricConsent, enroll, parse_store_ids

__all__ = ["router"]

router = APIRouter(tags=["recognition"], responses=error_responses(400, 403, 413, 422))
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


class EnrollmentForm:
    """The enrollment form both enrollment routes take: photos and the consent's terms."""

    def __init__(
        self,
        photos: Annotated[list[UploadFile], File(description="1 to 5 photos, one face each")],
        consent: Annotated[bool, Form(description="the member agreed to recognition, in person")],
        consent_text_version: Annotated[
            str, Form(min_length=1, max_length=40, description="version of the text they read")
        ],
        stores: Annotated[
            str | None, Form(max_length=2000, description="comma-separated store ids; empty: all")
        ] = None,
    ) -> None:
        self.photos, self.consent = photos, consent
        self.consent_text_version, self.stores = consent_text_version, stores


EnrollmentFields = Annotated[EnrollmentForm, Depends()]


async def _enroll(
    engine: Engine,
    settings: Settings,
    customer_id: str,
    form: EnrollmentForm,
    principal: Principal,
    now: datetime,
    still_allowed: Callable[[Connection], object] | None = None,
    detail: dict[str, str] | None = None,
) -> dict[str, object]:
    """Both enrollment routes: check the form, embed, store; the stored consent row."""
    _refuse_nul(consent_text_version=form.consent_text_version, stores=form.stores)
    terms = BiometricConsent(form.consent, form.consent_text_version, parse_store_ids(form.stores))
    data = [await p.read() for p in form.photos]
    for p in form.photos:
        await p.close()
    done = await run_in_threadpool(
        functools.partial(
            enroll, engine, settings, customer_id, terms, data,
            recorded_by=principal.actor, now=now, still_allowed=still_allowed, detail=detail,
        )
    )  # fmt: skip
    del data
    with engine.connect() as conn:  # this enrollment, even if another came meanwhile
        row = face_store.consent_by_id(conn, done.consent_id)
    if row is None:  # erased between the two transactions
        raise NotFound("the enrollment is gone: the customer was erased meanwhile")
    return row


@router.post(
    "/v1/customers/{customer_id}/faces",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(403, 404, 413, 422),
)
async def enroll_faces(
    customer_id: CustomerId,
    principal: AdminOnly,
    engine: EngineDep,
    settings: SettingsDep,
    now: Now,
    form: EnrollmentFields,
) -> FaceEnrollment:
    """Enroll 1 to 5 photos under a new biometric consent (replacing an earlier one),
    approved at once (admins; staff enroll through the notice they claimed).

    Refused with nothing stored: no consent, a photo with no face or several, a face
    too small, blurred or turned away; an id that is no customer is 404 before any
    photo is read (no face is processed without a person to consent). The photos are
    discarded once embedded."""
    return _public(await _enroll(engine, settings, customer_id, form, principal, now))


@router.post(
    "/v1/notices/{notice_id}/faces",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(403, 404, 409, 413, 422),
)
async def enroll_faces_for_notice(
    request: Request,
    notice_id: NoticeId,
    principal: StaffOnly,
    engine: EngineDep,
    settings: SettingsDep,
    now: Now,
    form: EnrollmentFields,
) -> NoticeFaceEnrollment:
    """Enroll the member in front of the claimer: only the claimer of the notice, on
    shift, while the claim is open. The enrollment matches no one until an admin
    approves it, and the answer names the notice, never the customer.

    Staff enroll and withdraw this way, never by customer id: by id, an enrollment's
    404 for a stranger (before any photo is read), a withdrawal's timing and the read's
    answer each told a staff login which ids are customers and who is enrolled, and a
    withdrawal or re-enrollment by id could end any member's recognition (reviews)."""
    desk = desk_of(request)
    notice = desk.held_claim(notice_id, principal.name, now)  # before any photo is read
    try:
        row = await _enroll(
            engine, settings, notice.customer_id, form, principal, now,
            still_allowed=lambda conn: desk.claim_in(conn, notice_id, principal.name, now),
            detail={"notice_id": notice.id},
        )  # fmt: skip
    except NotFound:  # erased meanwhile: the message named the id, which staff never see
        raise NotFound(f"notice {notice.id!r}: the customer is no longer known") from None
    return NoticeFaceEnrollment.model_validate(
        {**row, "notice_id": notice.id, "consent_id": row["id"], "stores": row["store_ids"]}
    )


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


@router.delete("/v1/customers/{customer_id}/faces", responses=error_responses(403, 404, 422))
def withdraw_faces(
    customer_id: CustomerId, principal: AdminOnly, engine: EngineDep, now: Now
) -> FaceWithdrawal:
    """Withdraw biometric consent: embeddings are deleted now and matching stops now
    (admins; staff withdraw through the notice they claimed). 404 for an id that is no
    customer."""
    with engine.begin() as conn:
        if not face_store.known_person(conn, customer_id):
            raise NotFound(f"no customer {customer_id!r}")
        deleted = _withdraw(conn, principal, customer_id, now, {})
    return FaceWithdrawal(customer_id=customer_id, embeddings_deleted=deleted, withdrawn_at=now)


@router.delete("/v1/notices/{notice_id}/faces", responses=error_responses(403, 404, 409, 422))
def withdraw_faces_for_notice(
    request: Request, notice_id: NoticeId, principal: StaffOnly, engine: EngineDep, now: Now
) -> NoticeFaceWithdrawal:
    """The member in front of the claimer withdraws biometric consent: their embeddings
    are deleted now. Only the claimer, on shift, while the claim is open; audited with
    the notice. A member with nothing enrolled gets ``embeddings_deleted: 0``. Unlike the
    claimer view, it still works for a member recognised at the door who has said no
    since (or whose store switched recognition off): they are taking something back."""
    desk = desk_of(request)
    with engine.begin() as conn:
        notice = desk.claim_in(conn, notice_id, principal.name, now, withdrawing=True)
        deleted = _withdraw(conn, principal, notice.customer_id, now, {"notice_id": notice.id})
    return NoticeFaceWithdrawal(notice_id=notice.id, embeddings_deleted=deleted, withdrawn_at=now)


def _withdraw(
    conn: Connection, principal: Principal, customer_id: str, now: datetime, detail: dict[str, Any]
) -> int:
    deleted = face_store.withdraw(conn, customer_id, by=principal.name, at=now)
    audit.record(
        conn, principal.actor, "faces.withdraw", "customer", customer_id,
        {"deleted": deleted, **detail},
    )  # fmt: skip
    return deleted


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
