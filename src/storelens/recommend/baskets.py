"""Basket histories: who bought what, in which order, as integer-indexed arrays.

Every candidate source and the evaluation read the same :class:`BasketHistory`, so a
basket file (the Instacart shape, ``order_id,user_id,product_id,order_number``) and
our own orders table become one structure. Items and users are indexed once; a
basket is a sorted array of distinct item indices (a line bought twice in one order
is one purchase of the item: next-basket metrics count items, not quantities).

The split is by each user's own order sequence, not by calendar: the last order of
every user is held out, and tuning cuts the last *training* order as its own target,
so nothing tuned ever sees a held-out order.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from storelens.core.errors import FieldError, InvalidInput

__all__ = [
    "REQUIRED_COLUMNS",
    "BasketHistory",
    "Split",
    "history_from_rows",
    "read_baskets_csv",
    "split_last",
]

REQUIRED_COLUMNS = ("order_id", "user_id", "product_id", "order_number")
Basket = NDArray[np.int32]


@dataclass(frozen=True, slots=True)
class BasketHistory:
    """Each user's baskets in purchase order, items as indices into ``items``."""

    users: tuple[str, ...]
    items: tuple[str, ...]
    baskets: tuple[tuple[Basket, ...], ...]

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def n_baskets(self) -> int:
        return sum(len(b) for b in self.baskets)

    def without_last(self) -> BasketHistory:
        """Every user's history minus their last basket (users left with none drop out)."""
        keep = [u for u, b in enumerate(self.baskets) if len(b) >= 2]
        return BasketHistory(
            users=tuple(self.users[u] for u in keep),
            items=self.items,
            baskets=tuple(self.baskets[u][:-1] for u in keep),
        )

    def last(self) -> list[Basket]:
        return [b[-1] for b in self.baskets]


@dataclass(frozen=True, slots=True)
class Split:
    """Training history and each training user's held-out next basket."""

    train: BasketHistory
    target: list[Basket]


def split_last(history: BasketHistory) -> Split:
    """Hold out each user's last basket; users with a single basket cannot be scored."""
    keep = [u for u, b in enumerate(history.baskets) if len(b) >= 2]
    train = BasketHistory(
        users=tuple(history.users[u] for u in keep),
        items=history.items,
        baskets=tuple(history.baskets[u][:-1] for u in keep),
    )
    return Split(train=train, target=[history.baskets[u][-1] for u in keep])


def history_from_rows(rows: Iterable[tuple[str, str, str, int]]) -> BasketHistory:
    """Build a history from ``(user, order, product, position)`` rows in any order.

    ``position`` orders a user's baskets (the ``order_number`` column, or a timestamp
    rank); two orders of one user at the same position keep their first-seen order.
    """
    item_index: dict[str, int] = {}
    per_user: dict[str, dict[str, tuple[int, int, set[int]]]] = {}
    seen = 0
    for user, order, product, position in rows:
        item = item_index.setdefault(product, len(item_index))
        orders = per_user.setdefault(user, {})
        entry = orders.get(order)
        if entry is None:
            entry = (position, seen, set())
            orders[order] = entry
            seen += 1
        entry[2].add(item)
    users = tuple(sorted(per_user))
    baskets = tuple(
        tuple(
            np.array(sorted(items), dtype=np.int32)
            for _, _, items in sorted(per_user[u].values(), key=lambda e: (e[0], e[1]))
        )
        for u in users
    )
    return BasketHistory(users=users, items=tuple(item_index), baskets=baskets)


def _column_index(header: Sequence[str], path: Path) -> dict[str, int]:
    cleaned = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in cleaned]
    if missing:
        raise InvalidInput(
            f"{path}: missing column(s) {', '.join(missing)}",
            [FieldError(f"header.{c}", "column is required", "missing") for c in missing],
        )
    return {c: cleaned.index(c) for c in REQUIRED_COLUMNS}


def _rows(path: Path) -> Iterable[tuple[str, str, str, int]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise InvalidInput(f"{path}: empty file", [FieldError("header", "no header", "empty")])
        col = _column_index(header, path)
        width = max(col.values()) + 1
        for line, rec in enumerate(reader, start=2):
            if not rec:
                continue
            if len(rec) < width:
                raise InvalidInput(
                    f"{path}: line {line} has {len(rec)} fields, needs at least {width}",
                    [FieldError(f"line.{line}", "too few fields", "short_row")],
                )
            values = {c: rec[i].strip() for c, i in col.items()}
            for name in ("order_id", "user_id", "product_id"):
                if not values[name]:
                    raise InvalidInput(
                        f"{path}: line {line}, column {name} is empty",
                        [FieldError(f"line.{line}.{name}", "must not be empty", "missing")],
                    )
            try:
                position = int(float(values["order_number"]))
            except ValueError:
                raise InvalidInput(
                    f"{path}: line {line}, column order_number is not a number: "
                    f"{values['order_number']!r}",
                    [FieldError(f"line.{line}.order_number", "not a number", "int_parsing")],
                ) from None
            yield values["user_id"], values["order_id"], values["product_id"], position


def read_baskets_csv(path: Path) -> BasketHistory:
    """Read a basket file; extra columns are ignored, errors name the line and column."""
    history = history_from_rows(_rows(path))
    if history.n_users == 0:
        raise InvalidInput(f"{path}: no baskets", [FieldError("rows", "no data rows", "empty")])
    return history
