"""The bootstrap over units (users, customers) that every "how sure is this figure?" uses.

Offline evaluations score several methods on the same units, and the honest question
is how a figure would move with another draw of those units. Each resample draws units
with replacement; the caller's per-unit columns are summed over the same draw, so
paired figures (a difference, two totals and their ratio) come from one set of draws.

Index matrices are drawn a block of resamples at a time, so a large base does not need
a resamples x units matrix at once (2,000 x 1M int64 would be 16 GB); the generator is
seeded, so the same input gives the same intervals.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["bootstrap_sums", "percentile_interval"]

Array = npt.NDArray[np.float64]
_BLOCK_CELLS = 4_000_000


def bootstrap_sums(columns: Array, resamples: int, seed: int) -> Array:
    """Row ``r`` of ``columns`` (shape rows x units) summed over each of ``resamples``
    draws of the units with replacement: shape rows x resamples."""
    values = np.atleast_2d(np.asarray(columns, dtype=np.float64))
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    n = values.shape[1]
    if n == 0:
        raise ValueError("there are no units to resample")
    rng = np.random.default_rng(seed)
    sums = np.empty((values.shape[0], resamples), dtype=np.float64)
    block = max(1, _BLOCK_CELLS // n)
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        for row, column in enumerate(values):
            sums[row, start:stop] = column[idx].sum(axis=1)
    return sums


def percentile_interval(values: Array) -> tuple[float, float] | None:
    """The 2.5th and 97.5th percentiles of the finite values (None if there are none)."""
    arr = np.asarray(values, dtype=np.float64)
    defined = arr[np.isfinite(arr)]
    if defined.size == 0:
        return None
    low, high = np.percentile(defined, [2.5, 97.5])
    return float(low), float(high)
