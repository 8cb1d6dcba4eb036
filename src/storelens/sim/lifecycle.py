"""Customers over months, with a churn process whose truth is known.

The store-day simulator keeps one stable customer base, which is right for operations
and identity but gives churn models nothing to find. This one follows customers over
many weeks: each joins on some day, buys as a Poisson process at their own rate,
and leaves for good at a random moment (an exponential hazard of their own). Who left
when, and each customer's rate and hazard, are kept as truth, so a churn model's
probabilities can be checked against the real ones rather than only against a noisy
yes/no.

The hazard depends on things a feature table can see, so a classifier has something
to learn that BG/NBD cannot: customers who mostly order on the web leave faster, and
so do those whose orders are small. Everything is seeded and vectorised in numpy (a
hundred thousand customers take well under a second).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["LifecycleConfig", "LifecycleTruth", "simulate_lifecycles", "weeks_after"]

Array = npt.NDArray[np.float64]
CHANNELS = ("in_store", "web", "mobile")
_WEEK_S = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    """The population and its churn process (rates and hazards are per week)."""

    customers: int = 20_000
    start: datetime = datetime(2025, 1, 6, tzinfo=UTC)
    weeks: int = 78
    join_weeks: int = 78
    """Customers join uniformly over the first ``join_weeks``."""
    rate_shape: float = 1.2
    rate_mean: float = 0.6
    """Purchase rate ~ Gamma(rate_shape, rate_mean / rate_shape) per week."""
    hazard_shape: float = 2.0
    hazard_mean: float = 0.012
    """Base leaving hazard ~ Gamma(hazard_shape, hazard_mean / hazard_shape) per week."""
    channel_mix: tuple[float, float, float] = (0.6, 0.25, 0.15)
    """Share of customers whose usual channel is in store, web, mobile."""
    usual_channel_share: float = 0.8
    web_hazard_factor: float = 2.5
    small_basket_hazard_factor: float = 1.8
    basket_mean: float = 12.0
    seed: int = 7


@dataclass(frozen=True, slots=True)
class LifecycleTruth:
    """Per customer (in ``customer_ids`` order): when they joined and left, rate, hazard."""

    customer_ids: tuple[str, ...]
    joined_week: Array
    left_week: Array
    """Week (from ``start``) the customer left; may lie past the simulated span."""
    rate: Array
    hazard: Array
    start: datetime

    def _week(self, when: datetime) -> float:
        return (when - self.start).total_seconds() / _WEEK_S

    def p_no_purchase(self, cutoff: datetime, days: int) -> Array:
        """True P(no purchase in ``[cutoff, cutoff + days)``) given each one's state at ``cutoff``.

        Customers who have left have probability 1; those still there buy at ``rate``
        until they leave at ``hazard``: the window is quiet if they leave before their
        next purchase or the window ends first,
        ``mu / (lambda + mu) * (1 - e^-(lambda + mu) w) + e^-(lambda + mu) w``.
        """
        now, w = self._week(cutoff), days / 7.0
        total = self.rate + self.hazard
        quiet = np.exp(-total * w)
        alive_quiet = self.hazard / total * (1.0 - quiet) + quiet
        result: Array = np.where(self.left_week <= now, 1.0, alive_quiet)
        return result


def simulate_lifecycles(
    config: LifecycleConfig | None = None,
) -> tuple[pd.DataFrame, LifecycleTruth]:
    """Orders (``customer_id``, ``ts``, ``amount``, ``channel``) and the truth behind them."""
    import pandas as pd

    cfg = config or LifecycleConfig()
    rng = np.random.default_rng(cfg.seed)
    n = cfg.customers
    ids = tuple(f"S{i:07d}" for i in range(n))
    joined = rng.uniform(0.0, cfg.join_weeks, n)
    rate = rng.gamma(cfg.rate_shape, cfg.rate_mean / cfg.rate_shape, n)
    usual = rng.choice(len(CHANNELS), size=n, p=np.asarray(cfg.channel_mix))
    basket = rng.gamma(4.0, cfg.basket_mean / 4.0, n)
    hazard = rng.gamma(cfg.hazard_shape, cfg.hazard_mean / cfg.hazard_shape, n)
    hazard = hazard * np.where(usual == CHANNELS.index("web"), cfg.web_hazard_factor, 1.0)
    hazard = hazard * np.where(basket < np.median(basket), cfg.small_basket_hazard_factor, 1.0)
    left = joined + rng.exponential(1.0 / hazard)

    # The first order is the day they join; later ones follow at ``rate`` until they leave.
    active_until = np.minimum(left, float(cfg.weeks))
    repeats = rng.poisson(rate * np.maximum(active_until - joined, 0.0))
    owner = np.concatenate([np.arange(n), np.repeat(np.arange(n), repeats)])
    span = np.maximum(active_until - joined, 0.0)
    offsets = np.concatenate(
        [np.zeros(n), rng.uniform(0.0, 1.0, int(repeats.sum())) * np.repeat(span, repeats)]
    )
    weeks = joined[owner] + offsets
    own_channel = rng.random(len(owner)) < cfg.usual_channel_share
    channel = np.where(own_channel, usual[owner], rng.integers(0, len(CHANNELS), len(owner)))
    amount = np.round(rng.gamma(6.0, basket[owner] / 6.0), 2)
    order = np.lexsort((weeks, owner))
    stamps = pd.Timestamp(cfg.start) + pd.to_timedelta(weeks[order] * _WEEK_S, unit="s")
    orders = pd.DataFrame(
        {
            "customer_id": pd.Series(np.asarray(ids)[owner[order]], dtype="string"),
            "ts": stamps.round("s"),
            "amount": amount[order],
            "channel": pd.Series(np.asarray(CHANNELS)[channel[order]], dtype="string"),
        }
    )
    truth = LifecycleTruth(
        customer_ids=ids,
        joined_week=joined,
        left_week=left,
        rate=rate,
        hazard=hazard,
        start=cfg.start,
    )
    return orders, truth


def weeks_after(start: datetime, weeks: float) -> datetime:
    """The instant ``weeks`` after ``start`` (cut-offs are chosen in simulated weeks)."""
    return start + timedelta(weeks=weeks)
