"""Next-basket metrics at k: precision, recall, NDCG, MAP, coverage and novelty.

Definitions (all averaged over users who have a held-out basket):

* precision@k = hits / k (a list shorter than k is not excused);
* recall@k = hits / |basket|;
* NDCG@k = DCG / ideal DCG, with binary gains and the ideal of ``min(|basket|, k)``
  hits at the top (so a perfect list of a large basket scores 1);
* MAP@k = the mean of precision at each hit, over ``min(|basket|, k)``;
* coverage = distinct items recommended to anyone / items in the catalogue;
* novelty = mean self-information ``-log2(share of users who bought the item)`` of the
  recommended items (higher: less obvious items).

Beside the rates, the counts they come from: items in the held-out baskets, items
listed, and hits (listed items that were in the basket), so a reader sees how much
of the truth was matched, not only an average over users.

The per-user precision, recall, NDCG and AP are kept (``MethodScore.per_user``, in the
order of the held-out baskets) so that two methods can be compared user by user
(:mod:`storelens.recommend.paired`) without scoring the lists again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

__all__ = ["MethodScore", "ranked_lists", "score_lists"]


@dataclass(frozen=True, slots=True)
class MethodScore:
    precision: float
    recall: float
    ndcg: float
    map: float
    coverage: float
    novelty: float
    users: int
    held_out_items: int = 0  # items in the scored users' held-out baskets
    listed: int = 0  # items recommended to them (k each, fewer when a list is short)
    hits: int = 0  # listed items that were in the basket
    # "precision", "recall", "ndcg", "map": one value per scored user, same order for
    # every method scored against the same baskets. Not part of equality or the JSON.
    per_user: Mapping[str, NDArray[np.float64]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def as_json(self, k: int) -> dict[str, float]:
        return {
            f"precision@{k}": self.precision,
            f"recall@{k}": self.recall,
            f"ndcg@{k}": self.ndcg,
            f"map@{k}": self.map,
            "coverage": self.coverage,
            "novelty": self.novelty,
            "held_out_items": self.held_out_items,
            "listed": self.listed,
            f"hits@{k}": self.hits,
        }


def ranked_lists(scores: sp.csr_matrix, k: int) -> list[NDArray[np.int64]]:
    """Each user's ``k`` best items by score (ties: lower item index first)."""
    scores = scores.tocsr()
    out: list[NDArray[np.int64]] = []
    for u in range(scores.shape[0]):
        lo, hi = scores.indptr[u], scores.indptr[u + 1]
        cols = scores.indices[lo:hi]
        vals = scores.data[lo:hi]
        order = np.lexsort((cols, -vals))[:k]
        out.append(cols[order].astype(np.int64))
    return out


def score_lists(
    lists: Sequence[NDArray[np.int64]],
    truth: Sequence[NDArray[np.int32]],
    k: int,
    n_items: int,
    popularity: NDArray[np.float64],
) -> MethodScore:
    """Score ranked lists against held-out baskets (``popularity``: share of users)."""
    if len(lists) != len(truth):
        raise ValueError(f"{len(lists)} lists for {len(truth)} baskets")
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    prec, rec, ndcg, ap = [], [], [], []
    seen: set[int] = set()
    info: list[float] = []
    held_out = listed = matched = 0
    floor = 1.0 / max(len(lists), 1)  # an item nobody bought in training: as rare as it gets
    for ranked, basket in zip(lists, truth, strict=True):
        ranked = ranked[:k]
        if len(basket) == 0:
            continue
        hit = np.isin(ranked, basket)
        hits = int(hit.sum())
        held_out, listed, matched = held_out + len(basket), listed + len(ranked), matched + hits
        prec.append(hits / k)
        rec.append(hits / len(basket))
        ideal = float(discounts[: min(len(basket), k)].sum())
        ndcg.append(float(discounts[: len(ranked)][hit].sum()) / ideal)
        if hits:
            precision_at_hit = np.cumsum(hit)[hit] / (np.flatnonzero(hit) + 1)
            ap.append(float(precision_at_hit.sum()) / min(len(basket), k))
        else:
            ap.append(0.0)
        seen.update(int(i) for i in ranked)
        info.extend((-np.log2(np.maximum(popularity[ranked], floor))).tolist())
    users = len(prec)
    per_user = {
        name: np.asarray(values, dtype=np.float64)
        for name, values in (("precision", prec), ("recall", rec), ("ndcg", ndcg), ("map", ap))
    }
    return MethodScore(
        precision=float(np.mean(prec)) if users else 0.0,
        recall=float(np.mean(rec)) if users else 0.0,
        ndcg=float(np.mean(ndcg)) if users else 0.0,
        map=float(np.mean(ap)) if users else 0.0,
        coverage=len(seen) / max(n_items, 1),
        novelty=float(np.mean(info)) if info else 0.0,
        users=users,
        held_out_items=held_out,
        listed=listed,
        hits=matched,
        per_user=per_user,
    )
