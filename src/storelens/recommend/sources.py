"""Candidate sources: each turns a basket history into user x item scores on its own.

Every source returns a sparse matrix holding at most ``n`` scored items per user (a
dense user x item matrix would not fit for a real catalogue), so each can be
evaluated alone and the ranker can read its score for any candidate. Scores are
comparable within a source only.

* repeat purchase: the user's own baskets, each weighted by ``decay`` per later
  basket: a staple bought every week outranks a one-off from long ago;
* personal top-frequency: baskets containing the item (the baseline to beat);
* TIFU-KNN (Hu et al., SIGIR 2020): the user's vector averages groups of baskets
  with decay within and across groups, blended with their nearest users' vectors;
* item-item co-purchase: cosine of items over baskets, spread from what the user buys;
* content similarity: cosine of items over their attribute tokens (category, brand,
  price band, name words), for catalogues that have attributes;
* popularity: the same ranking for everyone (and per store/daypart when serving).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from storelens.recommend.baskets import BasketHistory

__all__ = [
    "TifuParams",
    "als_scores",
    "basket_matrix",
    "content_scores",
    "copurchase_scores",
    "decayed_counts",
    "item_cosine",
    "item_popularity",
    "popularity_scores",
    "repeat_scores",
    "tifu_knn_scores",
    "top_frequency_scores",
    "top_n",
]

FloatArray = NDArray[np.float64]
_CHUNK = 2048  # users per block when a step would otherwise hold a dense block of many rows
_SIMILARITY_BLOCK = 8_000_000  # item x item entries computed at once (about 100 MB)


def basket_matrix(history: BasketHistory) -> sp.csr_matrix:
    """One row per basket (all users, in order), 1 where the basket holds the item."""
    rows: list[int] = []
    cols: list[NDArray[np.int32]] = []
    r = 0
    for baskets in history.baskets:
        for b in baskets:
            rows.extend([r] * len(b))
            cols.append(b)
            r += 1
    col = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int32)
    data = np.ones(len(col), dtype=np.float64)
    return sp.csr_matrix((data, (np.asarray(rows), col)), shape=(r, history.n_items))


def decayed_counts(history: BasketHistory, decay: float) -> sp.csr_matrix:
    """user x item: the sum over a user's baskets of ``decay ** (baskets since)``."""
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int32]] = []
    vals: list[FloatArray] = []
    for u, baskets in enumerate(history.baskets):
        n = len(baskets)
        for j, b in enumerate(baskets):
            rows.append(np.full(len(b), u, dtype=np.int64))
            cols.append(b)
            vals.append(np.full(len(b), decay ** (n - 1 - j)))
    if not rows:
        return sp.csr_matrix((history.n_users, history.n_items))
    m = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(history.n_users, history.n_items),
    )
    m.sum_duplicates()
    return m


def top_n(scores: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep each row's ``n`` highest positive scores."""
    scores = scores.tocsr()
    indptr = [0]
    indices: list[NDArray[np.int32]] = []
    data: list[FloatArray] = []
    for u in range(scores.shape[0]):
        lo, hi = scores.indptr[u], scores.indptr[u + 1]
        vals = scores.data[lo:hi]
        cols = scores.indices[lo:hi]
        keep = vals > 0
        vals, cols = vals[keep], cols[keep]
        if len(vals) > n:
            pick = np.argpartition(-vals, n - 1)[:n]
            vals, cols = vals[pick], cols[pick]
        indices.append(cols.astype(np.int32))
        data.append(vals.astype(np.float64))
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            np.concatenate(indices) if indices else np.zeros(0, dtype=np.int32),
            np.asarray(indptr),
        ),
        shape=scores.shape,
    )


def top_frequency_scores(history: BasketHistory, n: int) -> sp.csr_matrix:
    """Baskets containing the item; ties go to the item bought more recently."""
    counts = decayed_counts(history, 1.0)
    recency = decayed_counts(history, 0.5)  # < 1 per basket: only breaks ties
    return top_n(counts + recency.multiply(1e-3), n)


def repeat_scores(history: BasketHistory, n: int, decay: float) -> sp.csr_matrix:
    """The user's staples, each basket worth ``decay`` times the one after it."""
    return top_n(decayed_counts(history, decay), n)


def item_popularity(history: BasketHistory) -> FloatArray:
    """Share of users who bought each item at least once."""
    bought = decayed_counts(history, 1.0)
    bought.data[:] = 1.0
    return np.asarray(bought.sum(axis=0)).ravel() / max(history.n_users, 1)


def popularity_scores(history: BasketHistory, n: int) -> sp.csr_matrix:
    """The ``n`` items most users bought, the same list for every user."""
    pop = item_popularity(history)
    best = np.argsort(-pop, kind="stable")[:n]
    best = best[pop[best] > 0]
    rows = np.repeat(np.arange(history.n_users), len(best))
    cols = np.tile(best, history.n_users)
    vals = np.tile(pop[best], history.n_users)
    return sp.csr_matrix((vals, (rows, cols)), shape=(history.n_users, history.n_items))


@dataclass(frozen=True, slots=True)
class TifuParams:
    """TIFU-KNN's knobs (the paper's names): group size m, within-group decay r_b,
    across-group decay r_g, neighbours k and the personal share alpha."""

    group_size: int = 7
    within_decay: float = 0.9
    group_decay: float = 0.7
    neighbours: int = 300
    alpha: float = 0.7


def _tifu_user_vectors(history: BasketHistory, p: TifuParams) -> sp.csr_matrix:
    rows: list[NDArray[np.int64]] = []
    cols: list[NDArray[np.int32]] = []
    vals: list[FloatArray] = []
    for u, baskets in enumerate(history.baskets):
        n = len(baskets)
        # Groups are cut from the oldest basket so that the newest group is full-sized
        # only when the history divides evenly, as in the paper's reference code.
        n_groups = -(-n // p.group_size)
        for g in range(n_groups):
            group = baskets[g * p.group_size : (g + 1) * p.group_size]
            gw = p.group_decay ** (n_groups - 1 - g) / n_groups
            size = len(group)
            for j, b in enumerate(group):
                w = gw * p.within_decay ** (size - 1 - j) / size
                rows.append(np.full(len(b), u, dtype=np.int64))
                cols.append(b)
                vals.append(np.full(len(b), w))
    if not rows:
        return sp.csr_matrix((history.n_users, history.n_items))
    m = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(history.n_users, history.n_items),
    )
    m.sum_duplicates()
    return m


def _knn_weights(vectors: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Row-normalised weights over each user's ``k`` most cosine-similar other users."""
    norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    unit = sp.diags(1.0 / norms) @ vectors
    n_users = vectors.shape[0]
    k = min(k, max(n_users - 1, 0))
    blocks: list[sp.csr_matrix] = []
    for lo in range(0, n_users, _CHUNK):
        hi = min(lo + _CHUNK, n_users)
        sims = (unit[lo:hi] @ unit.T).toarray()
        sims[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf  # never your own neighbour
        weights = np.zeros_like(sims)
        if k > 0:
            nbr = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            weights[np.arange(hi - lo)[:, None], nbr] = 1.0 / k
        blocks.append(sp.csr_matrix(weights))
    return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, 0))


def tifu_knn_scores(history: BasketHistory, n: int, params: TifuParams) -> sp.csr_matrix:
    """alpha x the user's own decayed vector + (1 - alpha) x their neighbours' mean."""
    user = _tifu_user_vectors(history, params)
    blend = user.multiply(params.alpha)
    if params.alpha < 1.0 and history.n_users > 1:
        neighbours = _knn_weights(user, params.neighbours) @ user
        blend = blend + neighbours.multiply(1.0 - params.alpha)
    return top_n(sp.csr_matrix(blend), n)


def _spread(user_items: sp.csr_matrix, item_sim: sp.csr_matrix, n: int) -> sp.csr_matrix:
    out: list[sp.csr_matrix] = []
    for lo in range(0, user_items.shape[0], _CHUNK):
        out.append(top_n(sp.csr_matrix(user_items[lo : lo + _CHUNK] @ item_sim), n))
    return sp.vstack(out).tocsr() if out else sp.csr_matrix(user_items.shape)


def _cosine_neighbours(item_vectors: sp.csr_matrix, neighbours: int) -> sp.csr_matrix:
    """item x item cosine, each item's ``neighbours`` best kept, itself excluded.

    Computed a block of items at a time: when attributes shared by half the catalogue
    (a brand flag, a big department) link every item to every other, the whole product
    is items squared (68,509 products of a real grocery chain: 4.7 billion entries, 29
    GiB of indices alone). Each block holds at most about ``_SIMILARITY_BLOCK``
    entries before its rows are cut to their best ``neighbours``; rows are independent,
    so the result is the same as the whole product's.
    """
    norms = np.sqrt(np.asarray(item_vectors.multiply(item_vectors).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    unit = sp.csr_matrix(sp.diags(1.0 / norms) @ item_vectors)
    unit_t = sp.csr_matrix(unit.T)
    n_items = unit.shape[0]
    step = max(1, _SIMILARITY_BLOCK // max(n_items, 1))
    blocks: list[sp.csr_matrix] = []
    for lo in range(0, n_items, step):
        sim = sp.csr_matrix(unit[lo : lo + step] @ unit_t)
        sim.setdiag(0.0, k=lo)  # row r of the block is item lo + r
        sim.eliminate_zeros()
        blocks.append(top_n(sim, neighbours))
    return sp.vstack(blocks).tocsr() if blocks else sp.csr_matrix((0, 0))


def item_cosine(history: BasketHistory, neighbours: int = 50) -> sp.csr_matrix:
    """item x item cosine over baskets, each item's ``neighbours`` best kept."""
    return _cosine_neighbours(sp.csr_matrix(basket_matrix(history).T), neighbours)


def copurchase_scores(
    history: BasketHistory, n: int, decay: float, neighbours: int = 50
) -> sp.csr_matrix:
    """Items bought with what the user buys (cosine over baskets), their own excluded."""
    return _spread(decayed_counts(history, decay), item_cosine(history, neighbours), n)


def content_scores(
    history: BasketHistory,
    attributes: Mapping[str, Sequence[str]],
    n: int,
    decay: float,
    neighbours: int = 50,
) -> sp.csr_matrix:
    """Items whose attribute tokens resemble what the user buys (``attributes`` maps a
    product id to tokens such as ``category:coffee``, ``brand:x``, ``price:2``)."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for i, product in enumerate(history.items):
        for token in set(attributes.get(product, ())):
            rows.append(i)
            cols.append(vocab.setdefault(token, len(vocab)))
    if not vocab:
        return sp.csr_matrix((history.n_users, history.n_items))
    tokens = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(history.n_items, len(vocab)))
    # Rare tokens (a brand) say more about similarity than common ones (a big category).
    idf = np.log((1 + history.n_items) / (1 + np.asarray((tokens > 0).sum(axis=0)).ravel())) + 1
    sim = _cosine_neighbours(sp.csr_matrix(tokens @ sp.diags(idf)), neighbours)
    return _spread(decayed_counts(history, decay), sim, n)


def als_scores(
    history: BasketHistory,
    n: int,
    factors: int = 64,
    regularization: float = 0.05,
    iterations: int = 15,
    seed: int = 7,
) -> sp.csr_matrix:
    """Implicit-feedback ALS (the ``implicit`` library) on BM25-weighted basket counts."""
    from storelens.recommend.factors import fit_als

    counts = decayed_counts(history, 1.0)
    model = fit_als(counts, factors, regularization, iterations, seed)
    out_rows: list[NDArray[np.int64]] = []
    out_cols: list[NDArray[np.int64]] = []
    out_vals: list[FloatArray] = []
    users = np.arange(history.n_users)
    for lo in range(0, history.n_users, _CHUNK):
        ids, scores = model.recommend(
            users[lo : lo + _CHUNK],
            counts[lo : lo + _CHUNK],
            N=min(n, history.n_items),
            filter_already_liked_items=False,
        )
        block = np.arange(lo, min(lo + _CHUNK, history.n_users))
        out_rows.append(np.repeat(block, ids.shape[1]))
        out_cols.append(ids.ravel())
        out_vals.append(scores.ravel())
    rows, cols, vals = np.concatenate(out_rows), np.concatenate(out_cols), np.concatenate(out_vals)
    keep = (cols >= 0) & np.isfinite(vals)
    # ALS scores can be negative; shift so the kept list stays positive and ordered.
    vals = vals[keep] - min(float(vals[keep].min()) if keep.any() else 0.0, 0.0) + 1e-6
    return sp.csr_matrix((vals, (rows[keep], cols[keep])), shape=(history.n_users, history.n_items))
