"""What people buy: baskets drawn from the catalogue, tilted towards each person's favourites.

Recommendations are benchmarked on these baskets, so they need signal: a person's
favourites recur across visits, the catalogue's popularity order skews the rest, and
food sells better at lunch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from storelens.catalogue import DRINK_CATEGORIES, Product
from storelens.sim.population import Person

__all__ = ["Basket", "Menu"]

Basket = list[tuple[Product, int]]
"""(product, qty) lines, each product once."""

_LINE_COUNTS = (1, 2, 3)
_LINE_WEIGHTS = (0.55, 0.35, 0.10)
_QTYS = (1, 2, 3)
_QTY_WEIGHTS = (0.88, 0.10, 0.02)


@dataclass(frozen=True, slots=True)
class _Shelf:
    products: tuple[Product, ...]
    cumulative: tuple[float, ...]


def _shelf(products: Sequence[Product]) -> _Shelf:
    # Catalogue order is popularity order: the first rows of a category sell most.
    total, cumulative = 0.0, []
    for rank in range(len(products)):
        total += 1 / (rank + 1) ** 0.8
        cumulative.append(total)
    return _Shelf(tuple(products), tuple(cumulative))


class Menu:
    """Splits a catalogue into what people come for (``primary``) and add-ons (``secondary``).

    For the café the primary products are drinks and the add-ons food and bakery; a few
    baskets also take something from ``extra`` (retail beans).
    """

    def __init__(
        self,
        catalogue: Sequence[Product],
        primary: frozenset[str] = DRINK_CATEGORIES,
        secondary: frozenset[str] = frozenset({"bakery", "food"}),
        extra_share: float = 0.03,
    ) -> None:
        self.catalogue = tuple(catalogue)
        self.primary = [p for p in catalogue if p.category in primary]
        self.secondary = [p for p in catalogue if p.category in secondary]
        self.extra = [p for p in catalogue if p.category not in primary | secondary]
        if not self.primary:
            raise ValueError("the catalogue has no products in the primary categories")
        self._primary_ids = {p.product_id for p in self.primary}
        self._by_id = {p.product_id: p for p in catalogue}
        self._shelves = {
            "primary": _shelf(self.primary),
            "secondary": _shelf(self.secondary or self.primary),
            "extra": _shelf(self.extra or self.secondary or self.primary),
        }
        self._extra_share = extra_share if self.extra else 0.0

    def _draw(self, rng: random.Random, shelf: str) -> Product:
        found = self._shelves[shelf]
        return rng.choices(found.products, cum_weights=found.cumulative)[0]

    def _favourite(self, rng: random.Random, person: Person, primary: bool) -> Product | None:
        kind = [f for f in person.favourites if (f in self._primary_ids) == primary]
        if kind and rng.random() < 0.65:
            return self._by_id[kind[0] if rng.random() < 0.75 else rng.choice(kind)]
        return None

    def basket(self, rng: random.Random, person: Person, lunch: bool) -> Basket:
        """One to three lines, usually a drink first; repeats of a product merge into qty."""
        lines = rng.choices(_LINE_COUNTS, _LINE_WEIGHTS)[0]
        picked: list[Product] = []
        for line in range(lines):
            primary = rng.random() < (0.9 if line == 0 else 0.2 if lunch else 0.35)
            product = self._favourite(rng, person, primary) or self._draw(
                rng, "primary" if primary else "secondary"
            )
            picked.append(product)
        if rng.random() < self._extra_share:
            picked.append(self._draw(rng, "extra"))
        basket: dict[str, tuple[Product, int]] = {}
        for product in picked:
            qty = rng.choices(_QTYS, _QTY_WEIGHTS)[0]
            _, before = basket.get(product.product_id, (product, 0))
            basket[product.product_id] = (product, before + qty)
        return list(basket.values())

    @staticmethod
    def is_drink(product: Product) -> bool:
        return product.category in DRINK_CATEGORIES
