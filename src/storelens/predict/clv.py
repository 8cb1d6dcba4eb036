"""BG/NBD purchase counts, P(alive), Gamma-Gamma spend and discounted lifetime value.

Fitting is done by ``lifetimes`` (the maintained reference implementation; it runs on
numpy 2 and pandas 2.x), imported only when a fit is asked for so that the base install
stays light. Scoring is done here in plain numpy over the fitted parameters: the
formulas are four lines each, and evaluating them on arrays scores a million customers
in well under a second, where going through the fitter's pandas plumbing would not.
``tests/predict/test_clv.py`` holds the scores equal to lifetimes' own.

Times are in the periods of :mod:`storelens.predict.summary` (weeks).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from storelens.core.errors import MissingExtra, StorelensError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "GAMMA_GAMMA_PENALTIES",
    "WEEKS_PER_MONTH",
    "BgNbdParams",
    "FitError",
    "GammaGammaParams",
    "expected_purchases",
    "expected_spend",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "lifetime_value",
    "p_alive",
    "quiet_lifetimes",
]

Array = npt.NDArray[np.float64]
log = logging.getLogger(__name__)
WEEKS_PER_MONTH = 4.345  # lifetimes' own month for weekly data, kept so CLVs agree


class FitError(StorelensError):
    """The data cannot support the model (too few customers, or no repeat buyers)."""


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """BG/NBD: purchase rate ~ Gamma(r, alpha); dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Gamma-Gamma: a customer's mean spend ~ Gamma(q, v) over Gamma(p, ·) transactions.

    ``penalizer`` is the L2 penalty the fit needed (0: plain maximum likelihood)."""

    p: float
    q: float
    v: float
    penalizer: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@contextmanager
def quiet_lifetimes() -> Iterator[None]:
    """Keep lifetimes' failed-optimiser dump off stdout (``print(output)`` before it raises),
    where it would corrupt ``--json`` output; it goes to the debug log instead."""
    dump = io.StringIO()
    try:
        # The optimiser tries points where numpy warns (a sqrt of a negative); the fit's
        # result is judged by its own checks, and the warning only confused a new user.
        # numpy's error state is per thread, unlike the warnings filters.
        with redirect_stdout(dump), np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            yield
    finally:
        if dump.getvalue():
            log.debug("lifetimes optimiser output: %s", dump.getvalue())


def _lifetimes() -> Any:
    try:
        import lifetimes
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise MissingExtra("lifetime-value models", "predict") from exc
    return lifetimes


def fit_bgnbd(summary: pd.DataFrame) -> BgNbdParams:
    """Maximum-likelihood BG/NBD on ``frequency``, ``recency``, ``T`` (no penalty)."""
    lifetimes = _lifetimes()
    if len(summary) < 4:
        raise FitError(f"BG/NBD needs at least 4 customers, got {len(summary)}")
    if not (summary["frequency"] > 0).any():
        raise FitError("BG/NBD needs at least one repeat buyer in the calibration period")
    fitter = lifetimes.BetaGeoFitter(penalizer_coef=0.0)
    try:
        with quiet_lifetimes():
            fitter.fit(summary["frequency"], summary["recency"], summary["T"])
    except lifetimes.utils.ConvergenceError:
        return _fit_bgnbd_on_ridge(summary)
    p = fitter.params_
    params = BgNbdParams(float(p["r"]), float(p["alpha"]), float(p["a"]), float(p["b"]))
    if not _inside_ridge_bounds(params, summary):
        # BFGS walked off towards a limit (no spread in purchase rates, no dropout: r,
        # alpha and b in the millions, a at 0), where the forecasts' hypergeometric terms
        # are NaN: a new user's small file gave NaN forecasts and a traceback. The
        # bounded fit stops at the ridge's end, which predicts like the limit.
        return _fit_bgnbd_on_ridge(summary)
    return params


_LOG_BOUNDS = (-10.0, 12.0)  # the bounded fit's log-parameters (lifetimes' time scale)


def _time_scale(summary: pd.DataFrame) -> float:
    """lifetimes' own rescaling of time, in which the bounded fit's alpha is bounded."""
    return 10.0 / float(summary["T"].max())


def _inside_ridge_bounds(params: BgNbdParams, summary: pd.DataFrame) -> bool:
    values = np.array([params.r, params.alpha * _time_scale(summary), params.a, params.b])
    if not (np.isfinite(values).all() and (values > 0).all()):
        return False
    logs = np.log(values)
    return bool(((logs >= _LOG_BOUNDS[0] - 1e-9) & (logs <= _LOG_BOUNDS[1] + 1e-9)).all())


def _fit_bgnbd_on_ridge(summary: pd.DataFrame) -> BgNbdParams:
    """BG/NBD by Nelder-Mead within bounds, for when lifetimes' BFGS stops short.

    Why: when customers barely drop out at purchases (a store whose customers leave
    between visits, as the lifecycle simulator's do), the likelihood rises along a ridge
    where a and b grow together; BFGS stops there with "precision loss" and lifetimes
    reports no fit at all. The same likelihood (lifetimes' own), maximised without
    gradients with log-parameters bounded (a, b up to e^12), gives the ridge's end,
    which predicts like the unbounded optimum.
    """
    from lifetimes import BetaGeoFitter
    from scipy.optimize import minimize

    x, t_x, big_t = (summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    scale = _time_scale(summary)
    weights = np.ones_like(x)

    def loss(theta: Array) -> float:
        value = BetaGeoFitter._negative_log_likelihood(
            theta, x, t_x * scale, big_t * scale, weights, 0.0
        )
        return float(value) if np.isfinite(value) else 1e12

    with np.errstate(all="ignore"):
        best = minimize(
            loss,
            np.zeros(4),
            method="Nelder-Mead",
            bounds=[_LOG_BOUNDS] * 4,
            options={"maxiter": 20_000, "maxfev": 20_000, "xatol": 1e-8, "fatol": 1e-10},
        )
        if not best.success and best.fun < 1e12:
            # Nelder-Mead can run out of evaluations crawling along the flat ridge to
            # the bounds (a new user's file): a bounded gradient polish from where it
            # stopped finishes the walk, and where neither moves, the point stands.
            polished = minimize(loss, best.x, method="L-BFGS-B", bounds=[_LOG_BOUNDS] * 4)
            if polished.fun <= best.fun:
                best = polished
            log.debug("BG/NBD on the ridge stopped without converging: %s", best.message)
    if best.fun >= 1e12 or not np.isfinite(best.x).all():
        raise FitError(f"BG/NBD did not converge: {best.message}")
    r, alpha, a, b = np.exp(best.x).tolist()
    return BgNbdParams(r, alpha / scale, a, b)


GAMMA_GAMMA_PENALTIES = (0.0, 1e-4, 1e-3, 1e-2)
"""Tried in order. Where every customer spends much the same each visit (a café's
regulars), the likelihood keeps rising as p grows without bound, and the optimiser
stops on precision loss; on the demo's orders it did at 42 of 108 cut-offs. A small
penalty (lifetimes' own remedy) keeps p finite. It shrinks spend toward the store's
mean a little more than the data asks: at one such demo cut-off (66 repeat buyers, mean
spend 6.76) expected spend differed from each customer's own mean by 0.12 on average."""


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGammaParams:
    """Gamma-Gamma on repeat buyers with a positive mean repeat spend: plain maximum
    likelihood, or the smallest penalty of :data:`GAMMA_GAMMA_PENALTIES` that converges
    to a population mean (q > 1) inside the range of the repeat buyers' own means."""
    lifetimes = _lifetimes()
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    if len(repeat) < 3:
        raise FitError(f"Gamma-Gamma needs at least 3 repeat buyers who spent, got {len(repeat)}")
    for penalty in GAMMA_GAMMA_PENALTIES:
        fitter = lifetimes.GammaGammaFitter(penalizer_coef=penalty)
        try:
            with quiet_lifetimes():
                fitter.fit(repeat["frequency"], repeat["monetary"])
        except lifetimes.utils.ConvergenceError:
            continue
        p, q, v = (float(fitter.params_[k]) for k in ("p", "q", "v"))
        if not (np.isfinite([p, q, v]).all() and q > 1):  # q <= 1: no finite mean spend
            continue
        # The population's mean spend, which a one-time buyer is given, must lie among
        # the repeat buyers' own means: a penalised fit with q just above 1 gave 427.9 a
        # purchase on spends averaging 7.12 (a review), worse than no lifetime value.
        population = p * v / (q - 1)
        if repeat["monetary"].min() <= population <= repeat["monetary"].max():
            return GammaGammaParams(p, q, v, penalty)
    # Not lifetimes' own text: it advises a penalizer no command of ours takes.
    raise FitError(
        f"Gamma-Gamma gave no plausible fit to the spends of {len(repeat)} repeat buyers "
        f"(it did not converge, or its mean spend lay outside theirs), even with a penalty "
        f"of up to {GAMMA_GAMMA_PENALTIES[-1]}"
    )


def _alive_odds(params: BgNbdParams, x: Array, t_x: Array, big_t: Array) -> Array:
    """Odds against being alive: 0 for one-time buyers, who cannot have dropped out yet."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    repeat = x > 0
    ratio = np.where(repeat, a / np.maximum(b + x - 1, 1e-300), 0.0)
    return np.where(repeat, ratio * ((alpha + big_t) / (alpha + t_x)) ** (r + x), 0.0)


def p_alive(params: BgNbdParams, x: Array, t_x: Array, big_t: Array) -> Array:
    """P(still a customer) given ``x`` repeat purchases, last at ``t_x``, observed for ``T``."""
    return 1.0 / (1.0 + _alive_odds(params, x, t_x, big_t))


def _growth(params: BgNbdParams, horizon: float | Array, x: Array, big_t: Array) -> Array:
    """The part of expected purchases that depends on the horizon (the costly hyp2f1)."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    h = np.asarray(horizon, dtype=np.float64)
    decay = ((alpha + big_t) / (alpha + big_t + h)) ** (r + x)
    z = h / (alpha + big_t + h)
    result: Array = 1.0 - decay * _hyp2f1(r + x, b + x, a + b + x - 1, z)
    return result


def _hyp2f1(a: Array, b: Array, c: Array, z: Array) -> Array:
    """Gauss's 2F1, summed as its power series where scipy's gives no finite value.

    A fit on customers who all buy at one rate and never leave has r and alpha in the
    tens of thousands; scipy's transformations then return NaN for 2F1(r + x, ...; z),
    although z = h / (alpha + T + h) is tiny and the series converges in a few dozen
    terms (a new user's file gave NaN forecasts)."""
    from scipy.special import hyp2f1

    a, b, c, z = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (a, b, c, z)))
    out = np.array(hyp2f1(a, b, c, z), dtype=np.float64)
    bad = ~np.isfinite(out) & (np.abs(z) < 1.0)
    if bad.any():
        aa, bb, cc, zz = a[bad], b[bad], c[bad], z[bad]
        term, total = np.ones_like(zz), np.ones_like(zz)
        for n in range(_SERIES_TERMS):
            term = term * (aa + n) * (bb + n) / ((cc + n) * (n + 1)) * zz
            total = total + term
            if (np.abs(term) <= 1e-16 * np.abs(total)).all():
                break
        out[bad] = total
    return out


_SERIES_TERMS = 10_000


def expected_purchases(
    params: BgNbdParams, t: float | Array, x: Array, t_x: Array, big_t: Array
) -> Array:
    """Expected purchases in the next ``t`` periods, conditional on each customer's history."""
    a, b = params.a, params.b
    first = (a + b + x - 1) / (a - 1)
    result: Array = (
        first * _growth(params, t, x, big_t) / (1.0 + _alive_odds(params, x, t_x, big_t))
    )
    return result


def expected_spend(params: GammaGammaParams, x: Array, monetary: Array) -> Array:
    """Expected mean spend per purchase: shrinks each customer's mean toward the population's."""
    p, q, v = params.p, params.q, params.v
    population = p * v / (q - 1)
    weight = p * x / (p * x + q - 1)
    result: Array = (1 - weight) * population + weight * monetary
    return result


def lifetime_value(
    purchases: BgNbdParams,
    spend: GammaGammaParams,
    x: Array,
    t_x: Array,
    big_t: Array,
    monetary: Array,
    *,
    months: int = 12,
    monthly_discount: float = 0.01,
) -> Array:
    """Discounted expected revenue over ``months``, month by month (as lifetimes computes it).

    The horizon-dependent term depends only on (x, T), and summaries count days, so a
    store's million customers share a few thousand such pairs: it is evaluated once per
    pair and month instead of once per customer and month.
    """
    if months < 1:
        raise ValueError("months must be at least 1")
    a, b = purchases.a, purchases.b
    pairs, where = np.unique(x + 1j * big_t, return_inverse=True)
    fixed = (a + b + x - 1) / (a - 1) / (1.0 + _alive_odds(purchases, x, t_x, big_t))
    per_purchase = expected_spend(spend, x, monetary)
    total = np.zeros_like(x, dtype=np.float64)
    before = np.zeros_like(x, dtype=np.float64)
    for month in range(1, months + 1):
        upto = fixed * _growth(purchases, month * WEEKS_PER_MONTH, pairs.real, pairs.imag)[where]
        total += per_purchase * (upto - before) / (1.0 + monthly_discount) ** month
        before = upto
    return total
