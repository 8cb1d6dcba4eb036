"""Clustering segments: groups the data finds, each described in plain words.

RFM segments are rules a marketer already knows; clusters can show groups nobody named
(web-only big spenders, clockwork weekly regulars). They are only worth acting on if
they are real, so the quality numbers are always reported with them:

* **silhouette** (-1..1; how much closer customers are to their own cluster than to the
  next) and **Davies-Bouldin** (lower is better) on the scaled features;
* **stability**: the mean adjusted Rand index between KMeans runs with different seeds.
  A k whose clusters change with the seed is noise, whatever its silhouette.

k is the smallest one whose silhouette is within 0.01 of the best among those whose
stability is at least ``min_stability`` (0.8): silhouettes that close are a tie, and a
marketer acts on fewer segments more easily. If no k is that stable, the most stable. Features are
``log1p``-transformed (spend and counts are heavy-tailed; one whale would otherwise be a
cluster) and standardised; missing gaps (one-order customers) count as the tenure.

Each cluster is described from its defining traits: the features whose cluster median
sits furthest from the store's, in z-scores, turned into a phrase ("orders every 9
days", "mostly on the web", "spends 40 % above the store median").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from storelens.core.errors import MissingExtra

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CLUSTER_FEATURES",
    "Cluster",
    "Clustering",
    "choose_k",
    "cluster_customers",
    "scaled_features",
]

CLUSTER_FEATURES = (
    "recency_days",
    "orders",
    "monetary",
    "average_order_value",
    "tenure_days",
    "interpurchase_days",
    "share_in_store",
    "share_web",
    "share_mobile",
)
_LOG_FEATURES = {"recency_days", "orders", "monetary", "average_order_value", "tenure_days"}
_TRAITS = 3
_SILHOUETTE_SAMPLE = 2000  # silhouette is quadratic; a sample of 2,000 is within ~0.005
_TREND_DAYS = 90
_NOTABLE_Z = 0.25
_SILHOUETTE_TIE = 0.01
_NEW_REVENUE_PCT = 300.0


@dataclass(frozen=True, slots=True)
class Cluster:
    """One cluster: who is in it, what defines it, and how it is doing."""

    id: str
    customers: int
    revenue_share: float
    revenue_trend_pct: float | None
    """Members' revenue in the last 90 days against the 90 before (None without orders)."""
    traits: tuple[str, ...]
    description: str


@dataclass(frozen=True, slots=True)
class Clustering:
    """The chosen k, its quality numbers, every k tried, and each cluster."""

    k: int
    silhouette: float
    davies_bouldin: float
    stability_ari: float
    tried: dict[int, dict[str, float]]
    clusters: tuple[Cluster, ...]
    membership: Any
    """``pd.Series`` of cluster id per customer."""
    min_stability: float = 0.8
    """The stability a k had to reach; when none did, the most stable was kept, and
    :attr:`stable` says so (a page said "chosen by stability" of an ARI of 0.73)."""

    @property
    def stable(self) -> bool:
        return self.stability_ari >= self.min_stability

    def as_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "silhouette": round(self.silhouette, 4),
            "davies_bouldin": round(self.davies_bouldin, 4),
            "stability_ari": round(self.stability_ari, 4),
            "min_stability": self.min_stability,
            "stable": self.stable,
            "tried": {
                str(k): {n: round(v, 4) for n, v in m.items()} for k, m in self.tried.items()
            },
            "clusters": [
                {
                    "id": c.id,
                    "customers": c.customers,
                    "revenue_share": round(c.revenue_share, 4),
                    "revenue_trend_pct": (
                        None if c.revenue_trend_pct is None else round(c.revenue_trend_pct, 1)
                    ),
                    "traits": list(c.traits),
                    "description": c.description,
                }
                for c in self.clusters
            ],
        }


def choose_k(tried: dict[int, dict[str, float]], min_stability: float) -> int:
    """The module docstring's rule: among ks whose ``stability_ari`` reaches
    ``min_stability``, the smallest within 0.01 of the best ``silhouette``; if none is
    that stable, the most stable (the smaller k on a tie)."""
    stable = [k for k in tried if tried[k]["stability_ari"] >= min_stability]
    if stable:
        top = max(tried[k]["silhouette"] for k in stable)
        return min(k for k in stable if tried[k]["silhouette"] >= top - _SILHOUETTE_TIE)
    return max(tried, key=lambda k: (tried[k]["stability_ari"], -k))


def scaled_features(features: pd.DataFrame) -> Any:
    """Scaled feature matrix: log1p for heavy tails, missing gaps as tenure, z-scores."""
    frame = features[list(CLUSTER_FEATURES)].astype("float64").copy()
    frame["interpurchase_days"] = frame["interpurchase_days"].fillna(frame["tenure_days"])
    frame = frame.fillna(0.0)
    for column in _LOG_FEATURES:
        frame[column] = np.log1p(frame[column].clip(lower=0))
    values = frame.to_numpy()
    spread = values.std(axis=0)
    return np.ascontiguousarray((values - values.mean(axis=0)) / np.where(spread > 0, spread, 1.0))


def _phrase(column: str, value: float, store: float) -> str:
    """One trait in words, from the cluster median against the store median."""
    if column == "interpurchase_days":
        return f"orders every {value:.0f} days" if value > 0 else "has ordered only once"
    if column == "recency_days":
        days = round(value)
        return f"last ordered {days} day{'' if days == 1 else 's'} ago"
    if column == "orders":
        return f"{value:g} order{'' if value == 1 else 's'} each"
    if column == "tenure_days":
        return f"customer for {value:.0f} days"
    if column.startswith("share_"):
        # By the share itself, not by its side of the store's mean: a cluster that
        # ordered 42 % in store read "rarely in store" beside a store at 60 % (a review).
        channel = column.removeprefix("share_")
        where = "in store" if channel == "in_store" else f"on {channel}"
        pct = f"{100 * value:.0f} % of orders"
        if value >= 0.6:
            return f"mostly {where} ({pct})"
        if value <= 0.1:
            return f"rarely {where} ({pct})"
        return f"{pct} {where}"
    label = "spends" if column == "monetary" else "spends per order"
    if store <= 0:
        return f"{label} {value:.2f}"
    change = 100.0 * (value - store) / store
    side = "above" if change >= 0 else "below"
    return f"{label} {abs(change):.0f} % {side} the store median"


def _order_share(frame: Any, column: str) -> float:
    """The share of ``frame``'s orders that ``column`` (a per-customer channel share)
    counts: each customer's share weighted by their orders."""
    known = frame[column].notna()
    orders = frame.loc[known, "orders"].astype("float64")
    total = float(orders.sum())
    return float((frame.loc[known, column] * orders).sum()) / total if total > 0 else 0.0


def _describe(features: pd.DataFrame, members: Any, scaled: Any, mask: Any) -> tuple[str, ...]:
    """The defining traits: features whose cluster median is furthest from 0 in z-scores."""
    z = np.median(scaled[mask], axis=0)
    order = np.argsort(-np.abs(z), kind="stable")
    traits: list[str] = []
    for j in order[:_TRAITS]:
        if abs(z[j]) < _NOTABLE_Z and traits:
            break
        column = CLUSTER_FEATURES[j]
        if column == "interpurchase_days" and float(members["orders"].median()) <= 1:
            traits.append("most have ordered only once")
            continue
        if column.startswith("share_"):
            # The cluster's share of its orders, weighted by each member's orders: the
            # median member's share said "mostly in store (100 % of orders)" of a cluster
            # whose two heaviest buyers, and 93 % of its orders, were on the web (a review).
            value, store = _order_share(members, column), _order_share(features, column)
        else:
            value = float(members[column].median()) if members[column].notna().any() else 0.0
            store = float(features[column].median()) if features[column].notna().any() else 0.0
        traits.append(_phrase(column, value, store))
    return tuple(traits)


def _trend(orders: pd.DataFrame | None, ids: Any, as_of: datetime | None) -> float | None:
    import pandas as pd

    if orders is None or as_of is None:
        return None
    stamps = pd.to_datetime(orders["ts"], utc=True)
    cut = pd.Timestamp(as_of)
    cut = cut.tz_localize("UTC") if cut.tz is None else cut.tz_convert("UTC")
    recent_start = cut - timedelta(days=_TREND_DAYS)
    before_start = recent_start - timedelta(days=_TREND_DAYS)
    mine = orders["customer_id"].isin(ids)
    recent = float(orders.loc[mine & (stamps >= recent_start) & (stamps < cut), "amount"].sum())
    before = float(
        orders.loc[mine & (stamps >= before_start) & (stamps < recent_start), "amount"].sum()
    )
    return None if before <= 0 else 100.0 * (recent - before) / before


def cluster_customers(
    features: pd.DataFrame,
    *,
    ks: range = range(2, 9),
    seeds: int = 5,
    seed: int = 0,
    min_stability: float = 0.8,
    orders: pd.DataFrame | None = None,
    as_of: datetime | None = None,
    threads: int | None = None,
) -> Clustering:
    """KMeans on :func:`customer_features` output; k by silhouette among stable ks.

    ``orders`` and ``as_of`` (optional) give each cluster's revenue trend. Deterministic
    for a given ``seed``: clusters are numbered by size, largest first. ``threads`` caps
    OpenMP/BLAS threads (on a shared machine one thread is far faster than many).
    """
    try:  # loaded before the thread cap: threadpoolctl caps only libraries already loaded
        import pandas  # noqa: F401
        import sklearn.cluster
        import sklearn.metrics  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - the dev install has it
        raise MissingExtra("clustering segments", "predict") from exc

    with threadpool_limits(limits=threads):
        return _cluster(features, ks, seeds, seed, min_stability, orders, as_of)


def _cluster(
    features: pd.DataFrame,
    ks: range,
    seeds: int,
    seed: int,
    min_stability: float,
    orders: pd.DataFrame | None,
    as_of: datetime | None,
) -> Clustering:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, davies_bouldin_score, silhouette_score

    if len(features) < max(ks) + 1 or len(ks) == 0 or min(ks) < 2 or seeds < 2:
        raise ValueError(
            f"clustering needs k >= 2, at least 2 seeds and more customers ({len(features)}) "
            f"than the largest k ({max(ks, default=0)})"
        )
    scaled = scaled_features(features)
    sample = min(_SILHOUETTE_SAMPLE, len(scaled))
    tried: dict[int, dict[str, float]] = {}
    labelled: dict[int, Any] = {}
    for k in ks:
        runs = [
            KMeans(n_clusters=k, n_init=1, random_state=seed + s).fit_predict(scaled)
            for s in range(seeds)
        ]
        ari = float(np.mean([adjusted_rand_score(a, b) for a, b in combinations(runs, 2)]))
        tried[k] = {
            "silhouette": float(
                silhouette_score(scaled, runs[0], sample_size=sample, random_state=seed)
            ),
            "davies_bouldin": float(davies_bouldin_score(scaled, runs[0])),
            "stability_ari": ari,
        }
        labelled[k] = runs[0]
    best = choose_k(tried, min_stability)

    raw = labelled[best]
    sizes = np.bincount(raw, minlength=best)
    rank = {old: new for new, old in enumerate(sorted(range(best), key=lambda c: (-sizes[c], c)))}
    labels = np.array([rank[int(c)] for c in raw])
    total = float(features["monetary"].sum())
    clusters = []
    for c in range(best):
        mask = labels == c
        members = features[mask]
        traits = _describe(features, members, scaled, mask)
        share = float(members["monetary"].sum()) / total if total > 0 else 0.0
        trend = _trend(orders, members.index, as_of)
        if trend is None:
            trend_text = ""
        elif trend > _NEW_REVENUE_PCT:  # a percentage of almost nothing says nothing
            trend_text = f"; revenue mostly new in the last {_TREND_DAYS} days"
        else:
            trend_text = f"; revenue {trend:+.0f} % on the previous {_TREND_DAYS} days"
        clusters.append(
            Cluster(
                id=f"cluster-{c + 1}",
                customers=int(mask.sum()),
                revenue_share=share,
                revenue_trend_pct=trend,
                traits=traits,
                description=(
                    f"{int(mask.sum())} customer{'' if mask.sum() == 1 else 's'}, "
                    f"{100 * share:.0f} % of revenue: "
                    f"{', '.join(traits)}{trend_text}."
                ),
            )
        )
    membership = pd.Series(
        [f"cluster-{c + 1}" for c in labels], index=features.index, dtype="string"
    )
    chosen = tried[best]
    return Clustering(
        k=best,
        silhouette=chosen["silhouette"],
        davies_bouldin=chosen["davies_bouldin"],
        stability_ari=chosen["stability_ari"],
        tried=tried,
        clusters=tuple(clusters),
        membership=membership,
        min_stability=min_stability,
    )
