"""Pareto/NBD: the published CDNOW fit, lifetimes' formulas, fits that repeat exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from storelens.predict.cdnow import CALIBRATION_END, HOLDOUT_END, load_cdnow
from storelens.predict.clv import FitError
from storelens.predict.pareto import (
    ParetoNbdParams,
    fit_pareto_nbd,
    pareto_expected_purchases,
    pareto_log_likelihood,
    pareto_p_alive,
)
from storelens.predict.summary import summarise

# Fader, Hardie and Lee (2005), CDNOW 1/10 sample: r 0.553, alpha 10.578, s 0.606, beta 11.669.
PUBLISHED = ParetoNbdParams(r=0.553, alpha=10.578, s=0.606, beta=11.669)


@pytest.fixture(scope="module")
def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    summary = summarise(load_cdnow("sample"), CALIBRATION_END, HOLDOUT_END)
    x, t_x, big_t = (summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    return x, t_x, big_t


def test_fit_reproduces_the_published_cdnow_parameters(
    sample: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    fitted = fit_pareto_nbd(*sample)
    assert fitted.as_dict() == pytest.approx(PUBLISHED.as_dict(), rel=2e-3)
    # The published log-likelihood is -9,595.0; the fit is at least as good as the
    # published (rounded) parameters.
    ll = pareto_log_likelihood(fitted, *sample).sum()
    assert ll == pytest.approx(-9595.0, abs=0.05)
    assert ll >= pareto_log_likelihood(PUBLISHED, *sample).sum()


def test_formulas_equal_lifetimes_at_the_same_parameters(
    sample: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    from lifetimes import ParetoNBDFitter

    x, t_x, big_t = sample
    theirs = ParetoNBDFitter()
    for params in (PUBLISHED, ParetoNbdParams(1.2, 3.0, 2.5, 40.0)):  # alpha >= beta and below
        values = (params.r, params.alpha, params.s, params.beta)
        theirs.params_ = pd.Series(values, index=["r", "alpha", "s", "beta"])
        np.testing.assert_allclose(
            pareto_log_likelihood(params, x, t_x, big_t),
            ParetoNBDFitter._conditional_log_likelihood(values, x, t_x, big_t),
            rtol=1e-10,
        )
        np.testing.assert_allclose(
            pareto_p_alive(params, x, t_x, big_t),
            theirs.conditional_probability_alive(x, t_x, big_t),
            rtol=1e-9,
        )
        np.testing.assert_allclose(
            pareto_expected_purchases(params, 39.0, x, t_x, big_t),
            theirs.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, big_t),
            rtol=1e-9,
        )


def test_a_fit_is_a_pure_function_of_the_customers(
    sample: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """lifetimes drew its start from numpy's global generator; nothing here is drawn."""
    x, t_x, big_t = sample
    np.random.seed(1)
    first = fit_pareto_nbd(x, t_x, big_t)
    np.random.seed(2)
    order = np.random.default_rng(3).permutation(len(x))
    shuffled = fit_pareto_nbd(x[order], t_x[order], big_t[order])
    assert first == shuffled  # bit for bit, in any row order


def test_horizon_zero_predicts_nothing_and_s_one_is_the_limit(
    sample: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, t_x, big_t = sample
    assert not pareto_expected_purchases(PUBLISHED, 0.0, x, t_x, big_t).any()
    at_one = ParetoNbdParams(0.553, 10.578, 1.0, 11.669)
    near = ParetoNbdParams(0.553, 10.578, 1.0 + 1e-7, 11.669)
    np.testing.assert_allclose(
        pareto_expected_purchases(at_one, 39.0, x, t_x, big_t),
        pareto_expected_purchases(near, 39.0, x, t_x, big_t),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="horizon"):
        pareto_expected_purchases(PUBLISHED, -1.0, x, t_x, big_t)


def test_more_repeat_buying_means_more_expected_purchases() -> None:
    alive_at_t = np.array([2.0, 6.0]), np.array([30.0, 30.0]), np.array([30.0, 30.0])
    low, high = pareto_expected_purchases(PUBLISHED, 10.0, *alive_at_t)
    assert 0 < low < high
    # A buyer silent for most of their history is less likely alive than a recent one.
    recent, silent = pareto_p_alive(PUBLISHED, np.array([3.0, 3.0]), np.array([29.0, 2.0]),
                                    np.array([30.0, 30.0]))  # fmt: skip
    assert silent < recent <= 1.0


@pytest.mark.parametrize(
    ("x", "t_x", "big_t", "message"),
    [
        ([1.0, 0.0, 2.0], [1.0, 0.0, 3.0], [5.0, 5.0, 5.0], "at least 4"),
        ([0.0] * 5, [0.0] * 5, [5.0] * 5, "repeat buyer"),
        ([1.0, 0.0, 2.0, np.nan], [1.0, 0.0, 3.0, 0.0], [5.0] * 4, "finite"),
        ([1.0, 0.0, 2.0, 1.0], [6.0, 0.0, 3.0, 1.0], [5.0] * 4, "recency <= age"),
        ([1.0, 0.0, 2.0, -1.0], [1.0, 0.0, 3.0, 1.0], [5.0] * 4, "negative frequency"),
    ],
)
def test_bad_input_is_refused(
    x: list[float], t_x: list[float], big_t: list[float], message: str
) -> None:
    with pytest.raises(FitError, match=message):
        fit_pareto_nbd(np.array(x), np.array(t_x), np.array(big_t))
