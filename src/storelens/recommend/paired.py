"""Paired comparisons: is the blend's lead over a baseline larger than the noise?

Every method is scored on the same held-out baskets, so the question "does the blend
beat TIFU-KNN?" is about the per-user *difference*, whose spread is much smaller than
either method's own (a user with an easy basket is easy for both). A method's mean over
592 Instacart users has a standard error of about 0.011, which would swamp a lead of
0.012 if the two errors were treated as independent; the paired error does not.

The interval is a percentile bootstrap over users: resample users with replacement,
take the mean difference of each resample, report the 2.5th and 97.5th percentiles.
The generator is seeded, so the same report gives the same interval. The intervals
are per comparison (not adjusted for comparing the blend with several baselines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from storelens.core.resampling import bootstrap_sums, percentile_interval
from storelens.recommend.metrics import MethodScore

__all__ = [
    "PAIRED_METRICS",
    "PAIRED_RESAMPLES",
    "PAIRED_SEED",
    "PairedDiff",
    "paired_bootstrap",
    "paired_comparisons",
]

PAIRED_METRICS = ("recall", "ndcg")
PAIRED_RESAMPLES = 2000
PAIRED_SEED = 20_240_601


@dataclass(frozen=True, slots=True)
class PairedDiff:
    """Mean of ``a - b`` over the same users and its 95 % bootstrap interval."""

    diff: float
    low: float
    high: float
    users: int

    def as_json(self) -> dict[str, float | list[float]]:
        return {"diff": self.diff, "ci95": [self.low, self.high]}


def paired_bootstrap(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    resamples: int = PAIRED_RESAMPLES,
    seed: int = PAIRED_SEED,
) -> PairedDiff:
    """Mean of ``a - b`` (element ``i`` is user ``i`` under both methods) and its
    percentile bootstrap 95 % interval from ``resamples`` resamples of users."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"paired scores must be two equal-length vectors, got {a.shape} and {b.shape}"
        )
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    n = a.shape[0]
    if n == 0:
        return PairedDiff(diff=0.0, low=0.0, high=0.0, users=0)
    d = a - b
    if not np.all(np.isfinite(d)):
        raise ValueError("paired scores must be finite")
    interval = percentile_interval(bootstrap_sums(d, resamples, seed)[0] / n)
    assert interval is not None  # every resample of finite values has a mean
    low, high = interval
    return PairedDiff(diff=float(d.mean()), low=float(low), high=float(high), users=n)


def paired_comparisons(
    methods: Mapping[str, MethodScore],
    reference: str = "blend",
    metrics: Sequence[str] = PAIRED_METRICS,
    resamples: int = PAIRED_RESAMPLES,
    seed: int = PAIRED_SEED,
) -> dict[str, dict[str, PairedDiff]]:
    """``reference`` minus every other method, per metric, over the same users.

    Each comparison uses the same seed, so every baseline is judged on the same
    resamples of users.
    """
    if reference not in methods:
        return {}
    ref = methods[reference]
    out: dict[str, dict[str, PairedDiff]] = {}
    for name, score in methods.items():
        if name == reference:
            continue
        out[name] = {
            m: paired_bootstrap(ref.per_user[m], score.per_user[m], resamples, seed)
            for m in metrics
        }
    return out
