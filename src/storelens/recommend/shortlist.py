"""The rules, then the top ``k``: what a request ranks, and how it ranks little.

The rule: every candidate keyed (the learned blend's items first, by blend score,
then the rest by confidence, each times the zone bonus), sorted, and walked with the
rules (nothing blocked, nothing bought lately unless a staple, a cap per category)
until ``k`` are kept.

A request ranks the store's whole popular list with the customer's few candidates,
and the popular list's keys only change with the popularity snapshot, the catalogue
and the zone the customer stands in: :func:`popular_order` keys and sorts it once per
(store, daypart, zone). :func:`pick_shortlisted` then sorts only the customer's own
candidates that beat the store's and the popular items the blend scored (a handful),
merges the two sorted lists and reads until ``k`` are kept: a dozen of the store's
items looked at, not all of them, and the same list as the rule applied to the whole
union (a randomised test holds the two equal against a plain reference written in
the test). An earlier version ranked a guessed head of the popular order and fell
back to the whole list when it could not show the head sufficed; the merge needs
neither the guess nor the check."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates
from storelens.recommend.suggestions import Candidate, Recommendation, Showing

__all__ = ["Blocked", "Keyed", "PopularOrder", "pick_shortlisted", "popular_order"]


class Blocked(AbstractSet[str]):
    """Out of stock in this store or declined by this customer, asked item by item.

    The store's out-of-stock set is shared by every request and may be large; joining
    it with a customer's declines copied it on every request for a customer with one
    decline (a security review: 2.9 s a request with a million items marked out)."""

    __slots__ = ("_declined", "_stock")

    def __init__(self, stock: AbstractSet[str], declined: AbstractSet[str]) -> None:
        self._stock, self._declined = stock, declined

    def __contains__(self, item: object) -> bool:
        return item in self._declined or item in self._stock

    def __iter__(self) -> Iterator[str]:
        yield from self._stock
        yield from (d for d in self._declined if d not in self._stock)

    def __len__(self) -> int:
        return len(self._stock) + sum(1 for d in self._declined if d not in self._stock)


Keyed = tuple[int, float, str, "evidence.ProductInfo | None"]
"""How a candidate is ordered: (tier, -score, product, product info). Tier 0 holds
the items the learned blend scored (by blend score), tier 1 the rest (by confidence),
each times the zone bonus. Products are unique, so the info is never compared; it rides
along to save a second catalogue lookup per item."""


class _Rules:
    """What may be shown to this customer now, and how it is ordered: read once per
    request."""

    __slots__ = ("blend", "blocked", "boost", "bought", "recent_cut", "staple")

    def __init__(
        self,
        settings: Settings,
        entry: CustomerCandidates | None,
        blocked: AbstractSet[str],
        now: float,
    ) -> None:
        self.recent_cut = now - settings.recommend_recent_days * 86400.0
        self.staple = settings.recommend_staple_orders
        self.boost = 1.0 + settings.recommend_zone_boost
        self.bought: Mapping[str, Sequence[float]] = entry.items if entry is not None else {}
        self.blend: Mapping[str, float] = entry.blend if entry is not None else {}
        self.blocked = blocked

    def keyed(
        self,
        ranked: Mapping[str, Candidate],
        zone: str | None,
        catalogue: Mapping[str, evidence.ProductInfo],
    ) -> list[Keyed]:
        """``ranked`` less what may not be shown, keyed and sorted."""
        blocked, recent_cut, staple, boost = self.blocked, self.recent_cut, self.staple, self.boost
        scored: list[Keyed] = []
        add, bought_get, info_get, blend_get = (
            scored.append, self.bought.get, catalogue.get, self.blend.get,
        )  # fmt: skip
        for product, (confidence, _) in ranked.items():
            if product in blocked:
                continue
            times = bought_get(product)
            if times and times[-1] >= recent_cut and len(times) < staple:
                continue
            info = info_get(product)
            bonus = boost if zone and info is not None and info.zone_id == zone else 1.0
            learned = blend_get(product)
            if learned is None:
                add((1, -confidence * bonus, product, info))
            else:
                add((0, -learned * bonus, product, info))
        scored.sort()
        return scored

    def unranked(self, order: Iterable[Keyed], ranked: Mapping[str, Candidate]) -> Iterator[Keyed]:
        """The items of ``order`` (already keyed, in order) that ``ranked`` does not hold
        and that may be shown, read only as far as the caller reads."""
        blocked, recent_cut, staple, bought_get = (
            self.blocked, self.recent_cut, self.staple, self.bought.get,
        )  # fmt: skip
        for item in order:
            product = item[2]
            if product in ranked or product in blocked:
                continue
            times = bought_get(product)
            if times and times[-1] >= recent_cut and len(times) < staple:
                continue
            yield item


def _take(
    settings: Settings,
    keyed: Iterable[Keyed],
    ranked: Mapping[str, Candidate],
    popular: Mapping[str, Candidate],
    how: Showing,
    k: int,
) -> list[Recommendation]:
    """The first ``k`` of ``keyed`` within the category cap, shown. Stops at the
    ``k``-th, so a lazy ``keyed`` is read no further."""
    cap = settings.recommend_category_cap
    per_category: dict[str, int] = {}
    picked: list[Recommendation] = []
    for _, neg_score, product, info in keyed:
        category = info.category if info else product
        taken = per_category.get(category, 0)
        if taken >= cap:
            continue
        per_category[category] = taken + 1
        candidate = ranked.get(product) or popular[product]
        picked.append(
            candidate[1].show(product, candidate[0], -neg_score, info.name if info else None, how)
        )
        if len(picked) == k:
            break
    return picked


PopularOrder = list[Keyed]
"""(1, -confidence * zone bonus, product, product info), as an unscored item is keyed."""


def popular_order(
    settings: Settings,
    popular: dict[str, Candidate],
    catalogue: dict[str, evidence.ProductInfo],
    zone: str | None,
) -> PopularOrder:
    """``popular`` in ranking order for a customer standing in ``zone``; the same
    float arithmetic as :class:`_Rules`, so keys compare exactly."""
    boost = 1.0 + settings.recommend_zone_boost
    order: PopularOrder = []
    for product, (confidence, _) in popular.items():
        info = catalogue.get(product)
        bonus = boost if zone and info is not None and info.zone_id == zone else 1.0
        order.append((1, -confidence * bonus, product, info))
    order.sort()
    return order


def pick_shortlisted(
    settings: Settings,
    popular: dict[str, Candidate],
    order: PopularOrder,
    personal: Mapping[str, Candidate],
    entry: CustomerCandidates | None,
    blocked: AbstractSet[str],
    zone: str | None,
    catalogue: dict[str, evidence.ProductInfo],
    now: float,
    k: int,
) -> list[Recommendation]:
    """The rule over ``popular`` merged with ``personal`` (a personal candidate
    replaces the popular one when at least as confident), where ``order`` is
    :func:`popular_order` of ``popular``. Keys never tie across the two sorted lists:
    an item sorted per request is skipped in ``order``."""
    rules = _Rules(settings, entry, blocked, now)
    ranked: dict[str, Candidate] = {}
    for product in rules.blend:  # keyed by the blend, not as in ``order``
        held = popular.get(product)
        if held is not None:
            ranked[product] = held
    for product, mine in personal.items():
        current = popular.get(product)
        if current is None or mine[0] >= current[0]:
            ranked[product] = mine
    mine_sorted = rules.keyed(ranked, zone, catalogue)
    rest = rules.unranked(order, ranked)
    how = Showing(settings, entry, now, catalogue)
    return _take(settings, _merged(mine_sorted, rest), ranked, popular, how, k)


def _merged(first: list[Keyed], second: Iterator[Keyed]) -> Iterator[Keyed]:
    """Two sorted streams as one, read lazily (``heapq.merge`` without its heap: one
    list is a handful of items)."""
    i, n = 0, len(first)
    for item in second:
        while i < n and first[i] < item:
            yield first[i]
            i += 1
        yield item
    yield from first[i:]
