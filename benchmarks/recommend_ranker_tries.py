"""Issue 15's ranker tries, on the validation split only (each user's last training order).

The held-out last orders are never read: the training orders are split again, the blend
is trained on four time cuts of what precedes each user's last training order and scored
on that order. Each row changes one thing against the shipped blend, so a gain beyond
the noise (a standard error of about 0.011 at 592 users) would show here before anything
is reported on the held-out orders.

    python benchmarks/recommend_baskets.py instacart /tmp/instacart.csv
    python benchmarks/recommend_ranker_tries.py /tmp/instacart.csv

writes ``results/recommend_ranker_tries.json``.

The LightGBM rows (pointwise, LambdaRank and XE-NDCG with one query group per user and
cut) run only where ``lightgbm`` imports; the project does not depend on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from storelens.recommend.baskets import BasketHistory, read_baskets_csv, split_last
from storelens.recommend.features import candidate_features, pair_stats
from storelens.recommend.metrics import ranked_lists, score_lists
from storelens.recommend.ranker import SourceParams, _labels, source_scores
from storelens.recommend.sources import (
    TifuParams,
    _knn_weights,
    _tifu_user_vectors,
    tifu_knn_scores,
)
from storelens.recommend.tuning import tune

RESULTS = Path(__file__).with_name("results")
CUTS = 4
PUBLISHED_TIFU = TifuParams(
    group_size=3, within_decay=0.9, group_decay=0.7, neighbours=300, alpha=0.9
)


def extra_features(h: BasketHistory, p: SourceParams, u: np.ndarray, i: np.ndarray) -> np.ndarray:
    """TIFU-KNN's own and neighbours' parts apart; the item's usual interval across
    buyers (baskets and days) and the customer's gap against it."""
    vec = _tifu_user_vectors(h, p.tifu)
    nb = sp.csr_matrix(_knn_weights(vec, p.tifu.neighbours) @ vec)
    ps = pair_stats(h)
    item = ps.keys % h.n_items

    def item_mean(col: int) -> np.ndarray:
        ok = ~np.isnan(ps.values[:, col])
        s = np.bincount(item[ok], weights=ps.values[ok, col], minlength=h.n_items)
        c = np.bincount(item[ok], minlength=h.n_items)
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)

    baskets, days = item_mean(12), item_mean(11)
    pair = ps.lookup(u, i, h.n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack(
            (
                np.asarray(vec.tocsr()[u, i]).ravel(),
                np.asarray(nb[u, i]).ravel(),
                baskets[i],
                pair[:, 3] / baskets[i],
                days[i],
                pair[:, 10] / days[i],
            )
        )


def main() -> None:
    history = read_baskets_csv(Path(sys.argv[1]))
    train = split_last(history).train
    params = tune(train, SourceParams(), 10, progress=print)
    val = split_last(train)
    base = val.train
    xs, extras, ys, groups = [], [], [], []
    for cut in range(CUTS):
        s = split_last(base.head(cut))
        u, i, x, _ = candidate_features(s.train, source_scores(s.train, params), s.context)
        xs.append(x)
        extras.append(extra_features(s.train, params, u, i))
        ys.append(_labels(u, i, s.target, base.n_items))
        groups.append(np.unique(u, return_counts=True)[1])
        print("cut", cut, x.shape, flush=True)
    eu, ei, ex, _ = candidate_features(base, source_scores(base, params), val.context)
    ee = extra_features(base, params, eu, ei)
    x_train, e_train, y = np.vstack(xs), np.vstack(extras), np.concatenate(ys)
    group = np.concatenate(groups)
    rows: dict[str, dict[str, float]] = {}

    def record(name: str, score: np.ndarray) -> None:
        mat = sp.csr_matrix(
            (score - score.min() + 1e-9, (eu, ei)), shape=(base.n_users, base.n_items)
        )
        m = score_lists(ranked_lists(mat, 10), val.target, 10, base.n_items, np.zeros(base.n_items))
        rows[name] = {"recall@10": m.recall, "ndcg@10": m.ndcg, "map@10": m.map}
        print(f"{name:45s} recall {m.recall:.4f} ndcg {m.ndcg:.4f}", flush=True)

    from sklearn.ensemble import HistGradientBoostingClassifier

    def hgb(max_iter: int = 300) -> Any:
        return HistGradientBoostingClassifier(
            max_iter=max_iter, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100,
            l2_regularization=1.0, early_stopping=True, validation_fraction=0.15,
            n_iter_no_change=20, random_state=params.seed,
        )  # fmt: skip

    record("shipped blend (HGB, 300 rounds)", hgb().fit(x_train, y).predict_proba(ex)[:, 1])
    record("HGB, up to 800 rounds", hgb(800).fit(x_train, y).predict_proba(ex)[:, 1])
    for name, cols in (
        ("+ TIFU own / neighbour parts", [0, 1]),
        ("+ item intervals", [2, 3, 4, 5]),
    ):
        model = hgb().fit(np.hstack((x_train, e_train[:, cols])), y)
        record(name, model.predict_proba(np.hstack((ex, ee[:, cols])))[:, 1])
    try:
        import lightgbm as lgb
    except ImportError:
        print("lightgbm not installed: its rows are skipped")
    else:
        common: dict[str, Any] = dict(
            n_estimators=300, learning_rate=0.05, num_leaves=15, min_child_samples=100,
            reg_lambda=1.0, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            random_state=params.seed, verbose=-1,
        )  # fmt: skip
        fit: dict[str, Callable[[], np.ndarray]] = {
            "LightGBM pointwise": lambda: (
                lgb.LGBMClassifier(**common).fit(x_train, y).predict_proba(ex)[:, 1]
            ),
            "LightGBM lambdarank (group = user x cut)": lambda: (
                lgb.LGBMRanker(objective="lambdarank", lambdarank_truncation_level=20, **common)
                .fit(x_train, y, group=group)
                .predict(ex)
            ),
            "LightGBM rank_xendcg": lambda: (
                lgb.LGBMRanker(objective="rank_xendcg", **common)
                .fit(x_train, y, group=group)
                .predict(ex)
            ),
        }
        for name, run in fit.items():
            record(name, run())
    for name, tp in (
        ("TIFU-KNN alone, tuned " + repr(params.tifu), params.tifu),
        ("TIFU-KNN alone, published", PUBLISHED_TIFU),
    ):
        m = score_lists(
            ranked_lists(tifu_knn_scores(base, 50, tp), 10),
            val.target,
            10,
            base.n_items,
            np.zeros(base.n_items),
        )
        rows[name] = {"recall@10": m.recall, "ndcg@10": m.ndcg, "map@10": m.map}
        print(f"{name:45s} recall {m.recall:.4f} ndcg {m.ndcg:.4f}", flush=True)
    out = {"split": "validation (each user's last training order)", "users": len(val.target),
           "target_items": int(sum(len(t) for t in val.target)), "rows": rows}  # fmt: skip
    (RESULTS / "recommend_ranker_tries.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
