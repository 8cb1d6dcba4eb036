"""The I/O half of predictive analytics: consent in, scores out, and the reads that show them.

A scoring run replaces the whole snapshot (features, scores, segments, memberships) in
one transaction, so a customer who withdrew analytics consent since the last run simply
has no row afterwards, and readers never see half a run. The model registry
(``predict_models``) keeps every run's models with their data window, parameters and
metrics; it holds no customer data.

Features, scores and memberships carry the customer id: how they are exported, erased
and forgotten on a withdrawal or a merge is :mod:`storelens.predict.forgetting`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, case, delete, func, insert, select, update

from storelens.core.errors import Conflict
from storelens.privacy.consent import granted_subjects
from storelens.privacy.registry import plain
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import (
    customer_features,
    customer_scores,
    predict_models,
    segment_members,
    segments,
)

if TYPE_CHECKING:
    from storelens.config import Settings
    from storelens.predict.scoring import ScoreRun

__all__ = [
    "ANALYTICS",
    "DESCRIBED_MIN",
    "PERSONS_ROWS",
    "SegmentPage",
    "clv_histogram",
    "consenting_customers",
    "customer_prediction",
    "customers_overview",
    "forget_customers",
    "list_segments",
    "rescore",
    "rescore_as_configured",
    "run_models",
    "scored_count",
    "segment_page",
    "why_unscored",
    "write_run",
]

ANALYTICS = "analytics"
_CLV_QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)
_CHUNK = 5000
PERSONS_ROWS = (customer_features, segment_members, customer_scores)
"""Every table of derived rows about one customer, under their ``customer_id``."""
DESCRIBED_MIN = 10
"""The fewest members a segment keeps its run's figures with once someone has left it.
A run describes each segment by its members' medians and revenue share; in a segment
of one or two those are a person's own, and they would outlive that person's erasure
or withdrawal until the next run (a security review read an erased customer's order
count and spend in one). Below this the figures are withdrawn until that run."""


def consenting_customers(conn: Connection) -> set[str]:
    """Subjects whose latest analytics decision (by event time) is a grant."""
    return granted_subjects(conn, ANALYTICS)


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _label(value: Any) -> str | None:
    """A cluster label, or None for none: None, NaN, or pandas' NA (which refuses ``!=``;
    a run below the clustering minimum has only NA labels)."""
    try:
        missing = value is None or bool(value != value)
    except TypeError:
        missing = True
    return None if missing else str(value)


def _chunks(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]


def write_run(conn: Connection, run: ScoreRun) -> int:
    """Replace the snapshot with ``run`` and add its models to the registry; customers written."""
    for table in (segment_members, segments, customer_scores, customer_features):
        conn.execute(delete(table))
    feature_rows = [
        {
            "customer_id": str(cid),
            "as_of": run.as_of,
            "model_version": run.version,
            "features": {k: _number(v) for k, v in row.items()},
        }
        for cid, row in run.features.iterrows()
    ]
    score_rows = [
        {
            "customer_id": str(cid),
            "as_of": run.as_of,
            "model_version": run.version,
            "expected_purchases": _number(row["expected_purchases"]),
            "p_alive": _number(row["p_alive"]),
            "churn_risk": _number(row["churn_risk"]),
            "clv": _number(row["clv"]),
            "rfm": str(row["rfm"]),
            "rfm_segment": str(row["rfm_segment"]),
            "cluster": _label(row["cluster"]),
        }
        for cid, row in run.scores.astype(object).iterrows()
    ]
    for chunk in _chunks(feature_rows):
        conn.execute(insert(customer_features), chunk)
    for chunk in _chunks(score_rows):
        conn.execute(insert(customer_scores), chunk)
    if run.segments:
        conn.execute(
            insert(segments),
            [
                {
                    "id": s.id,
                    "kind": s.kind,
                    "name": s.name,
                    "description": s.description,
                    "customers": s.customers,
                    "revenue_share": s.revenue_share,
                    "revenue_trend_pct": s.revenue_trend_pct,
                    "as_of": run.as_of,
                    "model_version": run.version,
                }
                for s in run.segments
            ],
        )
        members = [{"segment_id": s.id, "customer_id": m} for s in run.segments for m in s.members]
        for chunk in _chunks(members):
            conn.execute(insert(segment_members), chunk)
    conn.execute(delete(predict_models).where(predict_models.c.version == run.version))
    if run.models:
        conn.execute(
            insert(predict_models),
            [
                {
                    "version": run.version,
                    "kind": m.kind,
                    "data_from": run.data_from,
                    "data_to": run.as_of,
                    "params": plain(m.params),
                    "metrics": plain(m.metrics),
                }
                for m in run.models
            ],
        )
    return len(score_rows)


def forget_customers(conn: Connection, ids: list[str]) -> int:
    """Delete the features, scores and memberships kept under ``ids`` (rows deleted),
    recount the segments they left, and withdraw the figures of any left with fewer
    than :data:`DESCRIBED_MIN` members: its size stays, its description says why the
    rest is gone, its revenue share and trend are NULL until the next run."""
    one_of, deleted = dialect_for(conn).one_of, 0
    left: set[str] = set()
    member = segment_members.c
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        left.update(
            conn.execute(
                select(member.segment_id).distinct().where(one_of(member.customer_id, chunk))
            ).scalars()
        )
        for table in PERSONS_ROWS:
            deleted += int(
                conn.execute(delete(table).where(one_of(table.c.customer_id, chunk))).rowcount or 0
            )
    if not left:
        return deleted
    size = select(func.count()).where(member.segment_id == segments.c.id).scalar_subquery()
    touched = segments.c.id.in_(sorted(left))
    conn.execute(update(segments).where(touched).values(customers=size))
    small = conn.execute(
        select(segments.c.id, segments.c.customers).where(
            touched, segments.c.customers < DESCRIBED_MIN, segments.c.revenue_share.is_not(None)
        )
    ).all()
    for segment_id, n in small:
        conn.execute(
            update(segments)
            .where(segments.c.id == segment_id)
            .values(
                description=f"{n} customer{'' if n == 1 else 's'}: the figures were withdrawn "
                "when a member left; the next scoring run describes it again.",
                revenue_share=None,
                revenue_trend_pct=None,
            )
        )
    return deleted


def rescore_as_configured(engine: Engine, as_of: datetime, settings: Settings) -> ScoreRun:
    """:func:`rescore` with the installation's settings (the command, the server's
    schedule and the demo score the same way)."""
    return rescore(
        engine,
        as_of,
        window_days=settings.predict_churn_window_days,
        clv_months=settings.predict_clv_months,
        monthly_discount=settings.predict_monthly_discount,
        seeds=settings.predict_segment_seeds,
        tolerance_pct=settings.predict_validation_tolerance_pct,
    )


def rescore(
    engine: Engine,
    as_of: datetime,
    *,
    window_days: int,
    clv_months: int,
    monthly_discount: float,
    seeds: int,
    threads: int | None = None,
    tolerance_pct: float = 5.0,
) -> ScoreRun:
    """Read orders and consent, score, and write the snapshot (one transaction to write).

    ``tolerance_pct`` is ``STORELENS_PREDICT_VALIDATION_TOLERANCE_PCT``: how close to the
    validation total a challenger to BG/NBD must come to be chosen (as in ``eval-clv``).
    """
    from storelens.predict.features import orders_frame
    from storelens.predict.scoring import score_customers

    with engine.connect() as conn:
        consenting = consenting_customers(conn)
        orders = orders_frame(conn, as_of)
    run = score_customers(
        orders,
        as_of,
        consenting,
        window_days=window_days,
        clv_months=clv_months,
        monthly_discount=monthly_discount,
        seeds=seeds,
        threads=threads,
        tolerance_pct=tolerance_pct,
    )
    if consenting and len(run.scores) == 0:
        with engine.connect() as conn:
            live = conn.execute(select(func.count()).select_from(customer_scores)).scalar_one()
        if live:
            # An as-of before the first order scored no one and wiped the live snapshot
            # (a new user's run of --as-of 2020-01-01); nobody consenting still clears it.
            raise Conflict(
                f"no consenting customer had ordered before {as_of.isoformat()}: "
                f"nothing to score, so the {live:,} live scores were kept"
            )
    with engine.begin() as conn:
        # Fitting takes seconds to minutes, and an erasure or an analytics withdrawal
        # may commit meanwhile: written as read, the run put their rows back (a security
        # review). So the write takes the erasure lock as every writer of rows computed
        # from earlier reads does, reads consent again (an erasure deletes the person's
        # decisions), and forgets whoever no longer consents before it commits.
        dialect_for(conn).lock_erasures(conn, shared=True)
        still = consenting_customers(conn)
        write_run(conn, run)
        written = {str(c) for c in run.scores.index} | {str(c) for c in run.features.index}
        gone = sorted(written - still)
        if gone:
            forget_customers(conn, gone)
    return run


def customer_prediction(conn: Connection, ids: list[str]) -> dict[str, Any] | None:
    """A customer's latest scores and segments (any of their ids), or None if unscored."""
    row = conn.execute(
        select(customer_scores).where(customer_scores.c.customer_id.in_(ids)).limit(1)
    ).first()
    if row is None:
        return None
    names = conn.execute(
        select(segments.c.id, segments.c.name, segments.c.kind, segments.c.description)
        .join(segment_members, segment_members.c.segment_id == segments.c.id)
        .where(segment_members.c.customer_id == row.customer_id)
        .order_by(segments.c.kind.desc(), segments.c.id)
    ).all()
    return {
        "as_of": row.as_of,
        "model_version": row.model_version,
        "clv": row.clv,
        "expected_purchases": row.expected_purchases,
        "p_alive": row.p_alive,
        "churn_risk": row.churn_risk,
        "rfm": row.rfm,
        "segments": [dict(n._mapping) for n in names],
    }


def why_unscored(conn: Connection, ids: list[str]) -> str:
    """Why a customer (all their ``ids``) has no scores, in words for the profile: a
    bare null left a reader to guess between missing consent and a run not made yet."""
    if not granted_subjects(conn, ANALYTICS, among=ids) & set(ids):
        return "no analytics consent: customers are scored only with it"
    if conn.execute(select(predict_models.c.id).limit(1)).first() is None:
        return "no scoring run yet (storelens predict score)"
    return (
        "not in the latest scoring run: it ran before this customer's analytics consent "
        "or first order; the next run scores them"
    )


def scored_count(conn: Connection) -> int:
    """How many customers the live snapshot scores."""
    return int(conn.execute(select(func.count()).select_from(customer_scores)).scalar_one())


def list_segments(conn: Connection) -> list[dict[str, Any]]:
    """Every segment of the latest run: RFM first, then clusters by size."""
    rows = conn.execute(
        select(segments).order_by(
            segments.c.kind.desc(), segments.c.customers.desc(), segments.c.id
        )
    ).all()
    return [dict(r._mapping) for r in rows]


def run_models(conn: Connection, version: str) -> dict[str, dict[str, Any]]:
    """The registry's models of one scoring run by kind: ``{kind: {params, metrics}}``."""
    rows = conn.execute(
        select(predict_models.c.kind, predict_models.c.params, predict_models.c.metrics).where(
            predict_models.c.version == version
        )
    ).all()
    return {r.kind: {"params": r.params or {}, "metrics": r.metrics or {}} for r in rows}


@dataclass(frozen=True, slots=True)
class SegmentPage:
    members: list[dict[str, Any]]
    next_cursor: str | None


def segment_page(
    conn: Connection, segment_id: str, cursor: str | None, limit: int, *, offset: int = 0
) -> SegmentPage:
    """Members after ``cursor`` (a customer id) in id order, with their scores.

    ``offset`` skips that many more: the dashboard pages by number so that no customer
    id ends up in a URL (and from there in access logs and browser history)."""
    stmt = (
        select(
            segment_members.c.customer_id,
            customer_scores.c.clv,
            customer_scores.c.churn_risk,
            customer_scores.c.p_alive,
            customer_scores.c.rfm,
        )
        .join(
            customer_scores,
            customer_scores.c.customer_id == segment_members.c.customer_id,
            isouter=True,
        )
        .where(segment_members.c.segment_id == segment_id)
        .order_by(segment_members.c.customer_id)
        .limit(limit + 1)
        .offset(offset)
    )
    if cursor is not None:
        stmt = stmt.where(segment_members.c.customer_id > cursor)
    rows = [dict(r._mapping) for r in conn.execute(stmt).all()]
    more = len(rows) > limit
    rows = rows[:limit]
    # Each member's order count, from their features document: a page shows a one-time
    # buyer's P(alive) of 1 for what it is (BG/NBD cannot see them leave).
    found = conn.execute(
        select(customer_features.c.customer_id, customer_features.c.features).where(
            customer_features.c.customer_id.in_([r["customer_id"] for r in rows])
        )
    ).all()
    orders = {cid: (doc or {}).get("orders") for cid, doc in found}
    for row in rows:
        count = orders.get(row["customer_id"])
        row["orders"] = int(count) if isinstance(count, int | float) else None
    return SegmentPage(rows, rows[-1]["customer_id"] if more and rows else None)


def clv_histogram(values: list[float], bins: int) -> dict[str, Any]:
    """Equal-width bars from 0 (or the lowest value) to the 99th percentile, and the top
    1 % as one ``overflow`` count: a handful of big spenders would otherwise squeeze
    everyone else into the first bar. ``values`` must be sorted."""
    if not values:
        return {"edges": [], "counts": [], "overflow": 0}
    low = min(0.0, values[0])
    high = values[min(len(values) - 1, int(0.99 * len(values)))]
    if high <= low:
        return {"edges": [low, low], "counts": [len(values)], "overflow": 0}
    width = (high - low) / bins
    counts = [0] * bins
    overflow = 0
    for v in values:
        if v > high:
            overflow += 1
        else:
            counts[min(bins - 1, int((v - low) / width))] += 1
    return {
        "edges": [low + i * width for i in range(bins)] + [high],
        "counts": counts,
        "overflow": overflow,
    }


def customers_overview(
    conn: Connection, *, high_risk: float = 0.5, clv_bins: int = 20
) -> dict[str, Any]:
    """What the dashboard's Customers page shows: segment sizes and value, the CLV
    distribution (quantiles and a histogram), and churn risk by segment (mean, and the
    share of members above ``high_risk``). Aggregates only: no customer id leaves here."""
    seg = list_segments(conn)
    clvs = sorted(float(v) for (v,) in conn.execute(select(customer_scores.c.clv)) if v is not None)
    quantiles = (
        {f"p{int(q * 100)}": clvs[min(len(clvs) - 1, int(q * len(clvs)))] for q in _CLV_QUANTILES}
        if clvs
        else {}
    )
    risky = case((customer_scores.c.churn_risk > high_risk, 1), else_=0)
    risk = conn.execute(
        select(
            segment_members.c.segment_id,
            func.count(),
            func.avg(customer_scores.c.churn_risk),
            func.sum(customer_scores.c.clv),
            func.sum(risky),
            func.count(customer_scores.c.churn_risk),
        )
        .join(customer_scores, customer_scores.c.customer_id == segment_members.c.customer_id)
        .group_by(segment_members.c.segment_id)
    ).all()
    by_segment = {
        r[0]: {
            "customers": int(r[1]),
            "mean_churn_risk": _number(r[2]),
            "total_clv": _number(r[3]),
            # over members with a risk: a run that fitted no churn model has none, not 0 %
            "high_risk_share": int(r[4] or 0) / int(r[5]) if r[5] else None,
        }
        for r in risk
    }
    return {
        "as_of": seg[0]["as_of"] if seg else None,
        "model_version": seg[0]["model_version"] if seg else None,
        "segments": [
            {
                "id": s["id"],
                "kind": s["kind"],
                "name": s["name"],
                "description": s["description"],
                "customers": s["customers"],
                "revenue_share": s["revenue_share"],
                "revenue_trend_pct": s["revenue_trend_pct"],
                **{k: v for k, v in by_segment.get(s["id"], {}).items() if k != "customers"},
            }
            for s in seg
        ],
        "clv": {
            "customers": len(clvs),
            "mean": sum(clvs) / len(clvs) if clvs else None,
            "quantiles": quantiles,
            "histogram": clv_histogram(clvs, clv_bins),
        },
        "high_risk": high_risk,
    }
