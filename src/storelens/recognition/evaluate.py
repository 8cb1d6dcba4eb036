"""False match and false non-match rates, and how the match threshold is chosen.

Pure numpy over embeddings with identity labels, so the same arithmetic scores real
photos (``benchmarks/recognition_accuracy.py``) and tests. A pair of embeddings of one
person is *genuine*, of two people an *impostor* pair; at a threshold ``t`` a genuine
pair at distance ``>= t`` is a false non-match and an impostor pair ``< t`` a false
match (the matcher's rule: a frame matches when its distance is under the threshold).

The threshold is chosen on one split and reported on another: choosing and scoring on
the same pairs reports the luck of the split as accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["PairDistances", "Rates", "choose_threshold", "pair_distances", "rates_at"]


@dataclass(frozen=True, slots=True)
class PairDistances:
    genuine: npt.NDArray[np.float64]
    impostor: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Rates:
    """Counts beside the rates: a rate of 0 over 12 pairs says little."""

    threshold: float
    genuine_pairs: int
    impostor_pairs: int
    false_non_matches: int
    false_matches: int

    @property
    def fnmr(self) -> float:
        return self.false_non_matches / self.genuine_pairs if self.genuine_pairs else float("nan")

    @property
    def fmr(self) -> float:
        return self.false_matches / self.impostor_pairs if self.impostor_pairs else float("nan")

    def as_dict(self) -> dict[str, float | int]:
        return {
            "threshold": self.threshold,
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "false_non_matches": self.false_non_matches,
            "false_matches": self.false_matches,
            "fnmr": self.fnmr,
            "fmr": self.fmr,
        }


def pair_distances(
    embeddings: npt.ArrayLike,
    labels: Sequence[str],
    *,
    groups: Sequence[str] | None = None,
    against: tuple[npt.ArrayLike, Sequence[str]] | None = None,
) -> PairDistances:
    """Distances of every pair within ``embeddings`` (or between them and ``against``).

    ``groups`` (e.g. the source photo of each augmented image) drops genuine pairs from
    one group: two edits of one photo are easier than two photos of one person.
    """
    a = np.asarray(embeddings, dtype=np.float64)
    if against is None:
        b, b_labels, same_set = a, labels, True
    else:
        b, b_labels, same_set = np.asarray(against[0], dtype=np.float64), against[1], False
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    la, lb = np.asarray(labels), np.asarray(b_labels)
    same = la[:, None] == lb[None, :]
    keep = np.triu(np.ones_like(same), k=1) if same_set else np.ones_like(same)
    keep = keep.astype(bool)
    genuine_keep = keep & same
    if groups is not None and same_set:
        g = np.asarray(groups)
        genuine_keep &= g[:, None] != g[None, :]
    return PairDistances(genuine=d[genuine_keep], impostor=d[keep & ~same])


def rates_at(threshold: float, pairs: PairDistances) -> Rates:
    return Rates(
        threshold=threshold,
        genuine_pairs=int(pairs.genuine.size),
        impostor_pairs=int(pairs.impostor.size),
        false_non_matches=int(np.sum(pairs.genuine >= threshold)),
        false_matches=int(np.sum(pairs.impostor < threshold)),
    )


def choose_threshold(pairs: PairDistances, *, margin: float, ceiling: float) -> float:
    """The threshold half-way between the worst genuine and the best impostor distance,
    kept ``margin`` under the closest impostor and never above ``ceiling``.

    With a handful of identities the impostor distances are a small sample of a
    population's, so the threshold is not pushed right up to them: ``margin`` leaves
    room for closer strangers than the sample had, and ``ceiling`` (dlib's published
    0.6 for LFW) bounds it by what a large set showed.
    """
    if pairs.genuine.size == 0 or pairs.impostor.size == 0:
        raise ValueError("need genuine and impostor pairs to choose a threshold")
    worst_genuine = float(np.max(pairs.genuine))
    best_impostor = float(np.min(pairs.impostor))
    middle = (worst_genuine + best_impostor) / 2
    return round(min(middle, best_impostor - margin, ceiling), 3)
