"""The event-loop path: a warm answer equals the full one, and anything cold is refused.

The route computes a warm answer on the event loop (``answer_warm``) and hands only a
None to a thread, so ``answer_warm`` must never do I/O, must say None whenever a cache
would have to be filled, and must otherwise give exactly what ``answer`` gives.
"""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from tests.recommend.test_serving import NOW, Login, World, world

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates, MemoryCandidates
from storelens.recommend.context import Context
from storelens.recommend.engine import RecommendationEngine

__all__ = ["world"]


class Tick:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_peek_decodes_once_per_write_and_forgets_with_the_entry() -> None:
    clock = Tick()
    store = MemoryCandidates(ttl_s=10.0, clock=clock)
    assert store.peek("ada") is None
    store.put(CustomerCandidates("ada", order_ids=("o-1",), order_times=(1.0,), consent=True))
    first = store.peek("ada")
    assert first is not None and first.order_ids == ("o-1",)
    assert store.peek("ada") is first  # no copy per request
    assert store.get("ada") is not first  # get still hands out a copy to change
    store.put(CustomerCandidates("ada", order_ids=("o-1", "o-2"), order_times=(1, 2)))
    second = store.peek("ada")
    assert second is not first and second is not None and second.order_ids == ("o-1", "o-2")
    clock.t = 10.5  # past the TTL: gone for peek as for get
    assert store.peek("ada") is None and store.get("ada") is None
    store.put(CustomerCandidates("bob", consent=True))
    assert store.peek("bob") is not None
    assert store.delete(["bob"]) == 1
    assert store.peek("bob") is None


def test_a_cold_engine_refuses_the_warm_path(world: World, settings: Settings) -> None:
    fresh = RecommendationEngine(
        world.engine, settings, MemoryCandidates(600), clock=lambda: world.now
    )
    assert fresh.answer_warm("ada", "cafe-01", 10, Context()) is None  # nothing cached
    full = fresh.answer("ada", "cafe-01", 10, Context(), log_impressions=False)
    warm = fresh.answer_warm("ada", "cafe-01", 10, Context())
    assert warm is not None and warm.items == full.items and warm.personalized
    assert fresh.answer_warm("nobody-yet", "cafe-01", 10, Context()) is None  # no entry
    fresh.close()


def test_warm_and_full_answers_agree(world: World, login: Login) -> None:
    staff = login("analyst")
    assert world.get(staff, "ada").status_code == 200  # fills every cache
    for ctx in (Context(), Context(daypart="evening"), Context(zone="bakery")):
        warm = world.reco.answer_warm("ada", "cafe-01", 5, ctx)
        full = world.reco.answer("ada", "cafe-01", 5, ctx, log_impressions=False)
        assert warm is not None
        assert (warm.items, warm.context, warm.reason) == (full.items, full.context, full.reason)


def test_stock_expiry_sends_the_next_answer_off_the_loop(world: World, login: Login) -> None:
    staff = login("analyst")
    assert world.get(staff, "ada").status_code == 200
    assert world.reco.answer_warm("ada", "cafe-01", 5, Context()) is not None
    world.reco.stock_changed("cafe-01")  # as after a PUT of the stock
    assert world.reco.answer_warm("ada", "cafe-01", 5, Context()) is None
    assert world.get(staff, "ada").status_code == 200  # the route fills it in a thread
    assert world.reco.answer_warm("ada", "cafe-01", 5, Context()) is not None


def test_a_withdrawn_consent_is_honoured_on_the_warm_path(world: World, login: Login) -> None:
    staff = login("analyst")
    assert world.get(staff, "ada").json()["personalized"] is True
    world.consent("ada", False, NOW - timedelta(hours=1))
    world.project()
    warm = world.reco.answer_warm("ada", "cafe-01", 5, Context())
    assert warm is not None and warm.personalized is False
    assert warm.reason == "no personalization consent on record for this id"


def test_a_held_entry_leaves_nothing_for_the_collector_to_walk(
    world: World, engine: Engine, settings: Settings
) -> None:
    """A warm server holds an entry per customer for minutes; as lists and a dataclass
    per co-purchase they were most of what each full collection walked (13-19 ms pauses
    of the event loop every few seconds under load). Built from the tables, read back
    from Redis's JSON, after a new order and a decline: only the entry itself stays
    tracked."""
    store = MemoryCandidates(600)
    reco = RecommendationEngine(engine, settings, store, clock=lambda: NOW)
    table = evidence.CoPurchaseTable(
        orders_with={"flat-white": 10}, together={"flat-white": [("muffin", 4)]}
    )
    with engine.connect() as conn:
        built = evidence.build_candidates(conn, "ada", 3, table)
    assert built is not None and built.copurchase == {"muffin": ("flat-white", 4, 10)}
    again = CustomerCandidates.from_json(built.to_json())
    assert again == built
    again.apply_order("o-new", NOW.timestamp(), ["flat-white", "scone"])
    store.put(again)
    reco.note_decline("ada", "scone")
    declined = store.get("ada")
    assert declined is not None and declined.declined == ("scone",)
    gc.collect()
    for entry in (built, again, declined):
        held = [entry.order_ids, entry.order_times, entry.items, entry.copurchase,
                entry.declined, *entry.items.values(), *entry.copurchase.values()]  # fmt: skip
        assert [gc.is_tracked(x) for x in held] == [False] * len(held)
    reco.close()


def test_the_ranking_basis_summed_once_gives_the_direct_sum_at_any_later_time(
    settings: Settings,
) -> None:
    """The repeat confidence is summed once per entry as of its newest order and scaled
    to the request's time; at any later time it must equal the sum taken afresh, and a
    new order must not be answered from the old sums."""
    from storelens.recommend.suggestions import Showing, personal

    half = settings.recommend_half_life_days * 86400.0
    base = NOW.timestamp()
    entry = CustomerCandidates("ada", consent=True)
    for n, days in enumerate((60, 41, 30, 9, 3)):
        entry.apply_order(f"o{n}", base - days * 86400, ["latte", *(["scone"] * (n % 2))])
    pop = evidence.Popularity(orders=20, counts={"latte": 8, "scone": 1}, days=28)

    def direct(product: str, now: float) -> float:
        weight = lambda t: 0.5 ** ((now - t) / half)  # noqa: E731
        share = pop.counts[product] / pop.orders
        mine = sum(weight(t) for t in entry.items[product])
        return (mine + share) / (sum(weight(t) for t in entry.order_times) + 1.0)

    for later in (0, 0.5, 7, 400):
        now = base + later * 86400
        got = personal(settings, entry, pop, now, {})
        for product in ("latte", "scone"):
            assert got[product][0] == pytest.approx(direct(product, now), rel=1e-12)
    assert entry.basis is not None  # kept on the entry after the first request
    before = personal(settings, entry, pop, base, {})["scone"][0]
    entry.apply_order("o-new", base, ["scone"])
    after = personal(settings, entry, pop, base, {})["scone"][0]
    assert after > before
    assert after == pytest.approx(direct("scone", base), rel=1e-12)

    # The explanation's counts are the window's, as of the request's time.
    def shown(now: float) -> dict[str, Any]:
        confidence, shows = personal(settings, entry, pop, now, {})["scone"]
        rec = shows.show("scone", confidence, 1.0, None, Showing(settings, entry, now, {}))
        assert rec.confidence == confidence and rec.source == "repeat"
        return rec.evidence

    assert shown(base)["times_bought"] == 3 and shown(base)["times_bought_ever"] == 3
    days = settings.recommend_history_days
    assert shown(base + (days - 5) * 86400)["times_bought"] == 1  # only the new one is in
