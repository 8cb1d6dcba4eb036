"""The learned blend: gradient-boosted scoring of the union of every source's candidates.

No single source wins everywhere: a customer with a long, steady history is best
served by their own staples, a new one by what people like them buy. The blend
learns that from history: each (customer, candidate) pair gets features (every
source's score and rank, how often and how recently the customer bought the item,
how many baskets they have, how widely and how repeatedly the item is bought), and
a gradient-boosted classifier learns P(item in the next basket).

It is trained on a time split cut from the training orders only: inputs are each
customer's baskets before their last training basket, labels that basket. The
held-out orders are never seen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from storelens.recommend.baskets import Basket, BasketHistory, split_last
from storelens.recommend.sources import (
    TifuParams,
    als_scores,
    content_scores,
    copurchase_scores,
    decayed_counts,
    item_popularity,
    popularity_scores,
    repeat_scores,
    tifu_knn_scores,
    top_frequency_scores,
)

__all__ = [
    "BLENDED_SOURCES",
    "Blend",
    "SourceParams",
    "candidate_features",
    "fit_blend",
    "source_scores",
]

BLENDED_SOURCES = (
    "personal_top_frequency",
    "repeat",
    "tifu_knn",
    "als",
    "copurchase",
    "content",
    "global_popularity",
)
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class SourceParams:
    """Every source's settings; :func:`storelens.recommend.tuning.tune` picks them."""

    candidates: int = 50
    repeat_decay: float = 0.9
    copurchase_decay: float = 0.8
    tifu: TifuParams = field(default_factory=TifuParams)
    als_factors: int = 64
    als_regularization: float = 0.05
    als_iterations: int = 15
    seed: int = 7


def source_scores(
    history: BasketHistory,
    params: SourceParams,
    attributes: Mapping[str, Sequence[str]] | None = None,
    only: Sequence[str] = BLENDED_SOURCES,
) -> dict[str, sp.csr_matrix]:
    """Each requested source's top candidates for every user of ``history``."""
    n = params.candidates
    build: dict[str, Any] = {
        "personal_top_frequency": lambda: top_frequency_scores(history, n),
        "repeat": lambda: repeat_scores(history, n, params.repeat_decay),
        "tifu_knn": lambda: tifu_knn_scores(history, n, params.tifu),
        "als": lambda: als_scores(
            history,
            n,
            params.als_factors,
            params.als_regularization,
            params.als_iterations,
            params.seed,
        ),
        "copurchase": lambda: copurchase_scores(history, n, params.copurchase_decay),
        "content": lambda: content_scores(history, attributes or {}, n, params.repeat_decay),
        "global_popularity": lambda: popularity_scores(history, n),
    }
    out: dict[str, sp.csr_matrix] = {}
    for name in only:
        if name == "content" and not attributes:
            continue  # no product attributes: nothing to compare
        out[name] = build[name]()
    return out


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


def _lookup(mat: sp.csr_matrix, users: NDArray[np.int64], items: NDArray[np.int64]) -> FloatArray:
    return np.asarray(mat[users, items]).ravel().astype(np.float64)


def _baskets_since(history: BasketHistory) -> sp.csr_matrix:
    """user x item: baskets since the user last bought the item, plus one (0: never)."""
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for u, baskets in enumerate(history.baskets):
        seen: dict[int, int] = {}
        for gap, b in enumerate(reversed(baskets), start=1):
            for i in b.tolist():
                seen.setdefault(i, gap)
        rows.extend([u] * len(seen))
        cols.extend(seen)
        vals.extend(seen.values())
    return sp.csr_matrix((vals, (rows, cols)), shape=(history.n_users, history.n_items))


def candidate_features(
    history: BasketHistory, scores: Mapping[str, sp.csr_matrix]
) -> tuple[NDArray[np.int64], NDArray[np.int64], FloatArray, list[str]]:
    """(users, items, features, feature names) for every candidate any source gave."""
    pool = sum((m.tocsr() > 0).astype(np.float64) for m in scores.values())
    pool = sp.csr_matrix(pool).tocoo()
    users, items = pool.row.astype(np.int64), pool.col.astype(np.int64)
    names: list[str] = []
    columns: list[FloatArray] = []
    for name, mat in scores.items():
        score = _lookup(mat, users, items)
        rank = _lookup(_ranks(mat), users, items)
        rank[rank == 0] = mat.shape[1]  # not in this source's list at all
        columns += [score, rank]
        names += [f"{name}_score", f"{name}_rank"]
    counts = decayed_counts(history, 1.0)
    n_baskets = np.array([len(b) for b in history.baskets], dtype=np.float64)
    sizes = np.array(
        [np.mean([len(x) for x in b]) if b else 0.0 for b in history.baskets], dtype=np.float64
    )
    freq = _lookup(counts, users, items)
    since = _lookup(_baskets_since(history), users, items)
    bought = counts.copy()
    bought.data[:] = 1.0
    buyers = np.asarray(bought.sum(axis=0)).ravel()
    repeaters = np.asarray((counts >= 2).sum(axis=0)).ravel()
    columns += [
        freq,
        freq / np.maximum(n_baskets[users], 1.0),
        np.where(since == 0, n_baskets[users] + 1, since),
        n_baskets[users],
        sizes[users],
        item_popularity(history)[items],
        repeaters[items] / np.maximum(buyers[items], 1.0),
    ]
    names += [
        "times_bought",
        "share_of_baskets",
        "baskets_since_bought",
        "user_baskets",
        "user_basket_size",
        "item_popularity",
        "item_repeat_ratio",
    ]
    return users, items, np.column_stack(columns), names


@dataclass(frozen=True, slots=True)
class Blend:
    """A fitted blend: the classifier and the feature names it was trained on."""

    model: Any
    feature_names: tuple[str, ...]
    sources: tuple[str, ...]

    def score(self, history: BasketHistory, scores: Mapping[str, sp.csr_matrix]) -> sp.csr_matrix:
        """P(in the next basket) for every candidate, as a user x item matrix."""
        users, items, x, names = candidate_features(history, scores)
        if tuple(names) != self.feature_names:
            raise ValueError("feature layout differs from the one the blend was trained on")
        proba = self.model.predict_proba(x)[:, 1] if len(x) else np.zeros(0)
        return sp.csr_matrix(
            (proba + 1e-9, (users, items)), shape=(history.n_users, history.n_items)
        )


def _labels(users: NDArray[np.int64], items: NDArray[np.int64], target: list[Basket]) -> FloatArray:
    y = np.zeros(len(users))
    for u in np.unique(users):
        mask = users == u
        y[mask] = np.isin(items[mask], target[u])
    return y


def _cut(history: BasketHistory, cut: int) -> BasketHistory:
    """Every user's history minus their last ``cut`` baskets (at least one basket left)."""
    keep = [u for u, b in enumerate(history.baskets) if len(b) > cut]
    return BasketHistory(
        users=tuple(history.users[u] for u in keep),
        items=history.items,
        baskets=tuple(history.baskets[u][: len(history.baskets[u]) - cut] for u in keep),
    )


def fit_blend(
    history: BasketHistory,
    params: SourceParams,
    attributes: Mapping[str, Sequence[str]] | None = None,
    sources: Sequence[str] = BLENDED_SOURCES,
    cuts: int = 3,
) -> Blend:
    """Train on the training baskets only: for each of the last ``cuts`` baskets of every
    user, the baskets before it are the input and that basket is the label (more cuts,
    more examples of how each user's next basket follows their past)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    names: list[str] = []
    used: tuple[str, ...] = ()
    for cut in range(cuts):
        split = split_last(_cut(history, cut))
        if split.train.n_users == 0:
            break
        scores = source_scores(split.train, params, attributes, sources)
        users, items, x, names = candidate_features(split.train, scores)
        xs.append(x)
        ys.append(_labels(users, items, split.target))
        used = tuple(scores)
    if not xs:
        raise ValueError("no user has two training baskets: nothing to learn a blend from")
    model = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.05,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=params.seed,
    )
    model.fit(np.vstack(xs), np.concatenate(ys))
    return Blend(model=model, feature_names=tuple(names), sources=used)
