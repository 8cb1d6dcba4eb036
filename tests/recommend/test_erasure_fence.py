"""A request running alongside an erasure or a consent withdrawal cannot bring the person back.

A security review found that the erasure deleted the cached candidates and queued
impressions before its transaction committed: a request in that window (or one that
had read the tables just before) put the entry back and logged impressions under the
erased id, so the person got personal answers for ten more minutes and rows about them
outlived the erasure. A withdrawal had the same race with a request filling the cache,
and any id asked about was cached, erased ids included. Memory and Redis stores.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, insert, select
from tests.recommend.test_serving import NOW, Login, World, world

from storelens.config import Settings
from storelens.core.errors import NotFound
from storelens.privacy import audit, registry
from storelens.privacy.erasure import erase_customer
from storelens.processors import RECOMMEND_PROJECTION, default_projections, run_projections
from storelens.recommend.candidate_store import (
    ERASED,
    FENCE_PREFIX,
    CustomerCandidates,
    RedisCandidates,
)
from storelens.recommend.engine import RecommendationEngine
from storelens.recommend.fences import FENCE_GRACE_S
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import recommend_declines, recommend_impressions

__all__ = ["world"]


@pytest.fixture(params=["memory", "redis"])
def served(
    request: pytest.FixtureRequest, world: World, engine: Engine, settings: Settings, redis_url: str
) -> Iterator[str]:
    """The id of a consenting customer with orders, served from the parametrised store."""
    if request.param == "memory":
        yield "ada"
        return
    cid = f"ada-{uuid.uuid4().hex[:8]}"  # the test Redis is shared between runs
    world.reco.close()
    store = RedisCandidates(redis_url, 600, 1.0)
    world.reco = RecommendationEngine(engine, settings, store, clock=lambda: world.now)
    world.client.app.state.recommendations = world.reco
    world.candidates = store  # type: ignore[assignment]
    for days in (4, 10, 17):
        world.order(cid, ["flat-white", "orange-juice"], NOW - timedelta(days=days))
    world.consent(cid, True, NOW - timedelta(days=200))
    world.project()
    yield cid
    store.delete([cid])


def _impressions(engine: Engine, cid: str) -> int:
    with engine.connect() as conn:
        stmt = select(func.count()).where(recommend_impressions.c.customer_id == cid)
        return int(conn.execute(stmt).scalar_one())


def _during(monkeypatch: pytest.MonkeyPatch, store: str, work: Callable[[], None]) -> None:
    """Run ``work`` inside the erasure's transaction, after ``store`` has been erased."""
    registered = registry._stores[store]

    def erase(req: registry.SubjectRequest) -> int:
        erased = registered.erase(req)
        work()
        return erased

    monkeypatch.setitem(registry._stores, store, dataclasses.replace(registered, erase=erase))


def test_a_request_during_the_erasure_does_not_cache_or_log_the_person(
    world: World, login: Login, engine: Engine, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = login("analyst")
    assert world.get(staff, served).json()["personalized"] is True  # cached
    during: list[bool] = []
    # The tables are not erased yet (the transaction is open): the answer is personal.
    _during(monkeypatch, "recommend_candidates",
            lambda: during.append(world.get(staff, served).json()["personalized"]))  # fmt: skip
    erase_customer(engine, served, audit.SYSTEM, "ticket 2")
    assert during == [True]
    assert world.candidates.get(served) is None
    assert world.get(staff, served).json()["personalized"] is False
    world.reco.impressions.flush()
    assert _impressions(engine, served) == 0
    assert world.candidates.get(served) is None  # an id nobody holds now is not cached


def test_a_fill_that_read_before_the_commit_and_lands_after_it_is_refused(
    world: World, login: Login, engine: Engine, served: str
) -> None:
    """The request reads the tables before the erasure starts and puts after it ends."""
    staff = login("analyst")
    world.candidates.delete([served])
    store, put = world.candidates, world.candidates.put
    read, go = threading.Event(), threading.Event()

    def late_put(entry: CustomerCandidates, *, marker: bool = False) -> None:
        if entry.customer_id == served and threading.current_thread() is not main:
            read.set()
            go.wait(10)
        put(entry, marker=marker)

    main = threading.current_thread()
    store.put = late_put  # type: ignore[method-assign]
    answers: list[bool] = []
    asking = threading.Thread(
        target=lambda: answers.append(world.get(staff, served).json()["personalized"])
    )
    asking.start()
    assert read.wait(10)
    erase_customer(engine, served, audit.SYSTEM, "ticket 3")
    go.set()
    asking.join(10)
    assert answers == [True]  # computed before the erasure: shown, but not kept
    assert store.get(served) is None
    world.reco.impressions.flush()
    assert _impressions(engine, served) == 0
    assert world.get(staff, served).json()["personalized"] is False


def test_a_withdrawal_while_a_request_fills_the_cache_wins(
    world: World, login: Login, engine: Engine, served: str
) -> None:
    staff = login("analyst")
    world.candidates.delete([served])  # expired, or a fresh worker
    store, put = world.candidates, world.candidates.put
    read, go = threading.Event(), threading.Event()
    main = threading.current_thread()

    def late_put(entry: CustomerCandidates, *, marker: bool = False) -> None:
        if entry.customer_id == served and threading.current_thread() is not main:
            read.set()
            go.wait(10)
        put(entry, marker=marker)

    store.put = late_put  # type: ignore[method-assign]
    asking = threading.Thread(target=lambda: world.get(staff, served))
    asking.start()
    assert read.wait(10)  # it read "granted" and is about to cache it
    world.consent(served, False, NOW - timedelta(minutes=1))
    world.project()
    go.set()
    asking.join(10)
    cached = store.get(served)
    assert cached is None or cached.consent is False
    assert world.get(staff, served).json()["personalized"] is False
    world.order(served, ["latte"], NOW - timedelta(minutes=30))
    world.project()
    assert world.get(staff, served).json()["personalized"] is False


def test_an_id_nobody_holds_is_answered_but_not_cached(world: World, login: Login) -> None:
    staff = login("analyst")
    body = world.get(staff, "nobody-123").json()
    assert body["personalized"] is False
    assert world.candidates.get("nobody-123") is None
    assert world.get(staff, "crowd-1").json()["personalized"] is False
    assert world.candidates.get("crowd-1") is not None  # a known customer still is


def test_a_decline_that_lands_after_the_erasure_is_removed_and_a_second_erasure_finds_rows(
    world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decline checked the customer before the commit and inserted after the
    erasure's delete (PostgreSQL's read committed): the settle step removes it. Rows a
    request of another process left behind can be erased by asking again."""
    settled = registry._stores["recommend_declines"]
    assert settled.settle is not None
    real_settle = settled.settle

    def insert_then_settle(db: Engine, subject: registry.Subject, committed: bool) -> int:
        with db.begin() as conn:  # the late insert, committed just after the erasure
            conn.execute(insert(recommend_declines),
                         {"customer_id": "ada", "product_id": "muffin", "at": NOW})  # fmt: skip
        return real_settle(db, subject, committed)

    monkeypatch.setitem(
        registry._stores, "recommend_declines",
        dataclasses.replace(settled, settle=insert_then_settle),
    )  # fmt: skip
    erase_customer(engine, "ada", audit.SYSTEM, "ticket 4")
    with engine.connect() as conn:
        left = select(func.count()).where(recommend_declines.c.customer_id == "ada")
        assert conn.execute(left).scalar_one() == 0
    with pytest.raises(NotFound):
        erase_customer(engine, "ada", audit.SYSTEM, "again: nothing left")
    # Another process's impression row under the id, written after everything:
    with engine.begin() as conn:
        conn.execute(insert(recommend_impressions), {
            "ts": NOW, "customer_id": "ada", "store_id": "cafe-01", "personalized": True,
            "actor": "staff", "shown": [{"product_id": "latte", "rank": 1, "confidence": 0.5}],
        })  # fmt: skip
    erase_customer(engine, "ada", audit.SYSTEM, "ticket 4, the row left behind")
    assert _impressions(engine, "ada") == 0


def test_a_batch_with_an_unknown_store_logs_nothing(
    world: World, login: Login, engine: Engine
) -> None:
    """Item 0 used to log impressions before item 1's unknown store answered 404."""
    r = world.client.post(
        "/v1/personalize",
        headers=login("analyst"),
        json={"requests": [{"customer_id": "ada", "store": "cafe-01"},
                           {"customer_id": "ada", "store": "no-such-store"}]},
    )  # fmt: skip
    assert r.status_code == 404, r.text
    world.reco.impressions.flush()
    assert _impressions(engine, "ada") == 0
    ok = world.client.post(
        "/v1/personalize", headers=login("analyst"),
        json={"requests": [{"customer_id": "ada", "store": "cafe-01", "k": 2}]},
    )  # fmt: skip
    assert ok.status_code == 200 and ok.json()[0]["personalized"] is True, ok.text
    assert _impressions(engine, "ada") == 1  # one row: the list of 2 shown


@pytest.mark.parametrize("product", ["x" * 129, "", "two words"])
def test_stock_refuses_product_ids_the_tables_cannot_hold(
    world: World, login: Login, product: str
) -> None:
    r = world.client.put(
        "/v1/stores/cafe-01/stock", headers=login("analyst"), json={"items": {product: False}}
    )
    assert r.status_code == 422, r.text
    assert "items" in r.text


def test_a_decline_and_a_decline_for_nobody_are_audited(
    world: World, login: Login, engine: Engine
) -> None:
    from storelens.storage.tables import audit_log, audit_subjects

    staff = login("analyst")
    ok = world.client.post("/v1/customers/ada/declined-items", headers=staff,
                           json={"product_id": "muffin"})  # fmt: skip
    miss = world.client.post("/v1/customers/nobody-9/declined-items", headers=staff,
                             json={"product_id": "muffin"})  # fmt: skip
    assert (ok.status_code, miss.status_code) == (200, 404)
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_log.c.id, audit_log.c.action, audit_log.c.resource_id)
            .where(audit_log.c.action.like("recommendations.decline%"))
            .order_by(audit_log.c.id)
        ).all()
        assert [(r.action, r.resource_id) for r in rows] == [
            ("recommendations.decline", "ada"),
            ("recommendations.decline.not_found", "nobody-9"),
        ]
        named = conn.execute(
            select(audit_subjects.c.customer_id).where(audit_subjects.c.audit_id == rows[0].id)
        ).scalars()
        assert list(named) == ["ada"]


def test_an_erasure_that_rolls_back_deletes_nothing(
    world: World, login: Login, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The after-commit step ran after a rollback too, and deleted the declines and
    impressions of a person who was still a customer (a review)."""
    staff = login("analyst")
    assert world.client.post("/v1/customers/ada/declined-items", headers=staff,
                             json={"product_id": "muffin"}).status_code == 200  # fmt: skip
    assert world.get(staff, "ada").json()["personalized"] is True
    world.reco.impressions.flush()
    shown = _impressions(engine, "ada")
    assert shown > 0

    def fail(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(audit, "record", fail)
    with pytest.raises(RuntimeError):
        erase_customer(engine, "ada", audit.SYSTEM, "ticket 5")
    monkeypatch.undo()
    assert _impressions(engine, "ada") == shown
    with engine.connect() as conn:
        kept = select(func.count()).where(recommend_declines.c.customer_id == "ada")
        assert conn.execute(kept).scalar_one() == 1


def test_a_withdrawal_holds_the_person_non_personal_whatever_the_tables_say(
    world: World, login: Login, engine: Engine, served: str
) -> None:
    """A fill that read "granted" could land between a withdrawal's update and its
    fence, and a consent table lagging behind the event let a fill read "granted" again
    after the grace (a review). The withdrawal now fences first and leaves a marker
    entry, holding nothing personal, under each of the person's ids."""
    staff = login("analyst")
    world.candidates.delete([served])
    world.consent(served, False, NOW - timedelta(minutes=1))
    # Only the recommendation projection has seen it: the consent table still says yes.
    every = default_projections(recommendations=world.reco)
    run_projections(EventLog(engine), [p for p in every if p.name == RECOMMEND_PROJECTION])
    marker = world.candidates.get(served)
    assert marker is not None and marker.consent is False and not marker.items
    assert world.get(staff, served).json()["personalized"] is False


def test_a_decline_just_after_a_withdrawal_reaches_the_marker(
    world: World, login: Login, served: str
) -> None:
    """A decline within a withdrawal's hold (30 s) was refused by it: the marker went
    on without the decline, and the store's list showed the declined item for the
    cache's ten minutes. The marker now takes it through the withdrawal's hold."""
    staff = login("analyst")
    world.consent(served, False, NOW - timedelta(minutes=1))
    world.project()
    assert "latte" in {x["product_id"] for x in world.get(staff, served).json()["data"]}
    declined = world.client.post(
        f"/v1/customers/{served}/declined-items", json={"product_id": "latte"}, headers=staff
    )
    assert declined.status_code == 200, declined.text
    marker = world.candidates.get(served)
    assert marker is not None and marker.consent is False and "latte" in marker.declined
    answer = world.get(staff, served).json()
    assert answer["personalized"] is False and answer["data"]
    assert "latte" not in {x["product_id"] for x in answer["data"]}


def test_an_erasure_fence_refuses_the_marker_and_a_withdrawal_never_weakens_it(
    world: World, engine: Engine, served: str
) -> None:
    """A marker keeps the person's declines: an erasure under way refuses it, and the
    withdrawal's shorter, weaker hold does not replace the erasure's fence."""
    store = world.candidates
    assert store.fence([served]) == 1  # the erasure has started
    world.consent(served, False, NOW - timedelta(minutes=1))
    world.project()  # the withdrawal: hold, then the marker
    assert store.get(served) is None
    store.put(CustomerCandidates(served, consent=False, consent_ts=4e9), marker=True)
    assert store.get(served) is None
    if isinstance(store, RedisCandidates):
        fence = FENCE_PREFIX + served
        assert store._client.get(fence) == ERASED
        assert store._client.ttl(fence) > FENCE_GRACE_S  # still the erasure's open fence
    else:
        store._fences._clock = lambda: 10**9  # type: ignore[method-assign]  # far later
        assert store._fences.blocks(served, marker=True)  # closed until the erasure holds
    with pytest.raises(ValueError, match="without consent"):
        store.put(CustomerCandidates(served, consent=True), marker=True)


def test_a_marker_never_replaces_an_entry_with_a_later_decision(world: World, served: str) -> None:
    """``note_decline`` reads the marker, adds the decline and writes it back: had a
    later withdrawal's marker landed in between, the write put the earlier decision's
    time back, and a late grant dated between the two then passed (an attacker review)."""
    store = world.candidates
    store.put(CustomerCandidates(served, consent=False, consent_ts=4e9), marker=True)
    stale = CustomerCandidates(served, consent=False, consent_ts=3.9e9)
    stale.declined = ("latte",)
    store.put(stale, marker=True)
    held = store.get(served)
    assert held is not None and held.consent_ts == 4e9 and held.declined == ()
    stale.consent_ts = 4.1e9  # a later one replaces it
    store.put(stale, marker=True)
    held = store.get(served)
    assert held is not None and held.declined == ("latte",)
    orders = CustomerCandidates(served, consent=False, consent_ts=5e9)
    orders.apply_order("o-9", 4.2e9, ["latte"])
    with pytest.raises(ValueError, match="without consent, orders"):
        store.put(orders, marker=True)


def test_a_withdrawal_just_after_an_erasure_elsewhere_keeps_its_marker(
    world: World, engine: Engine, served: str
) -> None:
    """An erasure elsewhere (ids unknown here) holds every fill of this process for 30 s;
    a withdrawal in that time still leaves its marker, or the next fill after the hold
    read a lagging consent table and cached "granted" (an attacker review)."""
    world.candidates.forget_held()  # the follower saw an erasure elsewhere
    world.consent(served, False, NOW - timedelta(minutes=1))
    every = default_projections(recommendations=world.reco)
    run_projections(EventLog(engine), [p for p in every if p.name == RECOMMEND_PROJECTION])
    marker = world.candidates.get(served)
    assert marker is not None and marker.consent is False and not marker.items


def test_a_withdrawal_makes_a_short_erasure_fence_last_the_grace_and_never_ends_an_endless_one(
    redis_url: str,
) -> None:
    store = RedisCandidates(redis_url, 600, 1.0, copies=False)
    short, endless = f"ada-{uuid.uuid4().hex}", f"bo-{uuid.uuid4().hex}"
    try:
        store._client.set(FENCE_PREFIX + short, ERASED, ex=5)  # an erasure's last seconds
        store._client.set(FENCE_PREFIX + endless, ERASED)  # set by hand, no expiry
        store.hold_withdrawn([short, endless])
        assert store._client.get(FENCE_PREFIX + short) == ERASED
        assert store._client.ttl(FENCE_PREFIX + short) >= FENCE_GRACE_S - 1
        assert store._client.get(FENCE_PREFIX + endless) == ERASED
        assert store._client.ttl(FENCE_PREFIX + endless) == -1
        fresh = f"cy-{uuid.uuid4().hex}"
        store.hold_withdrawn([fresh])
        assert store._client.get(FENCE_PREFIX + fresh) == b"withdrawn"
    finally:
        store._client.delete(*(FENCE_PREFIX + c for c in (short, endless, fresh)))
        store.close()
