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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates

__all__ = ["Recommendation", "personal", "pick", "popular"]


@dataclass(frozen=True, slots=True)
class Recommendation:
    product_id: str
    score: float
    confidence: float
    explanation: str
    source: str
    evidence: dict[str, Any] = field(default_factory=dict)
    name: str | None = None


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
) -> dict[str, Recommendation]:
    """The customer's repeat and co-purchase candidates, each with its true counts."""
    half = settings.recommend_half_life_days * 86400.0
    days = settings.recommend_history_days
    window = now - days * 86400.0
    span = _months(days)
    # Every item time is an order time: each decay weight is computed once per order,
    # not once per item in it (the same floats, summed in the same order).
    weight = {t: 0.5 ** ((now - t) / half) for t in entry.order_times}
    d_orders = sum([weight[t] for t in entry.order_times])
    below = d_orders + 1.0
    counts, pop_orders, n_orders = pop.counts, pop.orders, len(entry.order_times)
    out: dict[str, Recommendation] = {}
    for product, times in entry.items.items():
        share = counts.get(product, 0) / pop_orders if pop_orders else 0.0
        d_item = sum([weight.get(t) or 0.5 ** ((now - t) / half) for t in times])
        p = (d_item + share) / below
        recent = len(times) - bisect_left(times, window)  # times are sorted, newest last
        if recent:
            text = f"you bought this {_times(recent)} in the last {span}"
        else:
            last = datetime.fromtimestamp(times[-1], UTC).date().isoformat()
            text = f"you bought this {_times(len(times))}, last on {last}"
        out[product] = Recommendation(
            product, p, p, text, "repeat",
            {
                "times_bought": recent,
                "window_days": days,
                "times_bought_ever": len(times),
                "orders": n_orders,
                "last_bought": times[-1],
            },
        )  # fmt: skip
    for product, co in entry.copurchase.items():
        if product in out or co.anchor not in out:
            continue
        p = out[co.anchor].confidence * co.together / co.anchor_orders
        anchor = catalogue.get(co.anchor)
        name = anchor.name if anchor else co.anchor
        out[product] = Recommendation(
            product, p, p,
            f"people who buy {name} often add this: {co.together} of {co.anchor_orders} "
            "orders with it",
            "copurchase",
            {"anchor": co.anchor, "together": co.together, "anchor_orders": co.anchor_orders},
        )  # fmt: skip
    return out


def pick(
    settings: Settings,
    ranked: dict[str, Recommendation],
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
    scored: list[tuple[int, float, str]] = []
    for product, rec in ranked.items():
        if product in blocked:
            continue
        times = bought.get(product)
        if times and times[-1] >= recent_cut and len(times) < staple:
            continue
        info = catalogue.get(product)
        bonus = boost if zone and info is not None and info.zone_id == zone else 1.0
        learned = blend.get(product)
        if learned is None:
            scored.append((1, -rec.confidence * bonus, product))
        else:
            scored.append((0, -learned * bonus, product))
    scored.sort()
    per_category: dict[str, int] = {}
    picked: list[Recommendation] = []
    for _, neg_score, product in scored:
        info = catalogue.get(product)
        category = info.category if info else product
        if per_category.get(category, 0) >= settings.recommend_category_cap:
            continue
        per_category[category] = per_category.get(category, 0) + 1
        rec = ranked[product]
        picked.append(
            Recommendation(
                product, -neg_score, rec.confidence, rec.explanation, rec.source, rec.evidence,
                info.name if info else None,
            )
        )  # fmt: skip
        if len(picked) == k:
            break
    return picked
