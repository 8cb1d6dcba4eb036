"""One scoring run: every consenting customer's features, lifetime value, churn risk, segments.

Pure apart from the models it fits: orders in, a :class:`ScoreRun` out, which
:mod:`storelens.predict.store` writes. Consent is applied *before* anything is computed:
a customer without analytics consent contributes no order to any model and gets no
features, no score and no segment (their orders still count for the store's revenue
elsewhere, but not here).

What is fitted, all on orders before ``as_of``:

* the purchase model that wins on the store's own validation window
  (:mod:`storelens.predict.champion`: BG/NBD, Pareto/NBD, boosted or honeymoon BG/NBD)
  with Gamma-Gamma: expected purchases over the churn window, P(alive), a discounted
  CLV over ``clv_months``; BG/NBD when the history is too short to choose (the registry
  row says why); skipped when not even BG/NBD can be fitted;
* the churn classifier (:mod:`storelens.predict.churn_model`) trained at
  ``as_of - window`` with the window up to ``as_of`` as its known outcome; when it
  cannot be trained (one class, too few customers), BG/NBD's P(no purchase) is the risk;
* RFM segments and, with enough customers, clustering segments.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from storelens.predict.champion import fit_champion
from storelens.predict.churn import p_no_purchase
from storelens.predict.churn_model import fit_churn_classifier, training_set
from storelens.predict.clusters import cluster_customers
from storelens.predict.clv import FitError
from storelens.predict.features import customer_features
from storelens.predict.segments import describe_segments, rfm_scores
from storelens.predict.summary import DAYS_PER_PERIOD, calibration_summary

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MIN_CLUSTER_CUSTOMERS", "ModelRecord", "ScoreRun", "SegmentRecord", "score_customers"]

log = logging.getLogger(__name__)
MIN_CLUSTER_CUSTOMERS = 50


@dataclass(frozen=True, slots=True)
class ModelRecord:
    """A row of the model registry: what was fitted, on which window, how well."""

    kind: str
    params: dict[str, Any]
    metrics: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SegmentRecord:
    id: str
    kind: str
    name: str
    description: str
    customers: int
    revenue_share: float
    revenue_trend_pct: float | None
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScoreRun:
    """Everything one run produced; ``scores`` and ``features`` are indexed by customer id."""

    as_of: datetime
    version: str
    data_from: datetime | None
    features: Any
    scores: Any
    segments: list[SegmentRecord] = field(default_factory=list)
    models: list[ModelRecord] = field(default_factory=list)


def _version(as_of: datetime, customers: int, orders: int) -> str:
    digest = hashlib.sha256(f"{as_of.isoformat()}|{customers}|{orders}".encode()).hexdigest()
    return f"{as_of.strftime('%Y%m%dT%H%M%SZ')}-{digest[:8]}"


def _lifetime(
    orders: pd.DataFrame, customers: pd.Index, as_of: datetime, window_days: int, months: int,
    discount: float, tolerance_pct: float, threads: int | None,
) -> tuple[dict[str, Any], ModelRecord]:  # fmt: skip
    """The champion's columns for ``customers`` and its registry row; no columns (and a
    row saying why) when not even BG/NBD can be fitted."""
    import pandas as pd

    tx = pd.DataFrame(
        {
            "customer_id": orders["customer_id"].astype(str),
            "date": pd.to_datetime(orders["ts"], utc=True).dt.tz_localize(None).dt.normalize(),
            "amount": orders["amount"].astype("float64"),
        }
    )
    last_day = (pd.Timestamp(as_of).tz_convert(None) - pd.Timedelta(microseconds=1)).date()
    try:
        champion = fit_champion(
            tx,
            last_day,
            window_days,
            months=months,
            monthly_discount=discount,
            tolerance_pct=tolerance_pct,
            threads=threads,
        )
    except FitError as exc:
        log.info("lifetime value not fitted: %s", exc)
        # A row all the same, so the command and the dashboard can say why there is none.
        unfitted = {"horizon_days": window_days, "months": months, "monthly_discount": discount}
        return {}, ModelRecord("clv", {"model": None, **unfitted}, {"not_fitted": str(exc)})
    if champion.fallback_reason:
        log.info("lifetime value: %s", champion.fallback_reason)
    if champion.spend_unavailable:
        log.info("no lifetime value (purchase scores kept): %s", champion.spend_unavailable)
    summary = calibration_summary(tx, last_day)
    x, t_x, big_t = (summary[c].to_numpy(np.float64) for c in ("frequency", "recency", "T"))
    weeks = window_days / DAYS_PER_PERIOD
    frame = pd.DataFrame(
        {
            "expected_purchases": champion.expected,
            "p_alive": champion.p_alive,
            "clv": champion.clv,
            # The classifier's stand-in when it cannot be trained (BG/NBD's closed form).
            "bgnbd_churn": p_no_purchase(champion.bgnbd, weeks, x, t_x, big_t),
        },
        index=champion.customers,
    ).reindex(customers)
    columns = {name: frame[name].to_numpy(np.float64) for name in frame.columns}
    record = ModelRecord(
        kind="clv",
        params={
            **champion.registry_params(),
            "horizon_days": window_days,
            "months": months,
            "monthly_discount": discount,
        },
        metrics={
            "customers": len(champion.customers),
            "repeat_buyers": int((x > 0).sum()),
            **champion.registry_metrics(),
        },
    )
    return columns, record


def score_customers(
    orders: pd.DataFrame,
    as_of: datetime,
    consenting: set[str],
    *,
    window_days: int = 90,
    clv_months: int = 12,
    monthly_discount: float = 0.01,
    seeds: int = 5,
    threads: int | None = None,
    tolerance_pct: float = 5.0,
) -> ScoreRun:
    """Score every customer in ``consenting`` who ordered before ``as_of``.

    ``orders`` has ``customer_id``, ``ts`` (tz-aware or UTC), ``amount`` [, ``channel``].
    """
    import pandas as pd

    cut = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    stamps = pd.to_datetime(orders["ts"], utc=True)
    mine = orders[orders["customer_id"].astype(str).isin(consenting) & (stamps < cut)]
    features = customer_features(mine, cut)
    version = _version(cut, len(features), len(mine))
    if features.empty:
        return ScoreRun(cut, version, None, features, pd.DataFrame(), [], [])
    data_from = pd.to_datetime(mine["ts"], utc=True).min().to_pydatetime()

    columns, clv_model = _lifetime(
        mine, features.index, cut, window_days, clv_months, monthly_discount, tolerance_pct,
        threads,
    )  # fmt: skip
    models = [clv_model]
    churn = columns.pop("bgnbd_churn", None)
    try:
        train_x, train_y = training_set(mine, cut - timedelta(days=window_days), window_days)
        classifier = fit_churn_classifier(
            train_x,
            train_y,
            cutoff=cut - timedelta(days=window_days),
            window_days=window_days,
            threads=threads,
        )
        churn = classifier.predict(features)
        models.append(ModelRecord("churn", classifier.params(), {"trained_on": len(train_x)}))
    except ValueError as exc:
        log.info("churn classifier not trained (%s); BG/NBD's P(no purchase) used", exc)

    rfm = rfm_scores(features)
    scores = pd.DataFrame(index=features.index)
    for name in ("expected_purchases", "p_alive", "clv"):
        scores[name] = columns.get(name, np.full(len(features), np.nan))
    scores["churn_risk"] = np.full(len(features), np.nan) if churn is None else churn
    scores["rfm"] = rfm["rfm"]
    scores["rfm_segment"] = rfm["segment"]
    scores["cluster"] = pd.Series(pd.NA, index=features.index, dtype="string")

    segments = [
        SegmentRecord(
            id=f"rfm:{s.name}",
            kind="rfm",
            name=s.name,
            description=s.description,
            customers=s.customers,
            revenue_share=s.revenue_share,
            revenue_trend_pct=None,
            members=tuple(rfm.index[rfm["segment"] == s.name]),
        )
        for s in describe_segments(features, rfm)
    ]
    models.append(ModelRecord("rfm", {"scores": "quintiles"}, {"segments": len(segments)}))
    if len(features) >= MIN_CLUSTER_CUSTOMERS:
        clustering = cluster_customers(
            features, seeds=seeds, orders=mine, as_of=cut, threads=threads
        )
        scores["cluster"] = clustering.membership
        for c in clustering.clusters:
            segments.append(
                SegmentRecord(
                    id=f"cluster:{c.id}",
                    kind="cluster",
                    name=c.id,
                    description=c.description,
                    customers=c.customers,
                    revenue_share=c.revenue_share,
                    revenue_trend_pct=c.revenue_trend_pct,
                    members=tuple(clustering.membership.index[clustering.membership == c.id]),
                )
            )
        report = clustering.as_json()
        models.append(
            ModelRecord(
                "clusters",
                {"k": clustering.k, "seeds": seeds, "method": "kmeans"},
                {
                    k: report[k]
                    for k in (
                        "silhouette",
                        "davies_bouldin",
                        "stability_ari",
                        "min_stability",
                        "stable",
                    )
                },
            )
        )
    return ScoreRun(cut, version, data_from, features, scores, segments, models)
