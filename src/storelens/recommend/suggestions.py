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
and the explanation stay the evidence's. The rules then drop what may not be shown
(:mod:`storelens.recommend.shortlist`, which ranks). A request sorts plain tuples and
builds a :class:`Recommendation` only for the ``k`` it returns: the store's popular list
is built once per store and daypart and shared.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates, RankingBasis

__all__ = [
    "REPEAT",
    "TOGETHER",
    "Candidate",
    "Recommendation",
    "Showing",
    "Shows",
    "as_candidate",
    "personal",
    "popular",
    "ranking_basis",
]


class Recommendation(NamedTuple):
    """One shown item. A named tuple, not a frozen dataclass: a request builds about
    five (the customer's own items), and a frozen dataclass's ``__init__`` sets each
    field through ``object.__setattr__`` (0.92 µs an item against 0.27). Immutable all
    the same; ``evidence`` is shared by every answer showing the item, and read only
    (a dict, so the item is never hashable)."""

    product_id: str
    score: float
    confidence: float
    explanation: str
    source: str
    evidence: dict[str, Any]
    name: str | None = None
    # The same object in every answer that shows it, and about no customer: a store's
    # popular item at its own (or its zone-boosted) score. The API keeps its JSON text
    # from the first answer that shows it, so neither the item nor its evidence may
    # change after it is built. Only ``_Fixed`` sets it; a copy at another score must
    # pass ``shared=False`` (``shown()`` does; ``_replace`` would keep it). Kept last:
    # equality compares the fields before it.
    shared: bool = False

    def __eq__(self, other: object) -> bool:
        """Equal items say the same: ``shared`` (how one is held) is left out, and a
        plain tuple of the same values is not an item (as with the dataclass before).
        Hashing stays the tuple's, which fails on the evidence dict: never a key."""
        return isinstance(other, Recommendation) and self[:-1] == other[:-1]

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    # Items have no order (the dataclass had none): a sort that reaches them on a tie
    # must fail, not order them by their text.
    def __lt__(self, other: object) -> bool:
        raise TypeError("recommendations have no order; sort by a key")

    def __le__(self, other: object) -> bool:
        raise TypeError("recommendations have no order; sort by a key")

    def __gt__(self, other: object) -> bool:
        raise TypeError("recommendations have no order; sort by a key")

    def __ge__(self, other: object) -> bool:
        raise TypeError("recommendations have no order; sort by a key")

    def shown(self, score: float, name: str | None, shared: bool = False) -> Recommendation:
        return Recommendation(
            self.product_id, score, self.confidence, self.explanation, self.source,
            self.evidence, name, shared,
        )  # fmt: skip


assert Recommendation._fields[-1] == "shared"  # what ``__eq__`` leaves out


class Shows(Protocol):
    """What a ranked item becomes if it is shown: its words and evidence, written for
    the ``k`` shown alone (building them for every candidate cost more than the
    ranking)."""

    def show(
        self, product: str, confidence: float, score: float, name: str | None, how: Showing
    ) -> Recommendation: ...


Candidate = tuple[float, Shows]
"""(confidence, how it is shown): what a request ranks. A request ranks a few dozen of
these and shows ``k``; a pair costs a tuple, where an object per candidate cost most
of the ranking (about 0.4 µs each, two dozen co-purchases per customer)."""


class Showing:
    """What shown items are written from, once per request: the customer's entry, the
    request's time, the catalogue (anchor names) and the history window."""

    __slots__ = ("boost", "catalogue", "days", "entry", "span", "window")

    def __init__(
        self,
        settings: Settings,
        entry: CustomerCandidates | None,
        now: float,
        catalogue: Mapping[str, evidence.ProductInfo],
    ) -> None:
        self.entry, self.catalogue = entry, catalogue
        self.boost = 1.0 + settings.recommend_zone_boost  # as the ranking scores the zone's items
        self.days = settings.recommend_history_days
        self.window = now - self.days * 86400.0
        self.span = _months(self.days)


class _Fixed:
    """An item whose words do not depend on the customer (the store's popular items).

    Shown at its own score, or with the zone bonus, it is the same for everyone, so one
    of each is kept and handed out again (a race only builds an equal one twice). Shown
    at another score, the learned blend's for one customer, it is built afresh and never
    kept: that score is personal data (a review found it kept here and in the API's
    JSON cache, which no erasure reaches)."""

    __slots__ = ("_boosted", "_plain", "_rec")

    def __init__(self, rec: Recommendation) -> None:
        self._rec = rec
        self._plain: Recommendation | None = None
        self._boosted: Recommendation | None = None

    def show(
        self, product: str, confidence: float, score: float, name: str | None, how: Showing
    ) -> Recommendation:
        rec = self._rec
        plain = score == rec.confidence
        if not plain and score != rec.confidence * how.boost:
            return rec.shown(score, name)  # the blend's score for one customer
        held = self._plain if plain else self._boosted
        if held is None or held.name != name:
            held = rec.shown(score, name, shared=True)
            if plain:
                self._plain = held
            else:
                self._boosted = held
        return held


def as_candidate(rec: Recommendation) -> Candidate:
    """A ready-made recommendation as a candidate, shown as it is (its score and the
    catalogue's name set)."""
    return rec.confidence, _Fixed(rec)


class _Repeat:
    """One of the customer's own items: its true counts in the window, when shown."""

    __slots__ = ()

    def show(
        self, product: str, confidence: float, score: float, name: str | None, how: Showing
    ) -> Recommendation:
        entry = how.entry
        assert entry is not None  # only personal answers hold repeat candidates
        times = entry.items[product]
        recent = len(times) - bisect_left(times, how.window)  # sorted, newest last
        if recent:
            text = f"you bought this {_times(recent)} in the last {how.span}"
        else:
            last = datetime.fromtimestamp(times[-1], UTC).date().isoformat()
            text = f"you bought this {_times(len(times))}, last on {last}"
        return Recommendation(
            product, score, confidence, text, "repeat",
            {
                "times_bought": recent,
                "window_days": how.days,
                "times_bought_ever": len(times),
                "orders": len(entry.order_times),
                "last_bought": times[-1],
            },
            name,
        )  # fmt: skip


class _Together:
    """An item often bought with one of the customer's own (the anchor)."""

    __slots__ = ()

    def show(
        self, product: str, confidence: float, score: float, name: str | None, how: Showing
    ) -> Recommendation:
        assert how.entry is not None  # only personal answers hold co-purchases
        anchor, together, anchor_orders = how.entry.copurchase[product]
        info = how.catalogue.get(anchor)
        return Recommendation(
            product, score, confidence,
            f"people who buy {info.name if info else anchor} often add this: {together} of "
            f"{anchor_orders} orders with it",
            "copurchase",
            {"anchor": anchor, "together": together, "anchor_orders": anchor_orders},
            name,
        )  # fmt: skip


REPEAT: Shows = _Repeat()
TOGETHER: Shows = _Together()


def _months(days: int) -> str:
    if days % 30 == 0:
        return "month" if days == 30 else f"{days // 30} months"
    return f"{days} days"


_SAID = {1: "once", 2: "twice"}


def _times(n: int) -> str:
    """Words a salesperson reads aloud: "once", "twice", "3 times"."""
    return _SAID.get(n) or f"{n} times"


def popular(pop: evidence.Popularity, daypart: str) -> dict[str, Candidate]:
    """The store's list for one daypart (the same for everyone: built once, shared)."""
    out: dict[str, Candidate] = {}
    when = "" if daypart == "all" else f" in the {daypart}"
    for product, n in pop.counts.items():
        p = n / pop.orders
        out[product] = as_candidate(Recommendation(
            product, p, p,
            f"popular at this store{when}: in {n} of {pop.orders} orders in the last "
            f"{pop.days} days",
            "popularity",
            {"orders_with_item": n, "orders": pop.orders, "days": pop.days, "daypart": daypart},
        ))  # fmt: skip
    return out


def personal(
    settings: Settings,
    entry: CustomerCandidates,
    pop: evidence.Popularity,
    now: float,
    against: Mapping[str, Candidate],
) -> dict[str, Candidate]:
    """The customer's repeat and co-purchase candidates that are at least as confident
    as the store's own for the same item (``against``, the store's popular list; the
    others lose to it in any ranking), with their probabilities now. Against an empty
    list, every candidate."""
    half = settings.recommend_half_life_days * 86400.0
    _, as_of, d_orders, d_items, together = ranking_basis(entry, half)
    scale = 0.5 ** ((now - as_of) / half)  # every weight decays alike from "as of" to now
    below = scale * d_orders + 1.0
    counts, pop_orders, store = pop.counts, pop.orders, against.get
    confidence: dict[str, float] = {}  # every repeat item's: co-purchases anchor on them
    out: dict[str, Candidate] = {}
    for product, d_item in d_items.items():
        share = counts.get(product, 0) / pop_orders if pop_orders else 0.0
        mine = confidence[product] = (scale * d_item + share) / below
        theirs = store(product)
        if theirs is None or mine >= theirs[0]:
            out[product] = (mine, REPEAT)
    for product, anchor, ratio in together:
        mine = confidence[anchor] * ratio
        theirs = store(product)
        if theirs is None or mine >= theirs[0]:
            out[product] = (mine, TOGETHER)
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
            (product, co[0], co[1] / co[2])
            for product, co in entry.copurchase.items()
            if product not in d_items and co[0] in d_items
        ]
    )
    entry.basis = (half, as_of, d_orders, d_items, together)
    return entry.basis
