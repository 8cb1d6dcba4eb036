"""Per-customer point forecasts for absolute error, holding the total to the expected total.

Why: a model's expected count is the right number to add up (a finance forecast), but
the wrong number to quote per customer when the yardstick is the mean absolute error:
most customers buy nothing in a holdout, and for them any positive expectation is pure
error. The forecast that minimises expected absolute error is each customer's median;
medians alone would add up far short of the expected total, so both are honoured:

    minimise  sum_i E|Y_i - f_i|   subject to   sum_i f_i = sum_i E[Y_i].

E|Y - f| is convex and piecewise linear in f with slope 2 F(k) - 1 on (k, k + 1), so
the optimum raises forecasts one purchase at a time in order of the steepest fall in
expected error, the last one fractionally (greedy is exact for separable convex costs).
Equivalently, every customer gets the same quantile of their own predictive
distribution, the quantile chosen so the forecasts add up to the expected total.

Nothing here looks at outcomes: the total comes from the model, the distributions too.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from storelens.predict.clv import FitError

__all__ = ["absolute_error_forecasts", "expected_absolute_error"]

Array = npt.NDArray[np.float64]
_MASS_TOLERANCE = 1e-6
# A step whose slope is within this of 1 has F(k) within 5e-13 of 1: it lowers no error.
_USELESS = 1e-12


def _check(distribution: Array) -> None:
    if distribution.ndim != 2 or distribution.shape[1] < 1:
        raise FitError("a predictive distribution has one row a customer and one column a count")
    if (distribution < -_MASS_TOLERANCE).any():
        raise FitError("a predictive distribution has a negative probability")
    mass = distribution.sum(axis=1)
    if (mass > 1.0 + _MASS_TOLERANCE).any():
        raise FitError("a predictive distribution has more than all the probability in a row")


def absolute_error_forecasts(distribution: Array | Iterable[Array], total: float) -> Array:
    """Forecasts adding up to ``total`` with the least expected absolute error.

    ``distribution[i, k]`` is P(customer i makes k purchases), k = 0..K; a row's mass
    missing beyond K counts as above K. It may come as consecutive blocks of customers
    (any widths), so that a million customers' distributions never sit in memory at
    once: only the steps that can lower the error (F_i(k) < 1) are kept, which for most
    customers is one or two. ``total`` must lie in [0, what those steps allow].
    """
    blocks = [distribution] if isinstance(distribution, np.ndarray) else distribution
    slopes, owners, first = [], [], 0
    for block in blocks:
        _check(block)
        # Raising customer i from k to k + 1 changes expected error by 2 F_i(k) - 1.
        slope = 2.0 * np.cumsum(block[:, :-1], axis=1) - 1.0
        useful = slope < 1.0 - _USELESS
        rows, _ = np.nonzero(useful)
        slopes.append(slope[useful])
        owners.append(rows + first)
        first += block.shape[0]
    if first == 0:
        raise FitError("no customers to forecast")
    flat = np.concatenate(slopes)
    owner = np.concatenate(owners)
    if not np.isfinite(total) or total < 0 or total > flat.size:
        raise FitError(
            f"cannot spread a total of {total} over {first} customers "
            f"(their distributions allow 0..{flat.size})"
        )
    forecasts = np.zeros(first, dtype=np.float64)
    whole = int(np.floor(total))
    if total == 0:
        return forecasts
    if whole == flat.size:
        np.add.at(forecasts, owner, 1.0)
        return forecasts
    # Within one customer slopes rise with k, so any set of the smallest slopes is a
    # prefix of each customer's steps (ties cost the same either way).
    chosen = np.argpartition(flat, whole)[: whole + 1]
    chosen = chosen[np.argsort(flat[chosen], kind="stable")]
    np.add.at(forecasts, owner[chosen[:whole]], 1.0)
    forecasts[owner[chosen[whole]]] += total - whole
    return forecasts


def expected_absolute_error(distribution: Array, forecasts: Array) -> float:
    """Mean over customers of E|Y_i - f_i| under the model's own distribution."""
    _check(distribution)
    counts = np.arange(distribution.shape[1], dtype=np.float64)[None, :]
    per_customer = (distribution * np.abs(counts - forecasts[:, None])).sum(axis=1)
    return float(per_customer.mean())
