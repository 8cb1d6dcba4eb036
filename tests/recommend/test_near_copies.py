"""Each worker's copies of Redis candidate entries: served until any process changes one.

The real Redis throughout (news travels by its pub/sub). Two stores on one Redis stand
for two workers: ``worker`` serves with copies, ``other`` writes (a projection, an
erasure) in another process. Other test runs may publish on the same channel at the
same time; each test uses ids of its own, and news of other ids only ever drops
copies, so the tests read again where a drop elsewhere could have cost a copy.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from tests.waiting import until

from storelens.config import Settings
from storelens.recommend import candidate_store
from storelens.recommend.candidate_store import (
    REDIS_PREFIX,
    CustomerCandidates,
    RedisCandidates,
)
from storelens.recommend.engine import RecommendationEngine
from storelens.recommend.near_copies import NearCopies
from storelens.storage.eventlog import StoredEvent

pytestmark = pytest.mark.redis


def _entry(cid: str, *orders: str) -> CustomerCandidates:
    entry = CustomerCandidates(customer_id=cid, consent=True, consent_ts=1.0)
    for n, order in enumerate(orders):
        entry.apply_order(order, 1_700_000_000.0 + n * 86400, ["latte", f"snack-{n}"])
    return entry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def stores(redis_url: str) -> Iterator[tuple[RedisCandidates, RedisCandidates, Clock]]:
    clock = Clock()
    worker = RedisCandidates(redis_url, 600, 1.0)
    assert worker.copies is not None
    worker.copies.close()
    other = RedisCandidates(redis_url, 600, 1.0, copies=False)
    # A channel of this test's own: another test's news (one drops every copy) must
    # not reach it when the tests run side by side.
    worker._channel = other._channel = f"storelens:test:{uuid.uuid4().hex}"
    worker.copies = NearCopies(redis_url, worker._channel, 1.0, clock=clock)
    for s in (worker, other):
        candidate_store._LIVE.discard(s)  # not this test's erasure walk
    worker.copies.ticket()  # starts the listener
    until(lambda: worker.copies is not None and worker.copies.listening)
    yield worker, other, clock
    worker.close()
    other.close()


def _read(store: RedisCandidates, cid: str) -> CustomerCandidates | None:
    return asyncio.run(store.aget(cid))


def _read_twice_from_the_copy(store: RedisCandidates, cid: str) -> CustomerCandidates:
    """Read until the second of two reads is the first's copy (another run's news can
    land between them); the copy is the very object, not an equal one from Redis."""
    for _ in range(50):
        first = _read(store, cid)
        assert first is not None
        if _read(store, cid) is first:
            return first
    pytest.fail("no read was ever served from the copy")


def _put_and_hear(
    worker: RedisCandidates, other: RedisCandidates, entry: CustomerCandidates
) -> None:
    """``other`` writes, and ``worker`` has heard the write's own news before anything
    reads: news that lands after the copy was taken drops it (on a loaded machine it
    can come that late), and a test that then expects the copy would fail by chance."""
    copies = worker.copies
    assert copies is not None
    before = copies.ticket()
    other.put(entry)
    until(lambda: copies.ticket() != before)


def _copied(
    stores: tuple[RedisCandidates, RedisCandidates, Clock], name: str
) -> tuple[RedisCandidates, RedisCandidates, str, CustomerCandidates]:
    """A customer of this test's own whose entry another worker wrote and ``worker``
    serves from its copy: (worker, other, customer id, the copy)."""
    worker, other, _ = stores
    cid = f"{name}-{uuid.uuid4().hex}"
    _put_and_hear(worker, other, _entry(cid, "o-1"))
    return worker, other, cid, _read_twice_from_the_copy(worker, cid)


def test_a_copy_is_served_until_another_worker_changes_the_entry(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    worker, other, cid, held = _copied(stores, "ada")
    assert held.order_ids == ("o-1",)

    other.put(_entry(cid, "o-1", "o-2"))  # a paid order, projected in another process
    until(lambda: (e := _read(worker, cid)) is not None and e.order_ids == ("o-1", "o-2"))
    assert _read_twice_from_the_copy(worker, cid).order_ids == ("o-1", "o-2")


def test_an_erasure_in_another_process_reaches_the_copy(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    worker, other, cid, _ = _copied(stores, "bo")
    assert other.fence([cid]) == 1
    until(lambda: _read(worker, cid) is None)
    assert worker.copies is not None and worker.copies.get(cid) is None


def test_a_write_in_this_worker_drops_its_copy_at_once(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    """No waiting for its own news: the projection in this process put the order, and
    the very next answer here must have it."""
    worker, _, _ = stores
    cid = f"cy-{uuid.uuid4().hex}"
    worker.put(_entry(cid, "o-1"))
    _read_twice_from_the_copy(worker, cid)
    worker.put(_entry(cid, "o-1", "o-2"))
    read = _read(worker, cid)
    assert read is not None and read.order_ids == ("o-1", "o-2")
    worker.delete([cid])
    assert _read(worker, cid) is None


def test_a_read_under_way_when_news_arrives_keeps_nothing(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    worker, other, _ = stores
    copies = worker.copies
    assert copies is not None
    cid = f"di-{uuid.uuid4().hex}"
    ticket = copies.ticket()  # the read begins
    other.put(_entry(cid, "o-2"))  # meanwhile another worker changes the entry
    until(lambda: copies.ticket() != ticket)  # the news arrived before the read's answer
    assert not copies.keep(cid, _entry(cid, "o-1"), ticket, 600)
    assert copies.get(cid) is None


def test_a_copy_never_outlives_the_redis_key(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    """An entry Redis let expire is in nobody's copies: the projection skips customers
    whose key is gone, so a copy kept longer would miss their next order."""
    worker, other, clock = stores
    cid = f"ed-{uuid.uuid4().hex}"
    _put_and_hear(worker, other, _entry(cid, "o-1"))
    other._client.pexpire(REDIS_PREFIX + cid, 30_000)  # 30 s left of the key's 600
    held = _read_twice_from_the_copy(worker, cid)
    clock.now += 29.0
    assert _read(worker, cid) is held
    clock.now += 2.0  # past the key's time: read from Redis again, a new copy
    assert _read(worker, cid) is not held


def test_copies_follow_an_erasure_elsewhere_and_a_closed_store_serves_none(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    worker, _, cid, held = _copied(stores, "fa")
    assert worker.forget_held() >= 1  # the follower saw an erasure, ids unknown here
    assert _read(worker, cid) is not held
    _read_twice_from_the_copy(worker, cid)
    copies = worker.copies
    assert copies is not None
    worker.close()
    assert copies.get(cid) is None
    assert not copies.keep(cid, held, copies.ticket(), 600)


def test_news_it_cannot_read_drops_every_copy(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
) -> None:
    worker, other, cid, held = _copied(stores, "gu")
    other._client.publish(worker._channel, b"not json")
    until(lambda: _read(worker, cid) is not held)


def test_without_copies_every_read_is_from_redis(redis_url: str) -> None:
    plain = RedisCandidates(redis_url, 600, 1.0, copies=False)
    candidate_store._LIVE.discard(plain)
    cid = f"hu-{uuid.uuid4().hex}"
    plain.put(_entry(cid, "o-1"))
    first = _read(plain, cid)
    assert first is not None and _read(plain, cid) is not first
    assert plain.forget_held() == 0
    plain.close()


@pytest.mark.parametrize("news", ["decline", "grant"])
def test_a_change_to_an_entry_redis_no_longer_holds_still_reaches_the_copies(
    stores: tuple[RedisCandidates, RedisCandidates, Clock],
    engine: Engine,
    settings: Settings,
    news: str,
) -> None:
    """Redis evicted the key (or an operator flushed it): nothing publishes that, and a
    worker's copy lives on. A decline or a consent grant finds no entry to update, and
    tells the workers anyway, or the copy would show the declined item."""
    worker, other, cid, held = _copied(stores, "io")
    other._client.delete(REDIS_PREFIX + cid)  # evicted: no news
    assert worker.copies is not None and worker.copies.get(cid) is held
    reco = RecommendationEngine(engine, settings, other)
    if news == "decline":
        reco.note_decline(cid, "latte")
    else:
        grant = StoredEvent(
            seq=1, id=uuid.uuid4(), type="consent.changed",
            ts=datetime(2026, 11, 30, 8, tzinfo=UTC), store_id=None, source="app",
            subject=cid, payload={"purpose": "personalization", "granted": True},
        )  # fmt: skip
        with engine.connect() as conn:
            reco.apply_events(conn, [grant])
    until(lambda: worker.copies is not None and worker.copies.get(cid) is None)
    reco.close()
