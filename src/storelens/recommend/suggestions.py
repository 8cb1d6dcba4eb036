"""From evidence to a ranked, explained list: the per-request re-rank, kept cheap.

Each candidate carries a probability that it is in the customer's next basket, and
that probability is the confidence shown:

* a repeat item: the time-decayed share of the customer's orders holding it, shrunk
  toward the store's daypart share (``(d_item + s) / (d_orders + 1)``): a customer
  with one order is not 100 % sure to buy its items again;
* a co-purchase: P(item | anchor) from all orders, times the anchor's own repeat
  probability;
* popularity: the share of this store's orders in this daypart holding it.

The order is confidence times a zone bonus (the item sits in the zone the customer
stands in). A customer scored by the learned blend at ``recommend train``
(:mod:`storelens.recommend.blend_scores`) gets the items it scored first, ordered by
blend score times the same bonus, then the rest by confidence; the confidence shown
and the explanation stay the evidence's. The rules then drop what may not be shown. A
request sorts plain tuples and builds a :class:`Recommendation` only for the ``k`` it
returns: the store's popular list is built once per store and daypart and shared.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CoPurchase, CustomerCandidates, RankingBasis

__all__ = ["Candidate", "Recommendation", "personal", "pick", "popular", "ranking_basis"]


@dataclass(frozen=True, slots=True)
class Recommendation:
    product_id: str
    score: float
    confidence: float
    explanation: str
    source: str
    evidence: dict[str, Any] = field(default_factory=dict)
    name: str | None = None

    def shown(self, score: float, name: str | None) -> Recommendation:
        return Recommendation(
            self.product_id, score, self.confidence, self.explanation, self.source,
            self.evidence, name,
        )  # fmt: skip


class Candidate(Protocol):
    """What ``pick`` ranks: a confidence now, the words and evidence only if shown.

    A customer's repeat and co-purchase candidates are ranked on every request, but
    only ``k`` are shown: their explanations and evidence are written for those
    alone (building them for all cost more than the ranking)."""

    @property
    def product_id(self) -> str: ...

    @property
    def confidence(self) -> float: ...

    def shown(self, score: float, name: str | None) -> Recommendation: ...


class _Repeat:
    """One of the customer's own items: its probability, its true counts when shown."""

    __slots__ = ("_days", "_orders", "_since", "_span", "_times", "confidence", "product_id")

    def __init__(
        self, product: str, p: float, times: tuple[float, ...], since: float, days: int,
        span: str, orders: int,
    ) -> None:  # fmt: skip
        self.product_id, self.confidence = product, p
        self._times, self._since, self._days, self._span = times, since, days, span
        self._orders = orders

    def shown(self, score: float, name: str | None) -> Recommendation:
        times = self._times
        recent = len(times) - bisect_left(times, self._since)  # sorted, newest last
        if recent:
            text = f"you bought this {_times(recent)} in the last {self._span}"
        else:
            last = datetime.fromtimestamp(times[-1], UTC).date().isoformat()
            text = f"you bought this {_times(len(times))}, last on {last}"
        return Recommendation(
            self.product_id, score, self.confidence, text, "repeat",
            {
                "times_bought": recent,
                "window_days": self._days,
                "times_bought_ever": len(times),
                "orders": self._orders,
                "last_bought": times[-1],
            },
            name,
        )  # fmt: skip


class _Together:
    """An item often bought with one of the customer's own (the anchor)."""

    __slots__ = ("_catalogue", "_co", "confidence", "product_id")

    def __init__(
        self, product: str, p: float, co: CoPurchase, catalogue: dict[str, evidence.ProductInfo]
    ) -> None:
        self.product_id, self.confidence = product, p
        self._co, self._catalogue = co, catalogue

    def shown(self, score: float, name: str | None) -> Recommendation:
        anchor, together, anchor_orders = self._co
        info = self._catalogue.get(anchor)
        return Recommendation(
            self.product_id, score, self.confidence,
            f"people who buy {info.name if info else anchor} often add this: {together} of "
            f"{anchor_orders} orders with it",
            "copurchase",
            {"anchor": anchor, "together": together, "anchor_orders": anchor_orders},
            name,
        )  # fmt: skip


def _months(days: int) -> str:
    if days % 30 == 0:
        return "month" if days == 30 else f"{days // 30} months"
    return f"{days} days"


def _times(n: int) -> str:
    """Words a salesperson reads aloud: "once", "twice", "3 times"."""
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def popular(pop: evidence.Popularity, daypart: str) -> dict[str, Recommendation]:
    """The store's list for one daypart (the same for everyone: built once, shared)."""
    out: dict[str, Recommendation] = {}
    when = "" if daypart == "all" else f" in the {daypart}"
    for product, n in pop.counts.items():
        p = n / pop.orders
        out[product] = Recommendation(
            product, p, p,
            f"popular at this store{when}: in {n} of {pop.orders} orders in the last "
            f"{pop.days} days",
            "popularity",
            {"orders_with_item": n, "orders": pop.orders, "days": pop.days, "daypart": daypart},
        )  # fmt: skip
    return out


def personal(
    settings: Settings,
    entry: CustomerCandidates,
    pop: evidence.Popularity,
    catalogue: dict[str, evidence.ProductInfo],
    now: float,
) -> dict[str, Candidate]:
    """The customer's repeat and co-purchase candidates, each with its true counts."""
    half = settings.recommend_half_life_days * 86400.0
    days = settings.recommend_history_days
    window = now - days * 86400.0
    span = _months(days)
    _, as_of, d_orders, d_items, together = ranking_basis(entry, half)
    scale = 0.5 ** ((now - as_of) / half)  # every weight decays alike from "as of" to now
    below = scale * d_orders + 1.0
    counts, pop_orders, n_orders = pop.counts, pop.orders, len(entry.order_times)
    out: dict[str, Candidate] = {}
    for product, times in entry.items.items():
        share = counts.get(product, 0) / pop_orders if pop_orders else 0.0
        p = (scale * d_items[product] + share) / below
        out[product] = _Repeat(product, p, times, window, days, span, n_orders)
    for product, anchor, ratio, co in together:
        out[product] = _Together(product, out[anchor].confidence * ratio, co, catalogue)
    return out


def ranking_basis(entry: CustomerCandidates, half: float) -> RankingBasis:
    """The customer's orders and each item counted with weight 0.5 ** (age / half),
    ages taken at their newest order (and the co-purchases a request ranks, see
    :data:`RankingBasis`): the same as of any later time, times one factor
    (``0.5 ** (elapsed / half)``). So they are summed once per entry, not once per
    request over every purchase time, and kept on the entry. Entries are shared and
    read-only to serving; this is the one thing it adds, a value derived from them
    alone (two requests racing to add it add the same)."""
    held = entry.basis
    if held is not None and held[0] == half:
        return held
    newest = [entry.order_times[-1]] if entry.order_times else []
    as_of = max(newest + [times[-1] for times in entry.items.values() if times], default=0.0)
    # Every item time is an order time: each weight is computed once per order.
    weight = {t: 0.5 ** ((as_of - t) / half) for t in entry.order_times}
    d_orders = sum([weight[t] for t in entry.order_times])
    d_items = {
        product: sum([weight.get(t) or 0.5 ** ((as_of - t) / half) for t in times])
        for product, times in entry.items.items()
    }
    # Which co-purchases a request ranks depends on the entry alone: items the customer
    # never bought, anchored on one they did (the anchor's confidence is the request's).
    together = tuple(
        [
            (product, co[0], co[1] / co[2], co)
            for product, co in entry.copurchase.items()
            if product not in d_items and co[0] in d_items
        ]
    )
    entry.basis = (half, as_of, d_orders, d_items, together)
    return entry.basis


def pick(
    settings: Settings,
    ranked: Mapping[str, Candidate],
    entry: CustomerCandidates | None,
    blocked: set[str],
    zone: str | None,
    catalogue: dict[str, evidence.ProductInfo],
    now: float,
    k: int,
) -> list[Recommendation]:
    """The rules, then the top ``k``: nothing blocked (out of stock here, declined),
    nothing bought in the last ``recommend_recent_days`` unless a staple, at most
    ``recommend_category_cap`` per category."""
    recent_cut = now - settings.recommend_recent_days * 86400.0
    staple = settings.recommend_staple_orders
    boost = 1.0 + settings.recommend_zone_boost
    bought = entry.items if entry is not None else {}
    # A customer scored by the learned blend gets its items first, by blend score;
    # the rest (and everyone unscored) by confidence: (tier, -score, product).
    blend = entry.blend if entry is not None else {}
    # (tier, -score, product, product info): products are unique, so the info is
    # never compared; it rides along to save a second catalogue lookup per item.
    scored: list[tuple[int, float, str, evidence.ProductInfo | None]] = []
    add, bought_get, info_get, blend_get = scored.append, bought.get, catalogue.get, blend.get
    for product, rec in ranked.items():
        if product in blocked:
            continue
        times = bought_get(product)
        if times and times[-1] >= recent_cut and len(times) < staple:
            continue
        info = info_get(product)
        bonus = boost if zone and info is not None and info.zone_id == zone else 1.0
        learned = blend_get(product)
        if learned is None:
            add((1, -rec.confidence * bonus, product, info))
        else:
            add((0, -learned * bonus, product, info))
    scored.sort()
    cap = settings.recommend_category_cap
    per_category: dict[str, int] = {}
    picked: list[Recommendation] = []
    for _, neg_score, product, info in scored:
        category = info.category if info else product
        taken = per_category.get(category, 0)
        if taken >= cap:
            continue
        per_category[category] = taken + 1
        picked.append(ranked[product].shown(-neg_score, info.name if info else None))
        if len(picked) == k:
            break
    return picked
