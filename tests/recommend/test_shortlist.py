"""Merging the customer's candidates into the pre-sorted popular list gives exactly
the full ranking.

Random stores (ties in confidence included, zones, category caps, blocked and
recently bought items, personal candidates that beat or lose to the store's, items
the learned blend scored for the customer, which rank ahead of the rest) are
ranked both ways.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Iterator

import orjson
import pytest

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates
from storelens.recommend.shortlist import Keyed, pick_shortlisted, popular_order
from storelens.recommend.suggestions import (
    Candidate,
    Recommendation,
    Showing,
    as_candidate,
    personal,
    popular,
)

NOW = 1_800_000_000.0
DAY = 86400.0
NEW = ["new1", "new2", "new3", "new4"]  # personal candidates the store never sold


def _case(rng: random.Random) -> dict[str, object]:
    n = rng.randint(1, 120)
    products = [f"p{i:03d}" for i in range(n)]
    orders = rng.randint(1, 200)
    counts = {p: rng.randint(1, min(orders, 12)) for p in products}  # many ties
    categories = rng.randint(1, 4)  # few: the category cap cuts the head short, and
    # a category of only unpopular items sits wholly in the tail, past any head
    catalogue = {
        p: evidence.ProductInfo(
            p.upper(),
            "rare" if counts[p] == 1 else f"c{rng.randrange(categories)}",
            rng.choice([None, "z1", "z2"]),
        )
        for p in products
    }
    pop = evidence.Popularity(orders, counts, 30)
    store = popular(pop, "all")
    entry = CustomerCandidates("cust")
    mine: dict[str, Candidate] = {}
    for p in rng.sample([*products, *NEW], rng.randint(0, min(n + 4, 12))):
        low = rng.random() * 0.01  # below the head: only the check keeps it out
        conf = rng.choice([rng.random(), low, store[p][0] if p in store else 0.5])
        mine[p] = as_candidate(Recommendation(p, conf, conf, "mine", "repeat", {}))
        times = sorted(NOW - rng.uniform(0, 3) * DAY for _ in range(rng.randint(1, 4)))
        entry.items[p] = tuple(times)
    if rng.random() < 0.5:  # scored by the learned blend: often items deep in the tail
        for p in rng.sample([*products, *NEW], rng.randint(1, min(n + 4, 15))):
            entry.blend[p] = rng.random()
    blocked = set(rng.sample(products, rng.randint(0, min(n, 30))))
    return {
        "catalogue": catalogue, "store": store, "entry": entry, "mine": mine,
        "blocked": blocked, "zone": rng.choice([None, "z1", "z2", "nowhere"]),
        "k": rng.choice([1, 3, 10, 25]),
    }  # fmt: skip


def _full(settings: Settings, c: dict[str, object]) -> list[Recommendation]:
    store: dict[str, Candidate] = c["store"]  # type: ignore[assignment]
    mine: dict[str, Candidate] = c["mine"]  # type: ignore[assignment]
    ranked = dict(store)
    for product, candidate in mine.items():
        current = ranked.get(product)
        if current is None or candidate[0] >= current[0]:
            ranked[product] = candidate
    return _reference(settings, ranked, c["entry"], c["blocked"], c["zone"], c["catalogue"],  # type: ignore[arg-type]
                      c["k"])  # type: ignore[arg-type]  # fmt: skip


def _reference(
    settings: Settings,
    ranked: dict[str, Candidate],
    entry: CustomerCandidates,
    blocked: set[str],
    zone: str | None,
    catalogue: dict[str, evidence.ProductInfo],
    k: int,
) -> list[Recommendation]:
    """The rules as the docs state them, written plainly and apart from the code under
    test: every candidate keyed (the blend's items first by blend score, the rest by
    confidence, each times the zone bonus), sorted, walked with the rules until k."""
    recent_cut = NOW - settings.recommend_recent_days * DAY
    boost = 1.0 + settings.recommend_zone_boost
    keyed = []
    for product, (confidence, _) in ranked.items():
        times = entry.items.get(product)
        recent = bool(times) and times[-1] >= recent_cut  # type: ignore[index]
        if product in blocked or (recent and len(times) < settings.recommend_staple_orders):  # type: ignore[arg-type]
            continue
        info = catalogue.get(product)
        bonus = boost if zone and info is not None and info.zone_id == zone else 1.0
        blend = entry.blend.get(product)
        tier, score = (1, confidence) if blend is None else (0, blend)
        keyed.append((tier, -score * bonus, product))
    keyed.sort()
    how = Showing(settings, entry, NOW, catalogue)
    per_category: dict[str, int] = {}
    out: list[Recommendation] = []
    for _, neg, product in keyed:
        info = catalogue.get(product)
        category = info.category if info else product
        if per_category.get(category, 0) >= settings.recommend_category_cap:
            continue
        per_category[category] = per_category.get(category, 0) + 1
        confidence, shows = ranked[product]
        out.append(shows.show(product, confidence, -neg, info.name if info else None, how))
        if len(out) == k:
            break
    return out


class _Counted(list[Keyed]):
    """A popular order that counts how many of its items a request read."""

    read = 0

    def __iter__(self) -> Iterator[Keyed]:
        for item in super().__iter__():
            self.read += 1
            yield item


def test_the_merge_ranks_exactly_as_the_whole_list() -> None:
    settings = Settings(recommend_category_cap=2)
    rng = random.Random(15)
    cut_short = exhausted = blend_first = 0
    for _ in range(1000):
        c = _case(rng)
        store: dict[str, Candidate] = c["store"]  # type: ignore[assignment]
        order = _Counted(popular_order(settings, store, c["catalogue"], c["zone"]))  # type: ignore[arg-type]
        got = pick_shortlisted(
            settings, store, order, c["mine"], c["entry"], c["blocked"], c["zone"],  # type: ignore[arg-type]
            c["catalogue"], NOW, c["k"],  # type: ignore[arg-type]
        )  # fmt: skip
        assert got == _full(settings, c)
        cut_short += order.read < len(order)
        exhausted += order.read == len(order) and len(got) < c["k"]  # type: ignore[operator]
        entry: CustomerCandidates = c["entry"]  # type: ignore[assignment]
        blend_first += bool(got) and got[0].product_id in entry.blend
    assert cut_short > 300 and exhausted > 50 and blend_first > 50  # every case, checked


def test_the_first_items_blocked_the_answer_comes_from_further_down() -> None:
    """The store's first 24 items blocked: the answer still holds k items, the next."""
    settings = Settings()
    pop = evidence.Popularity(100, {f"p{i:03d}": 100 - i for i in range(80)}, 30)
    store = popular(pop, "all")
    catalogue = {p: evidence.ProductInfo(p, p, None) for p in store}
    order = popular_order(settings, store, catalogue, None)
    blocked = {o[2] for o in order[:24]}
    got = pick_shortlisted(settings, store, order, {}, None, blocked, None, catalogue, NOW, 5)
    assert [r.product_id for r in got] == [o[2] for o in order[24:29]]
    assert not blocked & {r.product_id for r in got}


def test_the_zone_order_follows_the_zone_bonus() -> None:
    settings = Settings(recommend_zone_boost=1.0)
    pop = evidence.Popularity(10, {"a": 6, "b": 4}, 30)
    store = popular(pop, "all")
    catalogue = {
        "a": evidence.ProductInfo("A", "x", "z1"),
        "b": evidence.ProductInfo("B", "y", "z2"),
    }
    assert [o[2] for o in popular_order(settings, store, catalogue, None)] == ["a", "b"]
    assert [o[2] for o in popular_order(settings, store, catalogue, "z2")] == ["b", "a"]
    assert [o[2] for o in popular_order(settings, store, catalogue, "")] == ["a", "b"]


def test_with_real_repeat_and_co_purchase_candidates_the_merge_ranks_as_the_whole_list() -> None:
    """The customer's own items and co-purchases as serving builds them (their words
    written only when shown): the same answer, words and evidence included, both ways."""
    settings = Settings(recommend_category_cap=2)
    rng = random.Random(23)
    left_out = 0
    for _ in range(500):
        c = _case(rng)
        store: dict[str, Candidate] = c["store"]  # type: ignore[assignment]
        entry: CustomerCandidates = c["entry"]  # type: ignore[assignment]
        products = [*store, *NEW]
        entry.order_times = tuple(sorted({t for ts in entry.items.values() for t in ts}))
        entry.order_ids = tuple(f"o{i}" for i in range(len(entry.order_times)))
        for p in rng.sample(products, rng.randint(0, min(len(products), 20))):
            if p not in entry.items and entry.items:
                anchor = rng.choice(sorted(entry.items))
                entry.copurchase[p] = (anchor, rng.randint(1, 9), rng.randint(10, 40))
        pop = evidence.Popularity(50, {p: rng.randint(1, 50) for p in store}, 30)
        c["mine"] = personal(settings, entry, pop, NOW, {})  # nothing to beat: every one
        order = popular_order(settings, store, c["catalogue"], c["zone"])  # type: ignore[arg-type]
        got = pick_shortlisted(
            settings, store, order, c["mine"], entry, c["blocked"], c["zone"],  # type: ignore[arg-type]
            c["catalogue"], NOW, c["k"],  # type: ignore[arg-type]
        )  # fmt: skip
        assert got == _full(settings, c)
        assert all(r.explanation for r in got)
        # Serving asks only for the candidates that beat the store's own: the same list.
        mine: dict[str, Candidate] = c["mine"]  # type: ignore[assignment]
        beating = personal(settings, entry, pop, NOW, store)
        assert beating == {p: m for p, m in mine.items() if p not in store or m[0] >= store[p][0]}
        again = pick_shortlisted(
            settings, store, order, beating, entry, c["blocked"], c["zone"],  # type: ignore[arg-type]
            c["catalogue"], NOW, c["k"],  # type: ignore[arg-type]
        )  # fmt: skip
        assert again == got
        left_out += len(beating) < len(mine)
    assert left_out > 50  # candidates that lose to the store's were left out


def test_a_popular_item_at_a_customers_blend_score_is_never_kept() -> None:
    """A blend score is personal data: the popular item shown at it is built for that
    answer alone, not kept on the shared list or in the API's JSON cache (a review
    found both keeping it, out of an erasure's reach)."""
    from storelens.api.routers import recommendations as route
    from storelens.recommend.context import Context
    from storelens.recommend.engine import Answer

    settings = Settings()
    pop = evidence.Popularity(10, {"tea": 6, "cake": 4}, 30)
    store = popular(pop, "all")
    catalogue = {"tea": evidence.ProductInfo("Tea", "drinks", None),
                 "cake": evidence.ProductInfo("Cake", "food", None)}  # fmt: skip
    order = popular_order(settings, store, catalogue, None)
    alice = CustomerCandidates("alice", consent=True, blend={"cake": 0.8731234567})
    mine = pick_shortlisted(settings, store, order, {}, alice, set(), None, catalogue, NOW, 2)
    assert [(r.product_id, r.shared) for r in mine] == [("cake", False), ("tea", True)]
    assert mine[0].score == 0.8731234567
    route._SHARED_DOCS.clear()
    route.answer_json(Answer("alice", "cafe-01", True, None, Context(), mine))
    kept = [orjson.loads(orjson.dumps(text)) for text in route._SHARED_DOCS.values()]
    assert [doc["product_id"] for doc in kept] == ["tea"]
    # The shared list shows anyone else the store's own figures, never alice's score.
    bob = pick_shortlisted(settings, store, order, {}, None, set(), None, catalogue, NOW, 2)
    assert [(r.product_id, r.score) for r in bob] == [("tea", 0.6), ("cake", 0.4)]
    assert all(r.shared for r in bob)
    assert 0.8731234567 not in {r.score for r in bob}


def test_a_shown_item_compares_by_what_it_says_and_cannot_be_changed() -> None:
    """A named tuple since 2026-12-07 (cheaper to build than a frozen dataclass): the
    dataclass's semantics kept. ``shared`` (how an item is held) is not compared, a
    plain tuple of the same values is no item, items have no order, and no field can
    be set."""
    evidence_ = {"times_bought": 3}
    held = Recommendation("tea", 0.5, 0.4, "you bought this 3 times", "repeat", evidence_, "Tea")
    assert held == held._replace(shared=True)
    assert held != held._replace(score=0.6)
    assert held != held._replace(name=None)
    assert held != tuple(held) and tuple(held) != held
    assert held.shown(0.7, "Tea") == held._replace(score=0.7)
    with pytest.raises(AttributeError):
        held.score = 0.9  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(held)
    for compare in (operator.lt, operator.le, operator.gt, operator.ge):
        with pytest.raises(TypeError, match="no order"):
            compare(held, held._replace(score=0.6))
    with pytest.raises(TypeError):
        sorted([(1, held), (1, held._replace(score=0.6))])  # a tie reaches the items
