"""Basket histories: who bought what, in which order, as integer-indexed arrays.

Every candidate source and the evaluation read the same :class:`BasketHistory`, so a
basket file (the Instacart shape, ``order_id,user_id,product_id,order_number``) and
our own orders table become one structure. Items and users are indexed once; a
basket is a sorted array of distinct item indices (a line bought twice in one order
is one purchase of the item: next-basket metrics count items, not quantities).

Each order may also carry its context (days since the customer's prior order, day of
week, hour) and each line its place in the cart. The context of the order being
predicted is known when it is asked for (the customer is in the shop now, so the
time and the gap since their last visit are facts), so the ranker may use it; the
cart positions of that order are not, and only training baskets expose them.

The split is by each user's own order sequence, not by calendar: the last order of
every user is held out, and tuning cuts the last *training* order as its own target,
so nothing tuned ever sees a held-out order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from storelens.core.errors import FieldError, InvalidInput
from storelens.core.tabular import TabularFileError, csv_rows, mask_value, separator_hint

__all__ = [
    "CONTEXT_COLUMNS",
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "BasketHistory",
    "BasketLine",
    "Split",
    "history_from_lines",
    "history_from_rows",
    "read_baskets_csv",
    "split_last",
]

REQUIRED_COLUMNS = ("order_id", "user_id", "product_id", "order_number")
CONTEXT_COLUMNS = ("days_since_prior_order", "order_dow", "order_hour_of_day")
OPTIONAL_COLUMNS = ("add_to_cart_order", *CONTEXT_COLUMNS)
Basket = NDArray[np.int32]
FloatArray = NDArray[np.float64]
NAN = math.nan


class BasketLine(NamedTuple):
    """One order line; the optional fields are NaN when the source does not say."""

    user: str
    order: str
    product: str
    position: int
    cart: float = NAN
    days_since_prior: float = NAN
    dow: float = NAN
    hour: float = NAN


@dataclass(frozen=True, slots=True)
class BasketHistory:
    """Each user's baskets in purchase order, items as indices into ``items``.

    ``when`` holds, per user, one row per basket: days since the prior order, day of
    week, hour (NaN where unknown). ``cart`` holds, per user and basket, each item's
    add-to-cart position aligned with the basket's items. Both are empty tuples when
    the source has no such columns.
    """

    users: tuple[str, ...]
    items: tuple[str, ...]
    baskets: tuple[tuple[Basket, ...], ...]
    when: tuple[FloatArray, ...] = ()
    cart: tuple[tuple[FloatArray, ...], ...] = ()

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def n_baskets(self) -> int:
        return sum(len(b) for b in self.baskets)

    def order_context(self, user: int) -> FloatArray:
        """(baskets, 3): days since prior order, day of week, hour; NaN where unknown."""
        if self.when:
            return self.when[user]
        return np.full((len(self.baskets[user]), len(CONTEXT_COLUMNS)), NAN)

    def cart_positions(self, user: int, basket: int) -> FloatArray:
        """Add-to-cart position of each item of one basket (NaN where unknown)."""
        if self.cart:
            return self.cart[user][basket]
        return np.full(len(self.baskets[user][basket]), NAN)

    def head(self, drop: int) -> BasketHistory:
        """Every user's history minus their last ``drop`` baskets (users left with
        none drop out)."""
        keep = [u for u, b in enumerate(self.baskets) if len(b) > drop]
        return BasketHistory(
            users=tuple(self.users[u] for u in keep),
            items=self.items,
            baskets=tuple(self.baskets[u][: len(self.baskets[u]) - drop] for u in keep),
            when=tuple(self.when[u][: len(self.baskets[u]) - drop] for u in keep)
            if self.when
            else (),
            cart=tuple(self.cart[u][: len(self.baskets[u]) - drop] for u in keep)
            if self.cart
            else (),
        )

    def without_last(self) -> BasketHistory:
        """Every user's history minus their last basket (users left with none drop out)."""
        return self.head(1)

    def last(self) -> list[Basket]:
        return [b[-1] for b in self.baskets]


@dataclass(frozen=True, slots=True)
class Split:
    """Training history, each training user's held-out next basket, and that basket's
    context (days since prior order, day of week, hour per user; NaN where unknown)."""

    train: BasketHistory
    target: list[Basket]
    context: FloatArray


def split_last(history: BasketHistory) -> Split:
    """Hold out each user's last basket; users with a single basket cannot be scored."""
    keep = [u for u, b in enumerate(history.baskets) if len(b) >= 2]
    context = np.array([history.order_context(u)[-1] for u in keep], dtype=np.float64).reshape(
        len(keep), len(CONTEXT_COLUMNS)
    )
    return Split(
        train=history.head(1),
        target=[history.baskets[u][-1] for u in keep],
        context=context,
    )


def history_from_rows(rows: Iterable[tuple[str, str, str, int]]) -> BasketHistory:
    """Build a history from ``(user, order, product, position)`` rows in any order.

    ``position`` orders a user's baskets (the ``order_number`` column, or a timestamp
    rank); two orders of one user at the same position keep their first-seen order.
    """
    return history_from_lines(BasketLine(*r) for r in rows)


def history_from_lines(lines: Iterable[BasketLine]) -> BasketHistory:
    """Build a history from order lines in any order (see :func:`history_from_rows`);
    an order's context is taken from its first line, a repeated item keeps its first
    cart position."""
    item_index: dict[str, int] = {}
    per_user: dict[str, dict[str, tuple[int, int, dict[int, float], tuple[float, ...]]]] = {}
    seen = 0
    has_context = has_cart = False
    for line in lines:
        item = item_index.setdefault(line.product, len(item_index))
        orders = per_user.setdefault(line.user, {})
        entry = orders.get(line.order)
        if entry is None:
            entry = (line.position, seen, {}, (line.days_since_prior, line.dow, line.hour))
            has_context = has_context or not all(math.isnan(v) for v in entry[3])
            orders[line.order] = entry
            seen += 1
        entry[2].setdefault(item, line.cart)
        has_cart = has_cart or not math.isnan(line.cart)
    users = tuple(sorted(per_user))
    ordered = [sorted(per_user[u].values(), key=lambda e: (e[0], e[1])) for u in users]
    baskets = tuple(
        tuple(np.array(sorted(lines_), dtype=np.int32) for _, _, lines_, _ in seq)
        for seq in ordered
    )
    when = (
        tuple(np.array([e[3] for e in seq], dtype=np.float64) for seq in ordered)
        if has_context
        else ()
    )
    cart = (
        tuple(
            tuple(np.array([c[i] for i in sorted(c)], dtype=np.float64) for _, _, c, _ in seq)
            for seq in ordered
        )
        if has_cart
        else ()
    )
    return BasketHistory(
        users=users, items=tuple(item_index), baskets=baskets, when=when, cart=cart
    )


def _column_index(header: Sequence[str], path: Path) -> dict[str, int]:
    cleaned = [h.strip() for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in cleaned]
    if missing:
        raise InvalidInput(
            f"{path}: missing column(s) {', '.join(missing)}{separator_hint(cleaned)}",
            [FieldError(f"header.{c}", "column is required", "missing") for c in missing],
        )
    return {c: cleaned.index(c) for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in cleaned}


def _number(path: Path, line: int, column: str, text: str) -> float:
    """A numeric cell; an empty optional cell is unknown (NaN), anything else an error."""
    if not text and column != "order_number":
        return NAN
    try:
        value = float(text)
    except ValueError:
        value = NAN
    if math.isnan(value) or math.isinf(value):
        raise InvalidInput(
            f"{path}: line {line}, column {column} is not a number: {mask_value(text)!r}",
            [FieldError(f"line.{line}.{column}", "not a number", "float_parsing")],
        )
    return value


def _position(path: Path, line: int, text: str) -> int:
    """``order_number``: the order's place in its user's history, a whole number from 1
    (a -2 or a 2.5 was read as a position without a word, a review found)."""
    value = _number(path, line, "order_number", text)
    if value < 1 or value != int(value):
        raise InvalidInput(
            f"{path}: line {line}, column order_number must be a whole number from 1: "
            f"{mask_value(text)!r}",
            [FieldError(f"line.{line}.order_number", "a whole number from 1", "not_a_position")],
        )
    return int(value)


_RANGES: dict[str, tuple[float, float, bool]] = {
    "add_to_cart_order": (1, math.inf, True),
    "days_since_prior_order": (0, math.inf, False),
    "order_dow": (0, 6, True),
    "order_hour_of_day": (0, 23, True),
}
"""Each optional column's lowest and highest value and whether it is whole: an hour of
25 or a negative gap was read into the ranker's features without a word (a review)."""


def _in_range(path: Path, line: int, column: str, value: float) -> float:
    low, high, whole = _RANGES[column]
    if math.isnan(value) or (low <= value <= high and (not whole or value == int(value))):
        return value
    span = f"a whole number from {low:g}" if whole else f"a number from {low:g}"
    span += "" if math.isinf(high) else f" to {high:g}"
    raise InvalidInput(
        f"{path}: line {line}, column {column} must be {span}: {mask_value(f'{value:g}')!r}",
        [FieldError(f"line.{line}.{column}", f"must be {span}", "out_of_range")],
    )


def _lines(path: Path) -> Iterable[BasketLine]:
    try:
        yield from _read_lines(path, csv_rows(path))
    except TabularFileError as exc:
        where = f"line.{exc.line}" if exc.line is not None else "file"
        raise InvalidInput(str(exc), [FieldError(where, exc.message, "unreadable")]) from None


def _read_lines(path: Path, rows: Iterator[tuple[int, list[str]]]) -> Iterable[BasketLine]:
    first = next(rows, None)
    if first is None:
        raise InvalidInput(f"{path}: empty file", [FieldError("header", "no header", "empty")])
    header = first[1]
    col = _column_index(header, path)
    width = max(col.values()) + 1
    optional = [c for c in OPTIONAL_COLUMNS if c in col]
    # Each order's position as first seen: a file that gives one order two positions is
    # mixed up, and so is one that gives two orders of a user one position (both were
    # read without a word, reviews found).
    orders: dict[tuple[str, str], tuple[int, int]] = {}
    places: dict[tuple[str, int], tuple[str, int]] = {}
    for line, rec in rows:
        if not rec:
            continue
        if len(rec) < width:
            raise InvalidInput(
                f"{path}: line {line} has {len(rec)} fields, needs at least {width}",
                [FieldError(f"line.{line}", "too few fields", "short_row")],
            )
        if len(rec) > len(header):
            raise InvalidInput(
                f"{path}: line {line} has {len(rec)} fields where the header has "
                f"{len(header)} (a stray comma, or a value with a comma that needs quotes?)",
                [FieldError(f"line.{line}", "too many fields", "long_row")],
            )
        values = {c: rec[i].strip() for c, i in col.items()}
        for name in ("order_id", "user_id", "product_id"):
            if not values[name]:
                raise InvalidInput(
                    f"{path}: line {line}, column {name} is empty",
                    [FieldError(f"line.{line}.{name}", "must not be empty", "missing")],
                )
        position = _position(path, line, values["order_number"])
        user, order = values["user_id"], values["order_id"]
        # Keyed by user too: some exports number orders per user (1, 2, … each).
        first_seen = orders.setdefault((user, order), (position, line))
        if first_seen[0] != position:
            raise InvalidInput(
                f"{path}: line {line}: this order has order_number {position}, but line "
                f"{first_seen[1]} gave it {first_seen[0]}",
                [FieldError(f"line.{line}.order_number", "one order, two positions", "mixed")],
            )
        holder = places.setdefault((user, position), (order, line))
        if holder[0] != order:
            raise InvalidInput(
                f"{path}: line {line}: this user's order_number {position} is already "
                f"another order's (line {holder[1]}): the positions cannot order them",
                [FieldError(f"line.{line}.order_number", "two orders, one position", "mixed")],
            )
        extra = {c: _in_range(path, line, c, _number(path, line, c, values[c])) for c in optional}
        yield BasketLine(
            user,
            order,
            values["product_id"],
            position,
            extra.get("add_to_cart_order", NAN),
            extra.get("days_since_prior_order", NAN),
            extra.get("order_dow", NAN),
            extra.get("order_hour_of_day", NAN),
        )


def read_baskets_csv(path: Path) -> BasketHistory:
    """Read a basket file; extra columns are ignored, errors name the line and column."""
    history = history_from_lines(_lines(path))
    if history.n_users == 0:
        raise InvalidInput(f"{path}: no baskets", [FieldError("rows", "no data rows", "empty")])
    return history
