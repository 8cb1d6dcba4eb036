"""The store's popular items pre-sorted, so a request sorts only the customer's own.

:func:`storelens.recommend.suggestions.pick` keys and sorts every candidate: the
customer's few personal ones and the store's whole popular list, the same for
everyone. The popular list's order only changes with the popularity snapshot, the
catalogue and the zone the customer stands in, so it is keyed and sorted once per
(store, daypart, zone) here. A request sorts the customer's candidates (and the
popular items the learned blend scored for them, which rank by the blend) and merges
the two sorted lists, reading only until ``k`` are kept
(:func:`~storelens.recommend.suggestions.pick_merged`).

An earlier version ranked a head of the popular order and fell back to the whole list
when the head could not be shown to suffice; the merge needs neither the guess nor the
check, and reads fewer items.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates
from storelens.recommend.suggestions import Candidate, Keyed, Recommendation, pick_merged

__all__ = ["PopularOrder", "pick_shortlisted", "popular_order"]

PopularOrder = list[Keyed]
"""(1, -confidence * zone bonus, product, product info), as ``pick`` keys unscored items."""


def popular_order(
    settings: Settings,
    popular: dict[str, Candidate],
    catalogue: dict[str, evidence.ProductInfo],
    zone: str | None,
) -> PopularOrder:
    """``popular`` in ``pick``'s order for a customer standing in ``zone``; the same
    float arithmetic as ``pick``, so keys compare exactly."""
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
    personal: dict[str, Candidate],
    entry: CustomerCandidates | None,
    blocked: AbstractSet[str],
    zone: str | None,
    catalogue: dict[str, evidence.ProductInfo],
    now: float,
    k: int,
) -> list[Recommendation]:
    """``pick`` over ``popular`` merged with ``personal`` (a personal candidate replaces
    the popular one when at least as confident), sorting per request only the
    candidates whose key differs from ``order``'s."""
    ranked: dict[str, Candidate] = {}
    for product, mine in personal.items():
        current = popular.get(product)
        if current is None or mine[0] >= current[0]:
            ranked[product] = mine
    return pick_merged(settings, ranked, order, popular, entry, blocked, zone, catalogue, now, k)
