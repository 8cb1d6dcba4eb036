"""What the claimer could offer the customer, each with the reason a salesperson can say.

The recommendations engine plugs in here through :class:`Suggester` (the API layer
adapts it, since staff and recommend are sibling domains); where the engine has
nothing personal to say, :class:`PurchaseHistorySuggester` works from purchases
alone, two ways a person behind a counter would:

* **their usual**: what this customer bought most often ("flat white, 7 times,
  last on 2 Nov"), because the strongest predictor of a café or grocery basket is
  the customer's own past baskets;
* **goes with their usual**: what other customers' baskets with that product
  most often also held, and this customer never bought ("in 34% of baskets with
  flat white"), so the second suggestion is something new rather than a repeat.

Scoring is pure (:func:`rank_suggestions`); the class only reads the rows it needs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, select

from storelens.sales import Order
from storelens.storage.tables import order_lines, products

__all__ = [
    "PurchaseHistorySuggester",
    "Suggester",
    "Suggestion",
    "rank_suggestions",
]


@dataclass(frozen=True, slots=True)
class Suggestion:
    product_id: str
    name: str
    reason: str
    score: float
    source: str  # "usual" | "complement" | the engine that made it


class Suggester(Protocol):
    """Anything that proposes products for a customer, best first, with reasons.

    ``store_id`` is the store the customer stands in (the notice's: stock and what is
    popular there differ by store); ``actor`` is who will see the list, for the
    record of recommendations shown. ``customer_ids`` are all the person's ids, the
    canonical one first."""

    def suggest(
        self,
        conn: Connection,
        customer_ids: Sequence[str],
        history: Sequence[Order],
        limit: int,
        *,
        store_id: str,
        actor: str,
    ) -> list[Suggestion]: ...


def rank_suggestions(
    history: Sequence[Order],
    companions: Mapping[str, Mapping[str, int]],
    baskets_with: Mapping[str, int],
    names: Mapping[str, str],
    limit: int,
) -> list[Suggestion]:
    """The customer's usual first, then what goes with it, alternating, best first.

    ``companions[p][q]`` counts other baskets holding both ``p`` and ``q``;
    ``baskets_with[p]`` counts other baskets holding ``p`` (the share's denominator)."""
    if limit <= 0:
        return []
    bought: Counter[str] = Counter()
    last: dict[str, Order] = {}
    for order in history:  # newest first
        for line in order.lines:
            pid = str(line["product_id"])
            bought[pid] += 1
            last.setdefault(pid, order)
    usual = [
        Suggestion(
            pid,
            names.get(pid, pid),
            f"their usual: bought {n} time{'s' if n != 1 else ''}, last on {last[pid].ts:%d %b %Y}",
            float(n),
            "usual",
        )
        for pid, n in sorted(bought.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    best: dict[str, Suggestion] = {}
    for anchor, _ in sorted(bought.items(), key=lambda kv: (-kv[1], kv[0]))[:3]:
        total = baskets_with.get(anchor, 0)
        for pid, together in companions.get(anchor, {}).items():
            if pid in bought or total == 0:
                continue
            share = together / total
            if pid not in best or share > best[pid].score:
                anchor_name = names.get(anchor, anchor)
                best[pid] = Suggestion(
                    pid,
                    names.get(pid, pid),
                    f"goes with their usual: in {share:.0%} of baskets with {anchor_name}",
                    share,
                    "complement",
                )
    complements = sorted(best.values(), key=lambda s: (-s.score, s.product_id))
    out: list[Suggestion] = []
    while len(out) < limit and (usual or complements):
        for pool in (usual, complements):
            if pool and len(out) < limit:
                out.append(pool.pop(0))
    return out


class PurchaseHistorySuggester:
    """Suggestions from purchases only; ``basket_sample`` bounds the co-basket read."""

    def __init__(self, basket_sample: int = 5000) -> None:
        self.basket_sample = basket_sample

    def suggest(
        self,
        conn: Connection,
        customer_ids: Sequence[str],
        history: Sequence[Order],
        limit: int,
        *,
        store_id: str = "",
        actor: str = "",
    ) -> list[Suggestion]:
        """``store_id`` and ``actor`` are not used: purchases count in every store."""
        mine = {(o.store_id, o.order_id) for o in history}
        anchors = Counter(str(li["product_id"]) for o in history for li in o.lines)
        top = [pid for pid, _ in anchors.most_common(3)]
        companions: dict[str, dict[str, int]] = {}
        baskets_with: dict[str, int] = {}
        for anchor in top:
            holding = (
                select(order_lines.c.store_id, order_lines.c.order_id)
                .where(order_lines.c.product_id == anchor)
                .order_by(order_lines.c.order_id.desc())
                .limit(self.basket_sample)
            ).subquery()
            contents: dict[tuple[str, str], set[str]] = {}
            rows = conn.execute(
                select(
                    order_lines.c.store_id, order_lines.c.order_id, order_lines.c.product_id
                ).join(
                    holding,
                    (order_lines.c.store_id == holding.c.store_id)
                    & (order_lines.c.order_id == holding.c.order_id),
                )
            )
            for r in rows:
                basket = (str(r.store_id), str(r.order_id))
                if basket not in mine:  # their own baskets say nothing about what is new
                    contents.setdefault(basket, set()).add(str(r.product_id))
            together = Counter(p for held in contents.values() for p in held if p != anchor)
            baskets_with[anchor] = len(contents)
            companions[anchor] = dict(together)
        wanted = set(anchors) | {p for c in companions.values() for p in c}
        names = {
            str(r.id): str(r.name)
            for r in conn.execute(
                select(products.c.id, products.c.name).where(products.c.id.in_(wanted))
            )
        }
        return rank_suggestions(history, companions, baskets_with, names, limit)
