"""Hyper-parameters picked on a validation split cut from the training orders.

Each user's last *training* basket is the validation target and the baskets before it
the input, so the held-out orders the evaluation reports on are never looked at. The
grids are small on purpose: they cover the ranges the TIFU-KNN paper reports as good
for grocery data, and each point is one pass over sparse matrices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import scipy.sparse as sp

from storelens.recommend.baskets import BasketHistory, split_last
from storelens.recommend.metrics import ranked_lists, score_lists
from storelens.recommend.ranker import SourceParams
from storelens.recommend.sources import (
    TifuParams,
    als_scores,
    item_popularity,
    repeat_scores,
    tifu_knn_scores,
)

__all__ = ["ALS_GRID", "DECAY_GRID", "TIFU_GRID", "tune"]

DECAY_GRID = (0.6, 0.8, 0.9, 0.95, 1.0)
TIFU_GRID = tuple(
    TifuParams(group_size=m, within_decay=0.9, group_decay=rg, neighbours=k, alpha=a)
    for m in (3, 7)
    for rg in (0.6, 0.8)
    for k in (100, 300)
    for a in (0.7, 0.9)
)
ALS_GRID = ((32, 0.05), (64, 0.05), (64, 0.5))
Progress = Callable[[str], None]


def _recall(
    history: BasketHistory, target: Sequence[object], scores: sp.csr_matrix, k: int
) -> float:
    pop = item_popularity(history)
    return score_lists(ranked_lists(scores, k), target, k, history.n_items, pop).recall  # type: ignore[arg-type]


def tune(
    train: BasketHistory, base: SourceParams, k: int = 10, progress: Progress | None = None
) -> SourceParams:
    """The best repeat decay, TIFU-KNN setting and ALS size by recall@k on validation."""
    split = split_last(train)
    hist, target = split.train, split.target
    say = progress or (lambda _: None)
    n = base.candidates

    decay = max(DECAY_GRID, key=lambda d: _recall(hist, target, repeat_scores(hist, n, d), k))
    say(f"repeat decay {decay}")
    tifu = max(TIFU_GRID, key=lambda p: _recall(hist, target, tifu_knn_scores(hist, n, p), k))
    say(f"TIFU-KNN {tifu}")
    factors, reg = max(
        ALS_GRID,
        key=lambda fr: _recall(
            hist, target, als_scores(hist, n, fr[0], fr[1], base.als_iterations, base.seed), k
        ),
    )
    say(f"ALS factors {factors}, regularization {reg}")
    return replace(
        base,
        repeat_decay=decay,
        copurchase_decay=decay,
        tifu=tifu,
        als_factors=factors,
        als_regularization=reg,
    )
