"""Offline evaluation: every source alone, the baselines and the blend, on held-out baskets.

The last basket of every user is held out. Hyper-parameters are tuned and the blend is
trained on the training baskets only (:mod:`storelens.recommend.tuning`,
:func:`storelens.recommend.ranker.fit_blend`), then every method ranks items for each
user from the training baskets and is scored against the held-out basket. The blend is
then compared with every other method user by user (:mod:`storelens.recommend.paired`),
because the methods' own standard errors are too wide to tell a small lead from noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from storelens.recommend.baskets import BasketHistory, split_last
from storelens.recommend.metrics import MethodScore, ranked_lists, score_lists
from storelens.recommend.paired import PairedDiff, paired_comparisons
from storelens.recommend.ranker import SourceParams, fit_blend, source_scores
from storelens.recommend.sources import item_popularity
from storelens.recommend.tuning import tune

__all__ = ["BASELINES", "EvalReport", "evaluate_history"]

BASELINES = ("global_popularity", "personal_top_frequency", "tifu_knn", "als")
Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class EvalReport:
    users: int
    items: int
    train_baskets: int
    k: int
    params: SourceParams
    methods: dict[str, MethodScore]
    # blend minus each other method: {"tifu_knn": {"recall": PairedDiff, "ndcg": ...}}
    paired: dict[str, dict[str, PairedDiff]] = field(default_factory=dict)
    single_order_users: int = 0  # in the file, not scored: nothing to hold out

    def as_json(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "single_order_users": self.single_order_users,
            "items": self.items,
            "train_baskets": self.train_baskets,
            "k": self.k,
            "methods": {name: s.as_json(self.k) for name, s in self.methods.items()},
            "paired": {
                name: {f"{m}@{self.k}": d.as_json() for m, d in diffs.items()}
                for name, diffs in self.paired.items()
            },
        }


def evaluate_history(
    history: BasketHistory,
    k: int = 10,
    attributes: Mapping[str, Sequence[str]] | None = None,
    base: SourceParams | None = None,
    tuned: bool = True,
    progress: Progress | None = None,
    category_features: bool = False,
) -> EvalReport:
    """Hold out each user's last basket; score every source, baseline and the blend
    (``attributes``: product tokens for content similarity and, with
    ``category_features``, the blend's user x category columns)."""
    say = progress or (lambda _: None)
    split = split_last(history)
    train = split.train
    if train.n_users == 0:
        raise ValueError("no user has two baskets: nothing to hold out")
    params = base or SourceParams()
    if tuned:
        say("tuning on the validation split (last training basket)")
        params = tune(train, params, k, progress=say)
    say("building candidates")
    scores = source_scores(train, params, attributes)
    say("training the blend")
    blend = fit_blend(train, params, attributes, tuple(scores), category_features=category_features)
    pop = item_popularity(train)
    methods: dict[str, MethodScore] = {}
    for name, mat in scores.items():
        methods[name] = score_lists(ranked_lists(mat, k), split.target, k, train.n_items, pop)
    say("scoring the blend")
    methods["blend"] = score_lists(
        ranked_lists(blend.score(train, scores, split.context, attributes), k),
        split.target,
        k,
        train.n_items,
        pop,
    )
    return EvalReport(
        users=train.n_users,
        items=train.n_items,
        train_baskets=train.n_baskets(),
        k=k,
        params=params,
        methods=methods,
        paired=paired_comparisons(methods, reference="blend"),
        single_order_users=history.n_users - train.n_users,
    )
