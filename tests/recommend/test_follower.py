# ruff: noqa: F811 - tests take the imported `world` fixture by name
"""Every process's in-memory candidate lists follow consent, orders and erasures made
elsewhere, and consent is the person's under whichever id it was given.

A security review found a second API worker serving personal answers for ten minutes
after a withdrawal (or a command-line erasure) that another process handled, and a web
account's grant outliving a withdrawal under the loyalty card it was merged into. A
second engine with its own memory store stands for the second worker; the follower
is stepped by hand (its thread only calls ``step`` on a timer).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from storelens.config import Settings
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer
from storelens.recommend import candidate_store
from storelens.recommend.candidate_store import (
    CustomerCandidates,
    MemoryCandidates,
    RedisCandidates,
)
from storelens.recommend.context import Context
from storelens.recommend.engine import RecommendationEngine
from storelens.recommend.follower import CandidateFollower
from storelens.storage.tables import customers

from .test_serving import NOW, World, world  # noqa: F401 - the fixture

Login = Callable[[str], dict[str, str]]


def _second_worker(world: World, engine: Engine, settings: Settings) -> RecommendationEngine:
    store = MemoryCandidates(600)
    # Another process: an erasure run here must not reach this store directly.
    candidate_store._LIVE.discard(store)
    return RecommendationEngine(engine, settings, store, clock=lambda: world.now)


def _personal(reco: RecommendationEngine, customer: str) -> bool:
    return reco.answer(customer, "cafe-01", 10, Context(), log_impressions=False).personalized


def test_a_withdrawal_handled_elsewhere_reaches_this_worker(
    world: World, engine: Engine, settings: Settings
) -> None:
    other = _second_worker(world, engine, settings)
    follower = CandidateFollower(engine, other)
    assert _personal(other, "ada")  # cached here, consent and all
    world.order("ada", ["cappuccino"], NOW - timedelta(hours=2))
    assert follower.step() == 1  # not projected: the order comes through the log
    held = other.candidates.get("ada")
    assert held is not None and "cappuccino" in held.items
    world.consent("ada", False, NOW - timedelta(hours=1))
    world.project()  # the projection owner applies it to *its* store
    assert _personal(other, "ada")  # this worker has not looked yet: the old gap
    assert follower.step() == 1
    assert not _personal(other, "ada")
    other.close()


def test_an_erasure_elsewhere_empties_this_workers_memory(
    world: World, engine: Engine, settings: Settings
) -> None:
    other = _second_worker(world, engine, settings)
    follower = CandidateFollower(engine, other)
    assert _personal(other, "ada")
    erase_customer(engine, "ada", audit.SYSTEM, "request 42")  # e.g. the CLI
    assert other.candidates.get("ada") is not None  # not reached directly
    follower.step()
    assert other.candidates.get("ada") is None
    assert not _personal(other, "ada")
    follower.step()  # the same erasure is not news twice
    assert _personal(other, "crowd-1") is False  # no consent: still answered
    other.close()


def test_consent_is_the_persons_under_any_of_their_ids(
    world: World, engine: Engine, settings: Settings
) -> None:
    with engine.begin() as conn:
        conn.execute(
            customers.insert(),
            [
                {"source_system": "pos", "source_record_id": "c-1", "customer_id": "ada"},
                {"source_system": "webshop", "source_record_id": "w-9", "customer_id": "ada"},
            ],
        )
    web = "webshop:w-9"
    world.consent(web, True, NOW - timedelta(days=3))
    world.order(web, ["rare-tea"], NOW - timedelta(days=20))  # bought on the web account
    world.project()
    assert _personal(world.reco, web)  # cached under the web id
    world.consent("ada", False, NOW - timedelta(days=1))  # withdrawn under the card
    world.project()
    assert not _personal(world.reco, web)  # the cached entry followed the person
    fresh = _second_worker(world, engine, settings)  # nothing cached: built from tables
    assert not _personal(fresh, web)
    assert not _personal(fresh, "ada")
    fresh.close()


@pytest.mark.redis
def test_an_erasure_from_the_command_line_reaches_the_configured_redis(
    world: World, engine: Engine, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The eraser opens the configured Redis itself: the CLI process never serves."""
    ada = f"ada-{uuid.uuid4().hex}"  # this Redis may be shared with another test run
    served = RedisCandidates(redis_url, 600, 1.0)
    candidate_store._LIVE.discard(served)  # the server's store, in another process
    served.put(CustomerCandidates(customer_id=ada, consent=True))
    world.order(ada, ["latte"], NOW - timedelta(days=2))
    world.project()
    monkeypatch.setenv("STORELENS_RECOMMEND_CANDIDATE_STORE", "redis")
    monkeypatch.setenv("STORELENS_REDIS_URL", redis_url)
    erasure = erase_customer(engine, ada, audit.SYSTEM, "request 43")
    assert served.get(ada) is None
    assert erasure.erased["recommend_candidates"] == 2  # this process's copy and Redis's
    served.close()


@pytest.mark.parametrize("shared", [False, True])
def test_a_link_to_an_id_that_withdrew_reaches_the_cached_list(
    world: World, engine: Engine, settings: Settings, redis_url: str, shared: bool
) -> None:
    """A withdrawal under a web account not yet linked to the card reached no cached
    list; when resolution linked them, the card's list stayed personal until it
    expired (a security review). Identity changes now drop the lists of the people
    they touch, in memory and in Redis."""
    from storelens.storage.tables import identity_changes

    ada = f"ada-{uuid.uuid4().hex[:6]}" if shared else "ada"
    store = RedisCandidates(redis_url, 600, 1.0) if shared else MemoryCandidates(600)
    candidate_store._LIVE.discard(store)
    served = RecommendationEngine(engine, settings, store, clock=lambda: world.now)
    follower = CandidateFollower(engine, served, follow_events=not shared)
    for days in (3, 9):
        world.order(ada, ["flat-white"], NOW - timedelta(days=days))
    world.consent(ada, True, NOW - timedelta(days=100))
    world.project()
    with engine.begin() as conn:
        conn.execute(customers.insert(), {"source_system": "pos", "source_record_id": "c-1",
                                          "customer_id": ada})  # fmt: skip
    assert _personal(served, ada)  # cached, consent granted
    world.consent("webshop:w-9", False, NOW - timedelta(days=1))  # not linked yet
    world.project()
    follower.step()
    assert _personal(served, ada)  # nothing links them yet: still right
    with engine.begin() as conn:  # resolution links the web record to her
        conn.execute(customers.insert(), {"source_system": "webshop", "source_record_id": "w-9",
                                          "customer_id": ada})  # fmt: skip
        conn.execute(identity_changes.insert(), {"run_id": 1, "kind": "merged",
                     "customer_id": ada, "others": [], "records": ["webshop:w-9"],
                     "evidence": [], "actor": None, "at": NOW})  # fmt: skip
    follower.step()
    assert store.get(ada) is None
    assert not _personal(served, ada)
    served.close()
    if shared:
        store.delete([ada])
