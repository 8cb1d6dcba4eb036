"""Staff notices: raise one for a member in a store, claim it first, serve, record the outcome.

Every claim, release and outcome is a conditional update in ``staff.notices``; this
router only checks who is calling and turns the desk's errors into statuses (404
unknown notice, 409 lost race / expired / closed, 403 not the claimer or not on
shift). Only devices and admins raise notices, and no answer carries a customer id
(``docs/staff-app.md``). The live list is a WebSocket per store that only staff on shift there hear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, HTTPException, Path, Request, Response, WebSocket, status

from storelens.accounts import Role
from storelens.api.auth import Principal, allow
from storelens.api.claimer_sources import StoredSegments
from storelens.api.deps import EngineDep, Now, SettingsDep
from storelens.api.errors import error_responses
from storelens.api.live_socket import admit, relay
from storelens.api.notice_schemas import (
    ClaimerView,
    NoticeCreate,
    NoticeDecline,
    NoticeOutcome,
    NoticePublic,
)
from storelens.api.ratelimit import RateLimiter
from storelens.api.recommend_schemas import DeclineIn
from storelens.api.websocket_auth import (
    clock_of,
)
from storelens.core.errors import Forbidden, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.recommend import evidence
from storelens.staff.claimer_view import claimer_view
from storelens.staff.notices import Notice, NoticeDesk
from storelens.staff.suggestions import PurchaseHistorySuggester

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["staff notices"], responses=error_responses(403, 404, 422))

# Arrivals are announced by integrations (loyalty scan, app check-in, the entrance
# camera: device keys) and by admins, never by staff: a staff login that could raise
# a notice for any id could then claim it and read that customer's profile.
Raiser = Annotated[Principal, allow(Role.device, Role.admin)]
StaffOnly = Annotated[Principal, allow(Role.staff)]
NoticeId = Annotated[str, Path(min_length=1, max_length=36)]
CLAIM_ERRORS = error_responses(400, 403, 404, 409, 413, 422)


_WARNED: dict[str, float] = {}  # device key -> when its throttling was last logged


def _throttled(principal: Principal) -> NoReturn:
    """429 for a key over its refusals; logged once a minute per key (never the ids)."""
    now = time.monotonic()
    if now - _WARNED.get(principal.name, -120.0) >= 60:
        _WARNED[principal.name] = now
        log.warning(
            "device key %s had too many notices refused this hour (unknown customers or "
            "members recognition may not announce): its notices are refused for now; if "
            "that is not a misconfigured till, revoke the key",
            principal.name,
        )
    raise HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS,
        detail="this key had too many notices refused in the last hour; try again later",
        headers={"Retry-After": "3600"},  # at most: the hour opened at the first refusal
    )


def desk_of(request: Request | WebSocket) -> NoticeDesk:
    desk: NoticeDesk = request.app.state.notice_desk
    return desk


def _public(notice: Notice, *, created: bool = True) -> NoticePublic:
    return NoticePublic.model_validate({**_fields(notice), "created": created})


def _fields(notice: Notice) -> dict[str, object]:
    return {f: getattr(notice, f) for f in Notice.__slots__}


_ALREADY = {"model": NoticePublic, "description": "The member's notice that already waits"}


@router.post(
    "/notices",
    status_code=status.HTTP_201_CREATED,
    response_model=NoticePublic,
    responses={**CLAIM_ERRORS, **error_responses(429), 200: _ALREADY},
)
def raise_notice(
    body: NoticeCreate, principal: Raiser, request: Request, response: Response, now: Now
) -> NoticePublic:
    """Announce a member in a store to its on-shift staff (201). A member who already
    has an open or claimed notice there gets that one back (200, ``created`` false).

    A device key whose notices were refused ``STORELENS_NOTICE_REFUSALS_PER_HOUR``
    times within an hour gets 429 for every notice, known member or not, until the hour
    is up: each refusal says whether an id is a customer (or enrolled), and a stolen key
    could otherwise test ids without end. The attempt is counted before the lookup and
    given back when it was not refused, so parallel probes cannot all slip under it; a
    429 is not counted, so a burst of members' notices cannot lock an honest key out.

    A ``recognition`` notice is checked here, on the server, at the moment it would be
    stored: the store's switch and the member's biometric consent (the desk's gate,
    ``api.arrival_notices.recognition_gate``). The edge box's queued post is retried
    for up to 20 s and a device key could label any arrival "recognition", so what the
    box believed when it matched decides nothing. A refusal is a 422 with a field
    error, like an unknown customer: a 4xx the box does not retry, saying no more than
    that recognition may not announce this member here; nothing is stored or
    broadcast, and the refusal is audited (``notice.refused``)."""
    if principal.store_scope is not None and principal.store_scope != body.store_id:
        raise Forbidden("this key may only raise notices for its own store")
    refusals: RateLimiter | None = (
        request.app.state.notice_refusals if principal.role == Role.device else None
    )
    if refusals is not None and not refusals.take(principal.name):
        _throttled(principal)
    try:
        notice, created = desk_of(request).raise_notice(
            body.store_id, body.customer_id, body.trigger, actor=principal.actor, now=now
        )
    except InvalidInput:
        raise  # stays counted: it told the key something about the id
    except BaseException:
        if refusals is not None:
            refusals.refund(principal.name)
        raise
    if refusals is not None:
        refusals.refund(principal.name)  # only refusals count
    if not created:
        response.status_code = status.HTTP_200_OK
    return _public(notice, created=created)


@router.post("/notices/{notice_id}/claim", response_model=NoticePublic, responses=CLAIM_ERRORS)
def claim(notice_id: NoticeId, principal: StaffOnly, request: Request, now: Now) -> NoticePublic:
    """First claimer wins (200); everyone after gets 409, as does a claim on an expired
    or closed notice. The notice is withdrawn from every other device at once."""
    desk = desk_of(request)
    return _public(desk.claim(notice_id, principal.name, principal.actor, now))


@router.post("/notices/{notice_id}/release", response_model=NoticePublic, responses=CLAIM_ERRORS)
def release(notice_id: NoticeId, principal: StaffOnly, request: Request, now: Now) -> NoticePublic:
    """The claimer hands the customer back: the notice is open again for everyone."""
    desk = desk_of(request)
    return _public(desk.release(notice_id, principal.name, principal.actor, now))


@router.post("/notices/{notice_id}/outcome", response_model=NoticePublic, responses=CLAIM_ERRORS)
def outcome(
    notice_id: NoticeId, body: NoticeOutcome, principal: StaffOnly, request: Request, now: Now
) -> NoticePublic:
    """The claimer records what happened (served, purchase, declined); the claim closes."""
    desk = desk_of(request)
    return _public(
        desk.record_outcome(notice_id, principal.name, body.outcome, principal.actor, now)
    )


@router.get("/notices/{notice_id}/customer", response_model=ClaimerView, responses=CLAIM_ERRORS)
def customer_view(
    notice_id: NoticeId,
    principal: StaffOnly,
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    now: Now,
) -> ClaimerView:
    """The customer as the claimer sees them: greeting name, last visits, purchases,
    segment, suggestions with reasons. Only the claimer, only while the claim is
    open; every read is audited (in the same transaction as the read)."""
    notice = desk_of(request).held_claim(notice_id, principal.name, now)
    suggester = getattr(request.app.state, "suggester", None) or PurchaseHistorySuggester()
    with engine.begin() as conn:
        view = claimer_view(
            conn,
            notice,
            suggester=suggester,
            segments=StoredSegments(),
            suggestions=settings.notice_suggestions,
            actor=principal.actor.name,
        )
        audit.record(
            conn,
            principal.actor,
            "notice.customer_view",
            "customer",
            notice.customer_id,
            {"notice_id": notice.id},
        )
    return ClaimerView.model_validate(view)


@router.post(
    "/notices/{notice_id}/declined-items", response_model=NoticeDecline, responses=CLAIM_ERRORS
)
def decline_for_notice(
    notice_id: NoticeId,
    body: DeclineIn,
    principal: StaffOnly,
    request: Request,
    engine: EngineDep,
    now: Now,
) -> NoticeDecline:
    """The customer in front of the claimer said no to a suggestion: it is not
    suggested to them again. Only the claimer, while the claim is open; audited.

    Staff decline this way, never by customer id: a staff login that could decline by
    id saw the claimer view stop suggesting the item only when the id was the
    customer's, and so learned the id the view keeps from them (a review)."""
    notice = desk_of(request).held_claim(notice_id, principal.name, now)
    with engine.begin() as conn:
        known = evidence.record_decline(
            conn, principal.actor, notice.customer_id, body.product_id, now,
            {"notice_id": notice.id},
        )  # fmt: skip
    if not known:  # erased since the notice was raised
        raise NotFound(f"notice {notice.id!r}: the customer is no longer known")
    request.app.state.recommendations.note_decline(notice.customer_id, body.product_id)
    return NoticeDecline(notice_id=notice.id, product_id=body.product_id)


@router.websocket("/stores/{store_id}/notices/ws")
async def live_notices(
    websocket: WebSocket, store_id: str, ticket: str | None = None, token: str | None = None
) -> None:
    """Live notices for one store, for staff: first the open ones (if on shift) and
    your own claims, then ``notice`` and ``notice_withdrawn`` messages as they happen.
    Credentials as for ``/alerts/ws`` (a ``?ticket=`` from ``POST /v1/ws-ticket`` in
    browsers); the socket closes with 4401 when the credential expires."""
    principal = await admit(websocket, store_id, (Role.staff,), ticket=ticket, token=token)
    if principal is None:
        return
    hub = websocket.app.state.notice_hub
    clock = clock_of(websocket)
    await websocket.accept()
    queue = hub.subscribe(store_id, principal.name)  # before the snapshot: nothing missed
    try:
        current = await asyncio.to_thread(
            desk_of(websocket).visible_to, store_id, principal.name, clock.now()
        )
        hello = {"type": "hello", "store_id": store_id, "you": principal.name}
        opening: list[dict[str, Any]] = [hello]
        opening += [{"type": "notice", "store_id": store_id, "notice": n.card()} for n in current]
        await relay(websocket, principal, queue, opening=opening)
    finally:
        hub.unsubscribe(store_id, queue)
