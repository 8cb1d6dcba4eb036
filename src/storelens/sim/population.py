"""The simulated customer base: the same people come back across days, some every day.

Customer 360 and recommendations are only testable if identities are stable, visits
are skewed (a few regulars make a large share of visits) and people have tastes;
a fresh random stranger per visit would give them nothing to learn.
"""

from __future__ import annotations

import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

from storelens.catalogue import Product

__all__ = ["Person", "Population", "build_population"]

_FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elif", "Finn", "Greta", "Hannah", "Ilias", "Jana",
    "Jonas", "Karla", "Lea", "Leon", "Lina", "Luca", "Maja", "Mats", "Mia", "Noah",
    "Nora", "Ole", "Paula", "Paul", "Rosa", "Sami", "Sofia", "Tara", "Tim", "Yara",
    "Emil", "Ida", "Jakob", "Lotte", "Milan", "Nele", "Oskar", "Pia", "Theo", "Zoe",
)  # fmt: skip
_LAST_NAMES = (
    "Albers", "Becker", "Brandt", "Demir", "Engel", "Fischer", "Graf", "Hahn", "Huber",
    "Jansen", "Kaiser", "Keller", "Klein", "Koch", "Lange", "Lorenz", "Maier", "Meyer",
    "Novak", "Otto", "Peters", "Richter", "Roth", "Schmidt", "Schulz", "Sommer", "Vogel",
    "Wagner", "Weber", "Winter", "Wolf", "Yilmaz", "Zimmer", "Berger", "Franke", "Haas",
)  # fmt: skip

# (share of the population, relative visit propensity, weight for joining the loyalty scheme)
# At ~450 visits a day from 1500 people: regulars come about daily, occasional ones weekly.
_SEGMENTS = ((0.08, 1.0, 2.0), (0.30, 0.35, 1.4), (0.62, 0.0, 1.0))
_OCCASIONAL = (0.05, 0.32)


@dataclass(frozen=True, slots=True)
class Person:
    """One customer; ``loyalty_id`` is None for people who never signed up."""

    index: int
    first_name: str
    last_name: str
    email: str
    loyalty_id: str | None
    propensity: float
    """Relative chance that a given visit is this person's."""
    favourites: tuple[str, ...]
    """Product ids, most favourite first."""


@dataclass(frozen=True, slots=True)
class Population:
    people: tuple[Person, ...]
    _cumulative: tuple[float, ...]

    @property
    def members(self) -> list[Person]:
        """Loyalty members in loyalty-id order, the order the CRM export lists them."""
        return sorted((p for p in self.people if p.loyalty_id), key=lambda p: p.loyalty_id or "")

    def pick(self, rng: random.Random) -> Person:
        """A visitor drawn by propensity: the same regulars turn up day after day."""
        at = rng.random() * self._cumulative[-1]
        return self.people[min(bisect_left(self._cumulative, at), len(self.people) - 1)]


def _weighted(rng: random.Random, products: Sequence[Product]) -> Product:
    # Catalogue order is popularity order: the first rows of a category sell most.
    return rng.choices(products, [1 / (rank + 1) ** 0.8 for rank in range(len(products))])[0]


def build_population(
    rng: random.Random,
    size: int,
    loyalty_share: float,
    primary: Sequence[Product],
    secondary: Sequence[Product],
) -> Population:
    """``primary`` products are what people come for (drinks), ``secondary`` the add-ons."""
    people_segments: list[tuple[float, float]] = []
    for share, propensity, join_weight in _SEGMENTS:
        for _ in range(round(size * share)):
            people_segments.append((propensity or rng.uniform(*_OCCASIONAL), join_weight))
    people_segments = people_segments[:size]
    while len(people_segments) < size:
        people_segments.append((rng.uniform(*_OCCASIONAL), 1.0))
    # Weighted sampling without replacement (Efraimidis-Spirakis): regulars join more often.
    keys = [rng.random() ** (1 / join) for _, join in people_segments]
    members = round(size * loyalty_share)
    joined = set(sorted(range(size), key=lambda i: (-keys[i], i))[:members])
    loyalty_numbers = iter(rng.sample(range(100_000, 1_000_000), members))

    people = []
    for index, (propensity, _) in enumerate(people_segments):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        favourites = [_weighted(rng, primary).product_id]
        if secondary and rng.random() < 0.7:
            favourites.append(_weighted(rng, secondary).product_id)
        if rng.random() < 0.5:
            favourites.append(_weighted(rng, primary).product_id)
        people.append(
            Person(
                index=index,
                first_name=first,
                last_name=last,
                email=f"{first}.{last}{index}@example.com".lower(),
                loyalty_id=f"L{next(loyalty_numbers)}" if index in joined else None,
                propensity=propensity,
                favourites=tuple(dict.fromkeys(favourites)),
            )
        )
    cumulative = tuple(accumulate(p.propensity for p in people))
    return Population(people=tuple(people), _cumulative=cumulative)
