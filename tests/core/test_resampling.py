"""The shared bootstrap: paired rows share their draws, and a seed fixes the intervals."""

from __future__ import annotations

import numpy as np
import pytest

from storelens.core import resampling
from storelens.core.resampling import bootstrap_sums, percentile_interval


def test_rows_are_summed_over_the_same_draws() -> None:
    base = np.arange(50, dtype=np.float64)
    sums = bootstrap_sums(np.stack([base, 2 * base, np.ones(50)]), resamples=300, seed=4)
    assert sums.shape == (3, 300)
    assert np.allclose(sums[1], 2 * sums[0])  # the same units drawn for both rows
    assert np.all(sums[2] == 50)  # each draw holds as many units as there are
    assert sums[0].std() > 0  # and the draws differ


def test_a_seed_gives_the_same_sums_and_blocks_do_not_change_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = np.random.default_rng(1).normal(size=(1, 40))
    whole = bootstrap_sums(values, resamples=64, seed=9)
    assert np.array_equal(whole, bootstrap_sums(values, resamples=64, seed=9))
    assert not np.array_equal(whole, bootstrap_sums(values, resamples=64, seed=10))
    monkeypatch.setattr(resampling, "_BLOCK_CELLS", 40 * 7)  # 7 resamples a block
    blocked = bootstrap_sums(values, resamples=64, seed=9)
    assert np.array_equal(blocked, whole)  # the generator's stream does not depend on blocks


def test_interval_of_a_constant_is_that_constant_and_undefined_values_are_left_out() -> None:
    assert percentile_interval(np.full(10, 3.0)) == (3.0, 3.0)
    low, high = percentile_interval(np.array([np.nan, 1.0, 2.0, 3.0, np.inf]))  # type: ignore[misc]
    assert 1.0 <= low < high <= 3.0
    assert percentile_interval(np.array([np.nan])) is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        bootstrap_sums(np.ones((1, 3)), resamples=0, seed=1)
    with pytest.raises(ValueError, match="no units"):
        bootstrap_sums(np.ones((1, 0)), resamples=5, seed=1)
