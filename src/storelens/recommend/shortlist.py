"""The store's popular items pre-sorted, so a request ranks a short list, not all of them.

:func:`storelens.recommend.suggestions.pick` sorts every candidate: the customer's
few personal ones and the store's whole popular list, the same for everyone. The
popular list's order only changes with the popularity snapshot, the catalogue and
the zone the customer stands in, so it is sorted once per (store, daypart, zone) here
and a request hands ``pick`` the customer's personal candidates plus the head of
that order.

``pick`` walks candidates best first and stops at the ``k``-th it keeps, so the head
gives the same answer as the whole list whenever the ``k``-th item kept ranks
strictly before the first popular item left out: nothing left out could have been
reached. When the head runs short (many blocked, recently bought or over the
category cap), the whole list is ranked as before; :func:`pick_shortlisted` checks
this on every call rather than trusting the head's length.

Kept apart from ``pick`` so the rules stay in one place. ``pick`` ranks the items the
learned blend scored for this customer ahead of the rest, so those are always handed
over, and the check compares only with unscored items left out.
"""

from __future__ import annotations

from storelens.config import Settings
from storelens.recommend import evidence
from storelens.recommend.candidate_store import CustomerCandidates
from storelens.recommend.suggestions import Candidate, HeadItem, Recommendation, pick

__all__ = ["PopularOrder", "head_size", "pick_shortlisted", "popular_order"]

PopularOrder = list[HeadItem]
"""(-confidence * zone bonus, product, product info), as ``pick`` keys unscored items."""


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
        order.append((-confidence * bonus, product, info))
    order.sort()
    return order


def head_size(k: int, blocked: int) -> int:
    """How much of the order to hand ``pick``: room for the category cap and the blocked
    items to skip some (a guess; a short head only costs a second, full ranking)."""
    return 2 * k + blocked + 4


def pick_shortlisted(
    settings: Settings,
    popular: dict[str, Candidate],
    order: PopularOrder,
    personal: dict[str, Candidate],
    entry: CustomerCandidates | None,
    blocked: set[str],
    zone: str | None,
    catalogue: dict[str, evidence.ProductInfo],
    now: float,
    k: int,
) -> list[Recommendation]:
    """``pick`` over ``popular`` merged with ``personal`` (a personal candidate replaces
    the popular one when at least as confident), ranking the head of ``order`` only
    when that provably gives the same list."""
    m = head_size(k, len(blocked))
    if m < len(order):
        # The head goes to ``pick`` already keyed; the customer's own candidates that
        # beat the store's, and the items the learned blend scored (they rank ahead of
        # every unscored one, so all go in), are ranked with it.
        extra: dict[str, Candidate] = {}
        learned = entry.blend if entry is not None else {}
        for product in learned:
            if product in popular:
                extra[product] = popular[product]
        _merge(extra, personal, popular)
        picked = pick(settings, extra, entry, blocked, zone, catalogue, now, k, order[:m], popular)
        if len(picked) == k and _nothing_left_out_ranks_before(
            picked[-1], learned, order, m, extra
        ):
            return picked
    ranked: dict[str, Candidate] = dict(popular)
    _merge(ranked, personal, popular)
    return pick(settings, ranked, entry, blocked, zone, catalogue, now, k)


def _nothing_left_out_ranks_before(
    last: Recommendation,
    learned: dict[str, float],
    order: PopularOrder,
    m: int,
    extra: dict[str, Candidate],
) -> bool:
    """Whether every popular item left out (past the head, not among ``extra``) ranks
    after ``pick``'s last kept one. Left-out items are all unscored by the blend, so a
    scored last item beats them."""
    if last.product_id in learned:
        return True
    first_out = next((key for key in order[m:] if key[1] not in extra), None)
    return first_out is None or (-last.score, last.product_id) < first_out[:2]


def _merge(
    ranked: dict[str, Candidate],
    personal: dict[str, Candidate],
    popular: dict[str, Candidate],
) -> None:
    """Personal candidates into ``ranked``: each replaces the store's when at least as
    confident (compared with the popular one even where ``ranked`` lacks it)."""
    for product, mine in personal.items():
        current = popular.get(product)
        if current is None or mine[0] >= current[0]:
            ranked[product] = mine
