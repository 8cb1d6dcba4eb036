"""Expired store data on the event loop: served while one reload runs, never too old.

When the stock expired, every request in flight used to go to the threadpool for the
reload. One worker under wrk showed those requests as most of the slow tail. Now a
warm answer keeps the old value while one background reload runs. These tests use an
injected clock and a background runner that only records the reloads, so each step
is explicit.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from tests.recommend.test_serving import NOW, World, world

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.context import Context
from storelens.recommend.engine import STOCK_TTL_S, RecommendationEngine
from storelens.recommend.follower import CandidateFollower
from storelens.recommend.shared_cache import FRESH_WHILE_USED_S, Cold, SharedCache

__all__ = ["world"]


class Later:
    """Background reloads, held until the test runs them."""

    def __init__(self) -> None:
        self.waiting: list[Callable[[], None]] = []

    def __call__(self, refresh: Callable[[], None]) -> None:
        self.waiting.append(refresh)

    def run(self) -> None:
        waiting, self.waiting = self.waiting, []
        for refresh in waiting:
            refresh()


def _engine(
    engine: Engine, settings: Settings, tick: list[float], later: Later
) -> RecommendationEngine:
    """An engine on the injected clock ``tick`` whose background reloads wait in ``later``."""
    return RecommendationEngine(
        engine, settings, MemoryCandidates(600), clock=lambda: NOW,
        monotonic=lambda: tick[0], background=later,
    )  # fmt: skip


def test_an_expired_stock_is_served_on_the_loop_while_one_reload_runs(
    world: World, engine: Engine, settings: Settings
) -> None:
    tick, later = [100.0], Later()
    reco = _engine(engine, settings, tick, later)

    def warm_ids() -> set[str] | None:
        answer = reco.answer_warm("crowd-0", "cafe-01", 10, Context())
        return None if answer is None else {r.product_id for r in answer.items}

    reco.answer("crowd-0", "cafe-01", 10, Context(), log_impressions=False)  # fills every cache
    assert "croissant" in (warm_ids() or set())
    with engine.begin() as conn:  # another process marks it out of stock
        evidence.set_stock(conn, "cafe-01", {"croissant": False}, NOW)
    tick[0] += STOCK_TTL_S + 0.01
    # Expired: still answered on the loop, from the old stock, and one reload started.
    assert "croissant" in (warm_ids() or set())
    assert "croissant" in (warm_ids() or set())
    assert len(later.waiting) == 1
    later.run()
    assert "croissant" not in (warm_ids() or {"croissant"})  # the reload's stock
    # Too old to serve (past the TTL and the grace): the warm path refuses again.
    tick[0] += STOCK_TTL_S + 1.01
    assert warm_ids() is None
    reco.close()


def test_a_reload_started_before_a_drop_keeps_nothing() -> None:
    tick, later = [0.0], Later()
    cache = SharedCache(lambda: tick[0], later, grace_s=1.0)
    assert cache.get("stock:s", lambda: {"a"}, ttl=1.0) == {"a"}
    tick[0] = 1.5
    assert cache.get("stock:s", lambda: {"b"}, ttl=1.0, warm=True) == {"a"}
    cache.drop("stock:s")  # a PUT in this process: the next answer must load it
    later.run()  # the reload that was under way finishes after the drop
    with pytest.raises(Cold):
        cache.get("stock:s", lambda: {"c"}, ttl=1.0, warm=True)
    assert cache.get("stock:s", lambda: {"c"}, ttl=1.0) == {"c"}


def test_a_failed_reload_is_not_retried_per_request_and_ends_in_an_inline_load() -> None:
    tick, later = [0.0], Later()
    cache = SharedCache(lambda: tick[0], later, grace_s=1.0)
    cache.get("pop:s", lambda: 1, ttl=1.0)
    tick[0] = 1.2

    def down() -> int:
        raise OSError("database gone")

    assert cache.get("pop:s", down, ttl=1.0, warm=True) == 1
    later.run()  # fails (logged)
    assert cache.get("pop:s", down, ttl=1.0, warm=True) == 1  # within the grace: old value
    assert later.waiting == []  # and no second reload per request
    tick[0] = 2.1  # past TTL + grace: refused on the loop, loaded inline by the caller
    with pytest.raises(Cold):
        cache.get("pop:s", down, ttl=1.0, warm=True)
    assert cache.get("pop:s", lambda: 2, ttl=1.0) == 2
    tick[0] = 3.2  # the inline load cleared the failure: the next expiry reloads again
    assert cache.get("pop:s", lambda: 3, ttl=1.0, warm=True) == 2
    assert len(later.waiting) == 1
    later.run()
    assert cache.get("pop:s", lambda: 4, ttl=1.0, warm=True) == 3


def test_values_warm_reads_use_are_reloaded_before_they_expire() -> None:
    tick, loads = [0.0], [0]

    def load() -> int:
        loads[0] += 1
        return loads[0]

    later = Later()
    cache = SharedCache(lambda: tick[0], later, grace_s=1.0)
    assert cache.get("pop:s", load, ttl=60.0) == 1  # a route's load: not kept fresh
    tick[0] = 59.5
    assert cache.refresh_due(lead_s=1.0) == 0
    assert cache.get("pop:s", load, ttl=60.0, warm=True) == 1  # now a warm read uses it
    tick[0] = 53.0
    assert cache.refresh_due(lead_s=1.0) == 0  # not yet within a tenth of its TTL
    tick[0] = 54.5
    assert cache.refresh_due(lead_s=1.0) == 1  # within it: one reload started
    assert cache.refresh_due(lead_s=1.0) == 0  # and not a second while it runs
    later.run()
    assert loads[0] == 2
    # A quiet spell far past TTL + grace, the timer running all along: never cold.
    for _ in range(5):
        tick[0] += 55.0
        cache.refresh_due(lead_s=1.0)
        later.run()
    assert cache.get("pop:s", load, ttl=60.0, warm=True) == loads[0] == 7
    assert cache.refresh_due(lead_s=1.0) == 0  # fresh: nothing due


def test_a_slow_reload_does_not_hold_up_the_others() -> None:
    """Under load the popularity's reload took 1-2 s; run after it on the same thread,
    the stock's (1 s TTL) was late and the stock expired under the requests."""
    tick, later = [0.0], Later()
    cache = SharedCache(lambda: tick[0], later, grace_s=1.0)
    cache.get("pop:s", lambda: "pop", ttl=60.0, warm=False)
    tick[0] = 59.0
    cache.get("stock:s", lambda: {"a"}, ttl=1.0, warm=False)
    tick[0] = 59.5
    cache.get("pop:s", lambda: "pop 2", ttl=60.0, warm=True)
    cache.get("stock:s", lambda: {"b"}, ttl=1.0, warm=True)
    assert cache.refresh_due(lead_s=1.0) == 2
    slow_pop, stock = later.waiting
    later.waiting = []
    stock()  # the stock's reload finishes while the popularity's is still running
    assert cache.get("stock:s", lambda: {"c"}, ttl=1.0, warm=True) == {"b"}
    slow_pop()
    assert cache.get("pop:s", lambda: "pop 3", ttl=60.0, warm=True) == "pop 2"


def test_a_value_no_warm_read_used_for_ten_minutes_is_left_to_expire() -> None:
    tick = [0.0]
    cache = SharedCache(lambda: tick[0], Later(), grace_s=1.0)
    cache.get("pop:s", lambda: "old", ttl=60.0)
    cache.get("pop:s", lambda: "old", ttl=60.0, warm=True)
    tick[0] = FRESH_WHILE_USED_S + 1
    assert cache.refresh_due(lead_s=1.0) == 0
    with pytest.raises(Cold):
        cache.get("pop:s", lambda: "new", ttl=60.0, warm=True)


def test_a_dropped_value_stays_dropped_and_a_failed_reload_is_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tick, later = [0.0], Later()
    cache = SharedCache(lambda: tick[0], later, grace_s=1.0)
    cache.get("stock:s", lambda: {"a"}, ttl=1.0)
    cache.get("stock:s", lambda: {"a"}, ttl=1.0, warm=True)
    cache.drop("stock:s")  # a PUT in this process: the next read loads it, not the timer
    assert cache.refresh_due(lead_s=1.0) == 0
    with pytest.raises(Cold):
        cache.get("stock:s", lambda: {"b"}, ttl=1.0, warm=True)

    def down() -> set[str]:
        raise OSError("database gone")

    cache.get("pop:s", lambda: 1, ttl=1.0)
    cache.get("pop:s", down, ttl=1.0, warm=True)
    assert cache.refresh_due(lead_s=1.0) == 1
    with caplog.at_level("ERROR"):
        later.run()
    assert "reloading pop:s ahead of its expiry failed" in caplog.text
    cache.get("pop:s", lambda: 2, ttl=1.0, warm=True)  # the last warm read's loader counts
    assert cache.refresh_due(lead_s=1.0) == 1  # tried again
    later.run()
    assert cache.get("pop:s", down, ttl=1.0, warm=True) == 2


def test_after_a_quiet_spell_the_follower_has_kept_the_warm_answer_fresh(
    world: World, engine: Engine, settings: Settings
) -> None:
    tick, later = [100.0], Later()
    reco = _engine(engine, settings, tick, later)
    reco.answer("crowd-0", "cafe-01", 10, Context(), log_impressions=False)
    assert reco.answer_warm("crowd-0", "cafe-01", 10, Context()) is not None
    follower = CandidateFollower(engine, reco, every_s=0.5)
    with engine.begin() as conn:  # another process marks it out of stock
        evidence.set_stock(conn, "cafe-01", {"croissant": False}, NOW)
    for _ in range(200):  # 100 s without a request, the follower stepping every 0.5 s
        tick[0] += 0.5
        follower.step()
        later.run()
    answer = reco.answer_warm("crowd-0", "cafe-01", 10, Context())
    assert answer is not None  # on the loop: nothing expired
    assert "croissant" not in {r.product_id for r in answer.items}
    reco.close()
