"""What the blend knows about a customer's habit with a candidate's *category*.

An item-level habit says nothing about an item the customer has not bought yet, and
splits a habit that is really about the aisle ("always some yoghurt") over the
brands they rotate between. Per (customer, category) the blend gets how often and how
recently the customer shops the category, whether a basket with it is followed by
another with it, and where the item stands in the customer's purchases there (its
share, whether it is their usual pick); per category, how habit-forming it is across
customers, and the item's share of the category's purchases.

Everything is computed from the history it is given, which for every training cut and
for scoring is the baskets *before* the predicted one, so the features are point in
time like those of :mod:`storelens.recommend.features`. Items without a category get
NaN (the trees give unknowns their own branch).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from storelens.recommend.baskets import BasketHistory

__all__ = ["CATEGORY_COLUMNS", "category_features"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
CATEGORY_COLUMNS = (
    "cat_share_of_baskets",
    "cat_decayed_share",
    "cat_baskets_since",
    "cat_kept_rate",
    "cat_distinct_items",
    "item_share_in_cat",
    "item_top_in_cat",
    "cat_repeat_rate_all",
    "item_share_of_cat_all",
)
_DECAY = 0.8
# per (user, category): share, decayed share, baskets since, kept, kept chances, distinct
# items, purchases (item-basket occurrences), the most purchases of one item
_UC = 8


def _user_rows(
    history: BasketHistory, categories: IntArray, u: int
) -> tuple[IntArray, FloatArray, IntArray, FloatArray]:
    """The user's categories with their stats, and their items with purchase counts."""
    baskets = history.baskets[u]
    n = len(baskets)
    found, counts = np.unique(np.concatenate(baskets), return_counts=True)
    items: IntArray = found.astype(np.int64)
    item_cat = categories[items]
    cats = np.unique(item_cat[item_cat >= 0])
    if len(cats) == 0:
        return cats, np.zeros((0, _UC)), items, counts.astype(np.float64)
    present = np.zeros((n, len(cats)), dtype=bool)
    for j, b in enumerate(baskets):
        c = categories[b]
        present[j, np.searchsorted(cats, c[c >= 0])] = True
    index = np.arange(n)[:, None]
    last = np.where(present, index, -1).max(axis=0)
    weights = _DECAY ** (n - 1 - np.arange(n))
    before, after = present[:-1], present[1:]
    known = item_cat >= 0
    at = np.searchsorted(cats, item_cat[known])
    distinct = np.bincount(at, minlength=len(cats)).astype(np.float64)
    bought = np.bincount(at, weights=counts[known], minlength=len(cats))
    most = np.zeros(len(cats))
    np.maximum.at(most, at, counts[known].astype(np.float64))
    stats: FloatArray = np.column_stack(
        (
            present.sum(axis=0) / n,
            (present * weights[:, None]).sum(axis=0) / weights.sum(),
            (n - last).astype(np.float64),
            (before & after).sum(axis=0).astype(np.float64),
            before.sum(axis=0).astype(np.float64),
            distinct,
            bought,
            most,
        )
    )
    return cats.astype(np.int64), stats, items, counts.astype(np.float64)


def _sorted_lookup(keys: IntArray, wanted: IntArray) -> tuple[IntArray, NDArray[np.bool_]]:
    if len(keys) == 0:
        return np.zeros(len(wanted), np.int64), np.zeros(len(wanted), dtype=bool)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return at, keys[at] == wanted


def category_features(
    history: BasketHistory, categories: IntArray, users: IntArray, items: IntArray
) -> FloatArray:
    """(candidates x :data:`CATEGORY_COLUMNS`) for the (user, item) candidate pairs;
    ``categories`` holds each item's category index, -1 where it has none."""
    n_cats = int(categories.max()) + 1 if len(categories) else 0
    uc_keys: list[IntArray] = []
    uc_vals: list[FloatArray] = []
    ui_keys: list[IntArray] = []
    ui_vals: list[FloatArray] = []
    for u in range(history.n_users):
        cats, stats, its, counts = _user_rows(history, categories, u)
        uc_keys.append(u * max(n_cats, 1) + cats)
        uc_vals.append(stats)
        ui_keys.append(u * history.n_items + its)
        ui_vals.append(counts)
    uck = np.concatenate(uc_keys) if uc_keys else np.zeros(0, np.int64)
    ucv = np.vstack(uc_vals) if uc_vals else np.zeros((0, _UC))
    uik = np.concatenate(ui_keys) if ui_keys else np.zeros(0, np.int64)
    uiv = np.concatenate(ui_vals) if ui_vals else np.zeros(0)
    # Across customers: a category bought in one basket, is it in the next? And each
    # item's share of its category's purchases (item-basket occurrences).
    cat_of = uck % max(n_cats, 1)
    kept = np.bincount(cat_of, weights=ucv[:, 3], minlength=n_cats)
    chances = np.bincount(cat_of, weights=ucv[:, 4], minlength=n_cats)
    cat_repeat = (kept + 1) / (chances + 2)
    item_bought = np.bincount(uik % max(history.n_items, 1), weights=uiv, minlength=history.n_items)
    known_items = categories >= 0
    cat_bought = np.bincount(
        categories[known_items], weights=item_bought[known_items], minlength=n_cats
    )

    out = np.full((len(users), len(CATEGORY_COLUMNS)), np.nan)
    cat = categories[items]
    has = cat >= 0
    at, found = _sorted_lookup(uck, users * max(n_cats, 1) + np.maximum(cat, 0))
    found &= has
    row = ucv[at]
    pat, pfound = _sorted_lookup(uik, users * history.n_items + items)
    mine = np.where(pfound, uiv[pat], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # A category the customer never bought: they shop it in none of their baskets.
        out[has, 0] = np.where(found, row[:, 0], 0.0)[has]
        out[has, 1] = np.where(found, row[:, 1], 0.0)[has]
        out[has, 2] = np.where(found, row[:, 2], 999.0)[has]
        out[has, 3] = np.where(found, (row[:, 3] + 1) / (row[:, 4] + 2), np.nan)[has]
        out[has, 4] = np.where(found, row[:, 5], 0.0)[has]
        out[has, 5] = np.where(found, mine / np.maximum(row[:, 6], 1.0), 0.0)[has]
        out[has, 6] = np.where(found & (mine > 0), (mine >= row[:, 7]).astype(float), 0.0)[has]
        out[has, 7] = cat_repeat[cat[has]]
        out[has, 8] = item_bought[items[has]] / np.maximum(cat_bought[cat[has]], 1.0)
    return out
