"""Pairwise precision, recall and F1 for identity resolution.

Pairs, not clusters, are the unit: a false merge of two large clusters should
cost in proportion to the wrong pairs it creates. Clusters are expanded to all
their within-cluster pairs before scoring. FEBRL helpers derive the truth from
``rec_id`` (``rec-123-org`` and ``rec-123-dup-0`` are the same person).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

__all__ = [
    "LinkageScores",
    "clusters_to_pairs",
    "febrl_entity",
    "febrl_true_pairs",
    "score_pairs",
]

Pair = tuple[str, str]
_FEBRL_ID = re.compile(r"^rec-(\d+)-(?:org|dup-\d+)$")


@dataclass(frozen=True)
class LinkageScores:
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __str__(self) -> str:
        return (
            f"precision={self.precision:.5f} recall={self.recall:.5f} f1={self.f1:.5f} "
            f"(tp={self.true_positives} fp={self.false_positives} fn={self.false_negatives})"
        )


def _ordered(pairs: Iterable[tuple[str, str]]) -> set[Pair]:
    return {(a, b) if a < b else (b, a) for a, b in pairs if a != b}


def score_pairs(
    predicted: Iterable[tuple[str, str]], truth: Iterable[tuple[str, str]]
) -> LinkageScores:
    """Compare unordered pairs; direction and duplicates do not matter."""
    pred, true = _ordered(predicted), _ordered(truth)
    tp = len(pred & true)
    return LinkageScores(tp, len(pred) - tp, len(true) - tp)


def clusters_to_pairs(cluster_of: Mapping[str, str]) -> set[Pair]:
    """All within-cluster pairs from a ``record id -> cluster id`` mapping."""
    members: dict[str, list[str]] = defaultdict(list)
    for record, cluster in cluster_of.items():
        members[cluster].append(record)
    return {
        (a, b) if a < b else (b, a)
        for ids in members.values()
        for a, b in combinations(sorted(ids), 2)
    }


def febrl_entity(rec_id: str) -> str:
    """The person a FEBRL ``rec_id`` belongs to (``rec-123-dup-0`` -> ``123``)."""
    match = _FEBRL_ID.match(rec_id)
    if match is None:
        raise ValueError(f"not a FEBRL rec_id: {rec_id!r}")
    return match.group(1)


def febrl_true_pairs(
    rec_ids: Iterable[str], *, across: Mapping[str, str] | None = None
) -> set[Pair]:
    """True pairs among FEBRL records: those of the same entity.

    With ``across`` (``rec_id -> source``), only pairs from different sources count,
    which is the truth for a link-only task such as FEBRL4.
    """
    pairs = clusters_to_pairs({r: febrl_entity(r) for r in rec_ids})
    if across is None:
        return pairs
    return {(a, b) for a, b in pairs if across[a] != across[b]}
