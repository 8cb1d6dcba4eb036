"""Recommendations: a customer's list for a store and context, the batch, declines, stock.

Every list served is logged as an impression (customer, store, who asked, the items
with their ranks and confidences), the record an access request and a campaign read
back.

The single-customer route is the hot one: it writes its JSON with orjson from the
engine's answer instead of building and re-validating a pydantic model per item
(the response model still documents it, and a test holds the two to the same JSON),
and it is async: a warm answer is computed on the event loop (the customer's entry from
memory, or from Redis with an awaited read); only one that must fill a cache or build
an entry from the database goes to the threadpool.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from storelens.accounts import Role
from storelens.api.auth import Principal, allow, settings_of
from storelens.api.deps import (
    AnalystOrAdmin,
    EngineDep,
    KnownStore,
    Now,
    SettingsDep,
)
from storelens.api.errors import error_responses
from storelens.api.recommend_schemas import (
    DeclineIn,
    DeclinePublic,
    PersonalizeBatch,
    RecommendationPublic,
    RecommendationsPublic,
    StockIn,
    StockSaved,
)
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.core.kept_by_identity import KeptByIdentity
from storelens.privacy import audit
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CandidatesUnavailable, RedisCandidates
from storelens.recommend.context import Context, parse_context
from storelens.recommend.engine import Answer, Recommendation, RecommendationEngine

__all__ = ["PATH", "READERS", "answer_json", "router"]

router = APIRouter(tags=["recommendations"], responses=error_responses(400, 403, 422))
CustomerId = Annotated[str, Path(min_length=1, max_length=128)]
PATH = "/v1/customers/{customer_id}/recommendations"
"""The hot route's path, which the lane in front of it (api/recommendations_lane) matches."""
READERS = (Role.admin, Role.analyst)
"""Who may read a customer's list: its evidence is their purchase history, which staff
see only for a notice they claimed. Also the hot lane's gate (api/recommendations_lane)."""
Readers = Annotated[Principal, allow(*READERS)]


def _engine_of(request: Request) -> RecommendationEngine:
    engine: RecommendationEngine = request.app.state.recommendations
    return engine


def _check_k(k: int, limit: int, loc: tuple[str | int, ...]) -> None:
    if k > limit:
        raise InvalidInput(
            f"k must be at most {limit}",
            [FieldError.at(list(loc), f"must be at most {limit}", "less_than_equal")],
        )


def _public(answer: Answer) -> RecommendationsPublic:
    return RecommendationsPublic(
        customer_id=answer.customer_id,
        store_id=answer.store_id,
        personalized=answer.personalized,
        reason=answer.reason,
        context=answer.context,
        degraded=answer.degraded,
        data=[
            RecommendationPublic(
                product_id=r.product_id,
                name=r.name,
                score=round(r.score, 6),
                confidence=round(r.confidence, 6),
                explanation=r.explanation,
                source=r.source,
                evidence=r.evidence,
            )
            for r in answer.items
        ],
        count=len(answer.items),
    )


@lru_cache(maxsize=4096)
def _context_json(ctx: Context) -> orjson.Fragment:
    """The context's JSON text, kept per (frozen, shared) resolved context: a pydantic
    dump on every request for a value that changes once an hour."""
    return orjson.Fragment(orjson.dumps(ctx.model_dump(mode="json")))


def _item_json(r: Recommendation) -> dict[str, Any]:
    return {
        "product_id": r.product_id,
        "name": r.name,
        "score": round(r.score, 6),
        "confidence": round(r.confidence, 6),
        "explanation": r.explanation,
        "source": r.source,
        "evidence": r.evidence,
    }


# The store's popular items shown at the store's own score are shared objects
# (``Recommendation.shared``), the same in every answer until the popularity snapshot
# changes, and half of a typical list: their JSON text is kept by identity
# (``core.kept_by_identity``) and copied into the answer as it is (an
# ``orjson.Fragment``: a tenth of the time re-encoding the item took). Every other
# item, a popular one at a customer's blend score included, is new per answer and
# never kept here, so this holds nothing about a customer. The text is a snapshot: a
# shared item and its evidence never change once built (a new popularity snapshot
# builds new items).
_SHARED_DOCS: KeptByIdentity[Recommendation, orjson.Fragment] = KeptByIdentity(4096)


def _shared_item_json(r: Recommendation) -> orjson.Fragment:
    held = _SHARED_DOCS.get(r)
    if held is not None:
        return held
    return _SHARED_DOCS.keep(r, orjson.Fragment(orjson.dumps(_item_json(r))))


def answer_json(answer: Answer) -> bytes:
    """The same JSON as ``_public(answer)`` would give, without the models."""
    return orjson.dumps(
        {
            "customer_id": answer.customer_id,
            "store_id": answer.store_id,
            "personalized": answer.personalized,
            "reason": answer.reason,
            "context": _context_json(answer.context),
            "degraded": answer.degraded,
            "data": [_shared_item_json(r) if r.shared else _item_json(r) for r in answer.items],
            "count": len(answer.items),
        }
    )


@router.get(
    PATH,
    response_model=RecommendationsPublic,
    responses=error_responses(403, 404, 422),
)
async def customer_recommendations(
    request: Request,
    customer_id: CustomerId,
    principal: Readers,
    store: Annotated[str, Query(min_length=1, max_length=64, description="store id")],
    k: Annotated[int, Query(ge=1, le=500, description="how many items")] = 10,
    context: Annotated[
        str | None,
        Query(
            max_length=500,
            description="key:value pairs, e.g. daypart:morning,zone:bakery,channel:app",
        ),
    ] = None,
) -> Response:
    """The customer's next-basket suggestions in this store, re-ranked for the context.

    Without personalization consent, or for a customer with no purchases, the list is
    the store's popular items and ``personalized`` is false.

    Analysts and admins only (the shop's service account is an analyst): the evidence
    is the customer's purchase history, which staff see only through a notice they
    claimed (``/v1/notices/{id}/customer``: on shift, audited). Staff could read any
    card number's history here (a security review)."""
    # Settings read directly: one dependency fewer to resolve on the hottest route.
    _check_k(k, settings_of(request).recommend_max_k, ("query", "k"))
    ctx = parse_context(context)
    engine, actor = _engine_of(request), principal.actor.name
    shared = engine.candidates
    if isinstance(shared, RedisCandidates):  # awaited: no thread held for the round trip
        try:
            entry = await shared.aget(customer_id)
        except CandidatesUnavailable:
            # Not "down" yet: the await's timeout also counts time the loop spent on
            # other requests. The thread asks again with its own timeout and answers
            # from the database (degraded) only if Redis fails there too.
            entry = None
        answer = (
            None if entry is None else engine.answer_warm(customer_id, store, k, ctx, actor, entry)
        )
    else:
        answer = engine.answer_warm(customer_id, store, k, ctx, actor)
    if answer is None:  # a cache to fill, an entry to build: blocking work, off the loop
        answer = await run_in_threadpool(engine.answer, customer_id, store, k, ctx, actor)
    return Response(answer_json(answer), media_type="application/json")


@router.post("/v1/personalize", responses=error_responses(403, 404, 413, 422))
def personalize(
    request: Request,
    body: PersonalizeBatch,
    principal: Readers,
    settings: SettingsDep,
    db: EngineDep,
) -> list[RecommendationsPublic]:
    """A batch of customer + store + context; answers in request order.

    Audited, naming every customer asked about: up to 100 people's lists (and whether
    each consented to personalization) in one call is a bulk read, and impression rows
    record only the personalized answers."""
    for i, item in enumerate(body.requests):
        _check_k(item.k, settings.recommend_max_k, ("body", "requests", i, "k"))
    engine, actor = _engine_of(request), principal.actor.name
    # Every answer first, logged only once all exist: an unknown store at item 5 used
    # to answer 404 after items 0-4 had logged impressions for lists never returned,
    # with no audit row (a review found it). Impressions and the row now commit together.
    answers = []
    for i, r in enumerate(body.requests):
        try:
            answer = engine.answer(
                r.customer_id, r.store, r.k, r.context, actor=actor, log_impressions=False
            )
        except NotFound as exc:  # which of up to 100 items (a review: the 404 did not say)
            raise NotFound(f"requests[{i}]: {exc}") from None
        answers.append(answer)
    with db.begin() as conn:
        for answer in answers:
            if answer.personalized:
                engine.record_shown(conn, answer, actor)
        audit.record(
            conn,
            principal.actor,
            "recommendations.batch",
            "customer",
            None,
            {"requests": len(answers), "personalized": sum(a.personalized for a in answers)},
            customers=[a.customer_id for a in answers],
        )
    return [_public(a) for a in answers]


@router.post(
    "/v1/customers/{customer_id}/declined-items",
    responses=error_responses(403, 404, 413, 422),
)
def decline_item(
    request: Request,
    customer_id: CustomerId,
    body: DeclineIn,
    principal: AnalystOrAdmin,
    engine: EngineDep,
    now: Now,
) -> DeclinePublic:
    """The customer said no to this item: it is not suggested to them again.

    Analysts and admins, by customer id; audited, the miss too (404). Staff decline
    through the notice they claimed (``POST /v1/notices/{id}/declined-items``), never by
    id: a staff login that could decline by id learned whether an id was a customer
    (by status, then by timing), and then which id was the customer in front of them,
    since the claimer view stopped suggesting the item (reviews)."""
    with engine.begin() as conn:
        known = evidence.record_decline(conn, principal.actor, customer_id, body.product_id, now)
    if not known:  # the miss's row is committed before the answer
        raise NotFound(f"no customer {customer_id!r}")
    _engine_of(request).note_decline(customer_id, body.product_id)
    return DeclinePublic(customer_id=customer_id, product_id=body.product_id)


@router.put("/v1/stores/{store_id}/stock", responses=error_responses(403, 404, 413, 422))
def put_stock(
    request: Request,
    principal: AnalystOrAdmin,
    store_id: KnownStore,
    body: StockIn,
    engine: EngineDep,
    settings: SettingsDep,
    now: Now,
) -> StockSaved:
    """Which items this store has; an item marked false is never recommended there. A
    write that would leave more than ``STORELENS_RECOMMEND_STOCK_MAX_OUT`` items out of
    stock is refused (422) and changes nothing."""
    with engine.begin() as conn:
        most = settings.recommend_stock_max_out
        evidence.set_stock(conn, store_id, body.items, now, most_out=most)
    _engine_of(request).stock_changed(store_id)
    return StockSaved(store_id=store_id, updated=len(body.items))
