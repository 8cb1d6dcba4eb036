"""The learned blend: gradient-boosted scoring of the union of every source's candidates.

No single source wins everywhere: a customer with a long, steady history is best
served by their own staples, a new one by what people like them buy. The blend
learns that from history: each (customer, candidate) pair gets the features of
:mod:`storelens.recommend.features` (every source's score and rank, the customer's
habit with the item, the item's habit across customers, the predicted order's
context), and a gradient-boosted classifier learns P(item in the next basket).
Ranking by a pointwise probability over a candidate pool that holds nearly all of a
customer's history gives up little against a pairwise objective here, and needs only
scikit-learn.

It is trained on time splits cut from the training orders only: inputs are each
customer's baskets before one of their last training baskets, labels that basket.
The held-out orders are never seen. The settings (four cuts, small trees with large
leaves) were chosen on the validation split: with a few hundred customers, bigger
trees learn individual customers rather than habits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from storelens.recommend.baskets import Basket, BasketHistory, split_last
from storelens.recommend.features import candidate_features
from storelens.recommend.products import item_categories
from storelens.recommend.sources import (
    TifuParams,
    als_scores,
    content_scores,
    copurchase_scores,
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


def _categories(
    history: BasketHistory, attributes: Mapping[str, Sequence[str]] | None, use: bool
) -> NDArray[np.int64] | None:
    """Each item's category index when product attributes are given and the user x
    category features are wanted; ``None`` (no category columns at all) otherwise."""
    if not use or not attributes:
        return None
    return item_categories(history.items, attributes)


@dataclass(frozen=True, slots=True)
class Blend:
    """A fitted blend: the classifier, the feature names it was trained on, the columns
    that had no known value in training (see :func:`_model_input`) and whether it
    reads the user x category features (only when trained with product attributes)."""

    model: Any
    feature_names: tuple[str, ...]
    sources: tuple[str, ...]
    blank: tuple[int, ...] = ()
    categories: bool = False

    def score(
        self,
        history: BasketHistory,
        scores: Mapping[str, sp.csr_matrix],
        context: FloatArray | None = None,
        attributes: Mapping[str, Sequence[str]] | None = None,
    ) -> sp.csr_matrix:
        """P(in the next basket) for every candidate, as a user x item matrix
        (``context``: the predicted order's days since prior order, day, hour per user;
        ``attributes``: the product attributes the blend was trained with, if any)."""
        cats = _categories(history, attributes, self.categories)
        users, items, x, names = candidate_features(history, scores, context, cats)
        if tuple(names) != self.feature_names:
            raise ValueError("feature layout differs from the one the blend was trained on")
        proba = (
            self.model.predict_proba(_model_input(x, self.blank))[:, 1] if len(x) else np.zeros(0)
        )
        return sp.csr_matrix(
            (proba + 1e-9, (users, items)), shape=(history.n_users, history.n_items)
        )


def _model_input(x: FloatArray, blank: tuple[int, ...]) -> FloatArray:
    """The trees take unknowns (NaN) as their own branch, but a column with no known
    value at all (a basket file without context columns) cannot be binned: those
    columns, fixed when training, are set to -1 (every feature is otherwise >= 0)."""
    if not blank:
        return x
    x = x.copy()
    x[:, list(blank)] = -1.0
    return x


def _labels(
    users: NDArray[np.int64], items: NDArray[np.int64], target: list[Basket], n_items: int
) -> FloatArray:
    """1 where the candidate is in that user's target basket."""
    sizes = [len(t) for t in target]
    truth = np.repeat(np.arange(len(target), dtype=np.int64), sizes) * n_items + (
        np.concatenate(target).astype(np.int64) if target else np.zeros(0, np.int64)
    )
    return np.isin(users * n_items + items, truth).astype(np.float64)


def fit_blend(
    history: BasketHistory,
    params: SourceParams,
    attributes: Mapping[str, Sequence[str]] | None = None,
    sources: Sequence[str] = BLENDED_SOURCES,
    cuts: int = 4,
    category_features: bool = False,
) -> Blend:
    """Train on the training baskets only: for each of the last ``cuts`` baskets of every
    user, the baskets before it are the input and that basket is the label (more cuts,
    more examples of how each user's next basket follows their past).

    With product ``attributes`` that name categories, ``category_features`` adds the
    user x category columns. Off by default: on the Instacart validation split (aisles
    for 73 % of lines) they gained nothing (docs/recommendations.md). Without
    attributes the features and the model are exactly those of a blend without them."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    names: list[str] = []
    used: tuple[str, ...] = ()
    for cut in range(cuts):
        split = split_last(history.head(cut))
        if split.train.n_users == 0:
            break
        scores = source_scores(split.train, params, attributes, sources)
        cats = _categories(split.train, attributes, category_features)
        users, items, x, names = candidate_features(split.train, scores, split.context, cats)
        xs.append(x)
        ys.append(_labels(users, items, split.target, history.n_items))
        used = tuple(scores)
    if not xs:
        raise ValueError("no user has two training baskets: nothing to learn a blend from")
    model = HistGradientBoostingClassifier(
        max_iter=300,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=100,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        random_state=params.seed,
    )
    x = np.vstack(xs)
    blank = tuple(int(c) for c in np.flatnonzero(np.isnan(x).all(axis=0)))
    model.fit(_model_input(x, blank), np.concatenate(ys))
    return Blend(
        model=model,
        feature_names=tuple(names),
        sources=used,
        blank=blank,
        categories=_categories(history, attributes, category_features) is not None,
    )
