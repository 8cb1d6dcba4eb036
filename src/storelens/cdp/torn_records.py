"""Records torn between two customers that must not merge, and what settles them.

Clustering joins the strongest links first and refuses a link that would put two
clearly different people into one customer. When a record's links into both are about
equally strong (a till record with a name and a postcode, a same-name father's and
son's CRM records), which side it joins is decided by record order: a coin flip that
is wrong half the time. These functions find such records and let the record's own
values (a ``Jr`` on it) choose a side where they can; :func:`storelens.cdp.clusters.
cluster_records` leaves the rest to themselves.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Protocol

__all__ = ["AMBIGUITY_MARGIN", "logit", "settled_sides", "torn_records"]


class ScoredPair(Protocol):
    """A link as :class:`storelens.cdp.clusters.ScoredPair` holds it (read only here)."""

    @property
    def a(self) -> str: ...
    @property
    def b(self) -> str: ...
    @property
    def probability(self) -> float: ...


class Cluster(Protocol):
    """A cluster as :class:`storelens.cdp.clusters.Cluster` holds it (read only here)."""

    @property
    def records(self) -> list[str]: ...
    @property
    def links(self) -> Sequence[ScoredPair]: ...
    @property
    def refused(self) -> Sequence[ScoredPair]: ...


AMBIGUITY_MARGIN = 1.0
"""Log-odds by which a record's link into its own customer must beat its refused link
into a conflicting one for the choice to stand (see :func:`cluster_records`)."""


def logit(p: float) -> float:
    """Log-odds of a match probability, clipped so certainty stays finite."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def settled_sides(
    groups: Sequence[Cluster],
    pairs: Sequence[ScoredPair],
    torn: set[str],
    settle: Callable[[str, list[list[str]]], int | None],
) -> dict[str, set[str]]:
    """Torn records whose own values choose a side (``settle``), with that side's records."""
    where = {r: i for i, c in enumerate(groups) for r in c.records}
    touching: dict[str, set[int]] = defaultdict(set)
    for p in pairs:
        for r, other in ((p.a, p.b), (p.b, p.a)):
            if r in torn and other not in torn:
                touching[r].add(where[other])
    chosen = {}
    for r in sorted(torn):
        sides = [[m for m in groups[i].records if m != r] for i in sorted(touching[r])]
        sides = [side for side in sides if side]
        if len(sides) < 2:
            continue
        pick = settle(r, sides)
        if pick is not None:
            chosen[r] = set(sides[pick])
    return chosen


def torn_records(groups: Sequence[Cluster], margin: float) -> set[str]:
    """Records whose refused link into a conflicting customer is about as strong as
    their best link into their own."""
    where = {r: i for i, c in enumerate(groups) for r in c.records}
    best_in: dict[str, float] = {}
    for c in groups:
        for p in c.links:
            for r in (p.a, p.b):
                best_in[r] = max(best_in.get(r, 0.0), p.probability)
    torn = set()
    for c in groups:
        for p in c.refused:
            if where[p.a] == where[p.b]:
                continue  # joined through another path after all
            for r in (p.a, p.b):
                inside = best_in.get(r)
                if inside is not None and logit(inside) - logit(p.probability) < margin:
                    torn.add(r)
    return torn
