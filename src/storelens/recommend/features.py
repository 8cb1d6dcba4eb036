"""What the blend knows about each (customer, candidate item) pair.

Next-basket purchases in grocery are mostly habits, and a habit is described by more
than a count: how steadily the customer buys the item since they first did, whether
they are in a run of buying it, how long ago in days the last purchase was against
their usual interval for it, where it goes in their cart (staples go first), and how
habit-forming the item is across customers. The context of the order being predicted
(days since their prior order, day, hour) is known at request time and changes the
answer: after a short gap the customer tops up a few staples, after a long one they
restock. Every source's score and rank are features too, so the blend can learn when
to trust which.

Each statistic is computed once per customer from a dense (baskets x their own items)
block, which is small (a customer buys a few hundred distinct items at most), and then
looked up for the candidates by a sorted (user, item) key, so nothing dense over the
catalogue is ever built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from storelens.recommend.baskets import BasketHistory
from storelens.recommend.category_features import CATEGORY_COLUMNS, category_features
from storelens.recommend.sources import item_cosine, item_popularity

__all__ = ["PairStats", "candidate_features", "candidate_pool", "pair_stats"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
PAIR_COLUMNS = (
    "times_bought",
    "share_of_baskets",
    "share_since_first",
    "baskets_since_bought",
    "baskets_since_first",
    "streak",
    "bought_last_3",
    "bought_last_5",
    "decayed_share",
    "cart_position",
    "days_since_bought",
    "mean_days_between",
    "mean_baskets_between",
    "kept_after_bought",
    "kept_chances",
    "came_back",
    "came_back_chances",
    "chance_next",
)
USER_COLUMNS = 7
NO_HISTORY = np.array(
    [0, 0, 0, 999, 999, 0, 0, 0, 0, np.nan, np.nan, np.nan, np.nan, 0, 0, 0, 0, np.nan],
    dtype=np.float64,
)


@dataclass(frozen=True, slots=True)
class PairStats:
    """Per (user, item) bought at least once: ``keys`` = user * n_items + item, sorted,
    and one row of :data:`PAIR_COLUMNS` each; per user: baskets, mean basket size,
    reorder rate, mean gap in days, distinct items."""

    keys: IntArray
    values: FloatArray
    users: FloatArray

    def lookup(self, users: IntArray, items: IntArray, n_items: int) -> FloatArray:
        keys = users * n_items + items
        at = np.searchsorted(self.keys, keys)
        at = np.minimum(at, max(len(self.keys) - 1, 0))
        found = (self.keys[at] == keys) if len(self.keys) else np.zeros(len(keys), dtype=bool)
        out = np.tile(NO_HISTORY, (len(keys), 1))
        out[found] = self.values[at[found]]
        return out


def _user_block(history: BasketHistory, u: int) -> tuple[IntArray, FloatArray, FloatArray]:
    """The user's distinct items, their (items x columns) stats and the user's row."""
    baskets = history.baskets[u]
    n = len(baskets)
    items = np.unique(np.concatenate(baskets)).astype(np.int64)
    bought = np.zeros((n, len(items)), dtype=bool)
    cart = np.full((n, len(items)), np.nan)
    for j, b in enumerate(baskets):
        cols = np.searchsorted(items, b)
        bought[j, cols] = True
        pos = history.cart_positions(u, j)
        cart[j, cols] = pos / max(len(b), 1)  # 0..1: first in the cart to last
    context = history.order_context(u)
    gaps = context[:, 0].copy()
    gaps[0] = 0.0  # the first order has no prior one
    days_after = np.concatenate((np.cumsum(gaps[::-1])[::-1][1:], [0.0]))  # days to the end
    count = bought.sum(axis=0).astype(np.float64)
    index = np.arange(n)[:, None]
    last = np.where(bought, index, -1).max(axis=0)
    first = np.where(bought, index, n).min(axis=0)
    since = (n - last).astype(np.float64)
    since_first = (n - first).astype(np.float64)
    streak = np.argmin(np.vstack((bought[::-1], np.zeros((1, len(items)), bool))), axis=0)
    weights = 0.8 ** (n - 1 - np.arange(n))
    decayed = (bought * weights[:, None]).sum(axis=0) / weights.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        placed = np.where(bought, cart, 0.0)
        known_cart = (bought & ~np.isnan(cart)).sum(axis=0)
        cart_mean = np.where(known_cart > 0, np.nansum(placed, axis=0) / known_cart, np.nan)
        span_days = days_after[first] - days_after[last]
        between_days = np.where(count > 1, span_days / (count - 1), np.nan)
        between = np.where(count > 1, (last - first) / (count - 1), np.nan)
    # The item's own habit as a two-state chain: bought in a basket, is it in the next
    # one (kept)? Skipped after the first purchase, does it come back in the next one?
    before, after = bought[:-1], bought[1:]
    started = np.cumsum(bought, axis=0)[:-1] > 0
    kept = (before & after).sum(axis=0).astype(np.float64)
    kept_n = before.sum(axis=0).astype(np.float64)
    back = (~before & started & after).sum(axis=0).astype(np.float64)
    back_n = (~before & started).sum(axis=0).astype(np.float64)
    chance_next = np.where(
        bought[-1], (kept + 1) / (kept_n + 2), (back + 1) / (back_n + 2)
    )  # smoothed toward one in two: few observations say little
    stats = np.column_stack(
        (
            count,
            count / n,
            count / since_first,
            since,
            since_first,
            streak.astype(np.float64),
            bought[-3:].sum(axis=0),
            bought[-5:].sum(axis=0),
            decayed,
            cart_mean,
            days_after[last],
            between_days,
            between,
            kept,
            kept_n,
            back,
            back_n,
            chance_next,
        )
    )
    sizes = bought.sum(axis=1)
    seen_before = np.cumsum(bought, axis=0) - bought > 0
    repeat_rate = (bought & seen_before)[1:].sum() / max(sizes[1:].sum(), 1) if n > 1 else 0.0
    known = context[1:, 0]
    known = known[~np.isnan(known)]
    user_row = np.array(
        [
            n,
            sizes.mean(),
            repeat_rate,
            known.mean() if len(known) else np.nan,
            len(items),
            sizes[-1],
            (kept.sum() + 1) / (kept_n.sum() + 2),
        ]
    )
    return items, stats, user_row


def pair_stats(history: BasketHistory) -> PairStats:
    """Every (user, item) the user ever bought, with its habit statistics."""
    keys: list[IntArray] = []
    values: list[FloatArray] = []
    users = np.zeros((history.n_users, USER_COLUMNS))
    for u in range(history.n_users):
        items, stats, users[u] = _user_block(history, u)
        keys.append(u * history.n_items + items)
        values.append(stats)
    if not keys:
        return PairStats(np.zeros(0, np.int64), np.zeros((0, len(PAIR_COLUMNS))), users)
    return PairStats(np.concatenate(keys), np.vstack(values), users)


def _item_stats(history: BasketHistory, pairs: PairStats) -> FloatArray:
    """(items x 6): share of users who bought it, share of its buyers who bought it
    again, chance per later basket that a buyer buys it again, mean cart position,
    and across buyers how often it is kept into the next basket and comes back."""
    item = pairs.keys % max(history.n_items, 1)
    count = pairs.values[:, 0]
    since_first = pairs.values[:, 4]
    buyers = np.bincount(item, minlength=history.n_items).astype(np.float64)
    repeaters = np.bincount(item, weights=(count >= 2), minlength=history.n_items)
    repeats = np.bincount(item, weights=count - 1, minlength=history.n_items)
    chances = np.bincount(item, weights=since_first - 1, minlength=history.n_items)
    cart = pairs.values[:, 9]
    has_cart = ~np.isnan(cart)
    cart_sum = np.bincount(item[has_cart], weights=cart[has_cart], minlength=history.n_items)
    cart_n = np.bincount(item[has_cart], minlength=history.n_items)

    def rate(hits: int, tries: int) -> FloatArray:
        h = np.bincount(item, weights=pairs.values[:, hits], minlength=history.n_items)
        t = np.bincount(item, weights=pairs.values[:, tries], minlength=history.n_items)
        return (h + 1) / (t + 2)

    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack(
            (
                item_popularity(history),
                repeaters / np.maximum(buyers, 1),
                (repeats + 1) / (chances + 2),  # smoothed towards one in two
                np.where(cart_n > 0, cart_sum / np.maximum(cart_n, 1), np.nan),
                rate(13, 14),
                rate(15, 16),
            )
        )


def _last_basket_affinity(history: BasketHistory) -> sp.csr_matrix:
    """user x item: cosine co-purchase of the item with the user's last basket."""
    rows = [np.full(len(b[-1]), u) for u, b in enumerate(history.baskets) if b]
    cols = [b[-1] for b in history.baskets if b]
    if not rows:
        return sp.csr_matrix((history.n_users, history.n_items))
    last = sp.csr_matrix(
        (np.ones(sum(len(r) for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(history.n_users, history.n_items),
    )
    return sp.csr_matrix(last @ item_cosine(history, 50))


def candidate_pool(scores: Mapping[str, sp.csr_matrix]) -> tuple[IntArray, IntArray]:
    """(users, items) of every candidate any source gave, row-major and distinct."""
    pool = sp.csr_matrix(sum((m.tocsr() > 0).astype(np.float64) for m in scores.values()))
    coo = pool.tocoo()
    order = np.lexsort((coo.col, coo.row))
    return coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)


def _ranks(mat: sp.csr_matrix) -> sp.csr_matrix:
    """1 for each row's best item, 2 for the next, … (same sparsity as ``mat``)."""
    mat = mat.tocsr()
    ranks = np.zeros(len(mat.data))
    for u in range(mat.shape[0]):
        lo, hi = mat.indptr[u], mat.indptr[u + 1]
        order = np.argsort(-mat.data[lo:hi], kind="stable")
        r = np.empty(hi - lo)
        r[order] = np.arange(1, hi - lo + 1)
        ranks[lo:hi] = r
    return sp.csr_matrix((ranks, mat.indices.copy(), mat.indptr.copy()), shape=mat.shape)


def _lookup(mat: sp.csr_matrix, users: IntArray, items: IntArray) -> FloatArray:
    return np.asarray(mat[users, items]).ravel().astype(np.float64)


def candidate_features(
    history: BasketHistory,
    scores: Mapping[str, sp.csr_matrix],
    context: FloatArray | None = None,
    categories: IntArray | None = None,
) -> tuple[IntArray, IntArray, FloatArray, list[str]]:
    """(users, items, features, feature names) for every candidate any source gave.

    ``context`` is the predicted order's (days since prior order, day of week, hour)
    per user, NaN where unknown (``None``: unknown for everyone). ``categories`` (each
    item's category index, -1 for none) adds the user x category columns of
    :mod:`storelens.recommend.category_features`; ``None`` leaves them out.
    """
    users, items = candidate_pool(scores)
    names: list[str] = []
    columns: list[FloatArray] = []
    for name, mat in scores.items():
        score = _lookup(mat, users, items)
        rank = _lookup(_ranks(mat), users, items)
        rank[rank == 0] = mat.shape[1]  # not in this source's list at all
        columns += [score, rank]
        names += [f"{name}_score", f"{name}_rank"]
    pairs = pair_stats(history)
    pair = pairs.lookup(users, items, history.n_items)
    user = pairs.users[users]
    item = _item_stats(history, pairs)[items]
    ctx = np.full((history.n_users, 3), np.nan) if context is None else context
    target = ctx[users]
    gap = target[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        days_since = pair[:, 10] + gap
        derived = np.column_stack(
            (
                days_since,
                days_since / np.maximum(pair[:, 11], 1.0),  # due (about 1) or overdue (above 1)?
                (pair[:, 3] / pair[:, 12]),  # the same in baskets
                gap / np.maximum(user[:, 3], 1.0),  # a quick top-up or a big restock?
                _lookup(_last_basket_affinity(history), users, items),
            )
        )
    columns += [pair, user, item, target, derived]
    names += [
        *PAIR_COLUMNS,
        "user_baskets",
        "user_basket_size",
        "user_repeat_rate",
        "user_mean_gap_days",
        "user_distinct_items",
        "user_last_basket_size",
        "user_kept_rate",
        "item_popularity",
        "item_repeat_ratio",
        "item_repurchase_chance",
        "item_cart_position",
        "item_kept_rate",
        "item_came_back_rate",
        "order_gap_days",
        "order_dow",
        "order_hour",
        "days_since_bought_at_order",
        "days_overdue_ratio",
        "baskets_overdue_ratio",
        "order_gap_ratio",
        "last_basket_affinity",
    ]
    if categories is not None:
        columns.append(category_features(history, categories, users, items))
        names += list(CATEGORY_COLUMNS)
    return users, items, np.column_stack(columns), names
