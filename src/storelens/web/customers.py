"""The Customers page's figures: the latest scoring run in aggregate, and segment members.

Everything here reads what ``storelens predict score`` (or the server's scheduled
re-score) wrote; nothing is fitted on a page view. The overview is aggregates only
(:func:`storelens.predict.store.customers_overview`), so the page and its charts carry
no customer id. Member lists do, so they are a separate page for analysts and admins,
read one page at a time, and every read is written to the audit trail exactly as
``GET /v1/segments/{id}/members`` writes it (same action, so one audit query finds both).

Segments are computed over every store's consenting customers; the store in the URL
only keeps the dashboard's menu and store picker in place.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import Engine

from storelens import stores
from storelens.core.errors import NotFound
from storelens.core.spreadsheet import inert_cell
from storelens.predict.store import customers_overview, list_segments, run_models, segment_page
from storelens.privacy import audit
from storelens.sales import order_currencies
from storelens.web.schemas import (
    ClvBar,
    CustomersView,
    MemberRow,
    MembersView,
    SegmentHeader,
    SegmentRow,
)

__all__ = [
    "MEMBERS_READ",
    "SEGMENT_CSV_COLUMNS",
    "customers_view",
    "members_view",
    "segment_rows",
    "segment_table_csv",
]

MEMBERS_READ = "segment.members.read"
"""The audit action of a member-list read (the API's own)."""

SEGMENT_CSV_COLUMNS = (
    "kind",
    "segment",
    "name",
    "customers",
    "customer_share",
    "revenue_share",
    "revenue_trend_pct",
    "expected_value",
    "mean_expected_value",
    "mean_churn_risk",
    "high_risk_share",
    "description",
)


def segment_rows(overview: dict[str, Any]) -> list[SegmentRow]:
    """The overview's segments with shares of the scored customers and mean values.

    Pure. RFM segments partition the scored customers, so their sizes are the
    denominator of ``customer_share`` for clusters too (clusters may leave out nobody
    or, below the clustering minimum, be absent).
    """
    total = overview["clv"]["customers"] or sum(
        s["customers"] for s in overview["segments"] if s["kind"] == "rfm"
    )
    rows = []
    for s in overview["segments"]:
        size = int(s["customers"])
        total_clv = s.get("total_clv")
        rows.append(
            SegmentRow(
                id=s["id"],
                kind=s["kind"],
                name=s["name"],
                description=s["description"],
                customers=size,
                customer_share=size / total if total else 0.0,
                revenue_share=None if s["revenue_share"] is None else float(s["revenue_share"]),
                revenue_trend_pct=s["revenue_trend_pct"],
                total_clv=total_clv,
                mean_clv=None if total_clv is None or not size else total_clv / size,
                mean_churn_risk=s.get("mean_churn_risk"),
                high_risk_share=s.get("high_risk_share"),
            )
        )
    return rows


def _bars(histogram: dict[str, Any]) -> list[ClvBar]:
    edges, counts = histogram["edges"], histogram["counts"]
    bars = [ClvBar(low=edges[i], high=edges[i + 1], customers=n) for i, n in enumerate(counts)]
    if histogram["overflow"]:
        bars.append(ClvBar(low=edges[-1], high=None, customers=histogram["overflow"]))
    return bars


def _quality(model: dict[str, Any]) -> dict[str, float]:
    """The clustering's k and its scores, as the registry keeps them (reported, never hidden)."""
    figures = {"k": model["params"].get("k")}
    figures |= {
        k: model["metrics"].get(k)
        for k in ("silhouette", "davies_bouldin", "stability_ari", "min_stability")
    }
    kept = {k: float(v) for k, v in figures.items() if isinstance(v, int | float)}
    if isinstance(model["metrics"].get("stable"), bool):  # runs before 2026-12-07 lack it
        kept["stable"] = float(model["metrics"]["stable"])
    return kept


def _no_clv_reason(models: dict[str, dict[str, Any]]) -> str:
    """The run's own reason (a spend or purchase model that could not be fitted), in words."""
    metrics = models.get("clv", {}).get("metrics", {})
    if metrics.get("not_fitted"):
        return f"the purchase model could not be fitted ({metrics['not_fitted']})"
    if metrics.get("spend_unavailable"):
        return (
            f"the spend model could not be fitted ({metrics['spend_unavailable']}); "
            "expected purchases, P(alive) and churn risk were scored"
        )
    return "this run recorded no purchase model"


def customers_view(
    engine: Engine, store_id: str, *, high_risk: float, clv_bins: int, clv_months: int
) -> CustomersView:
    """The page's view; ``scored`` is false (and the lists empty) before the first run.

    The CLV horizon shown is the run's own (from the model registry); ``clv_months``
    (the setting) only stands in when the registry has no CLV model for the run.

    Raises :class:`NotFound` for an unknown store.
    """
    with engine.connect() as conn:
        store = stores.get_store(conn, store_id)
        overview = customers_overview(conn, high_risk=high_risk, clv_bins=clv_bins)
        version = overview["model_version"]
        models = run_models(conn, version) if version else {}
        currencies = order_currencies(conn)
    horizon = models.get("clv", {}).get("params", {}).get("months", clv_months)
    quality = models.get("clusters")
    rows = segment_rows(overview)
    rfm = [r for r in rows if r.kind == "rfm"]
    has_churn = any(r.mean_churn_risk is not None for r in rows)
    at_risk = (
        sum(round((r.high_risk_share or 0.0) * r.customers) for r in rfm) if has_churn else None
    )
    return CustomersView(
        store_id=store_id,
        store_name=str(store["name"]),
        timezone=str(store["timezone"]),
        scored=bool(rows),
        as_of=overview["as_of"],
        model_version=overview["model_version"],
        customers=sum(r.customers for r in rfm),  # RFM partitions the scored customers
        mean_clv=overview["clv"]["mean"],
        clv_months=int(horizon),
        cluster_quality=None if quality is None else _quality(quality),
        high_risk=high_risk,
        high_risk_customers=at_risk,
        clv_quantiles=overview["clv"]["quantiles"],
        clv_bars=_bars(overview["clv"]["histogram"]),
        rfm=rfm,
        clusters=[r for r in rows if r.kind == "cluster"],
        has_clv=bool(overview["clv"]["customers"]),
        no_clv_reason=None if overview["clv"]["customers"] else _no_clv_reason(models),
        has_churn=has_churn,
        currencies=currencies,
    )


def members_view(
    engine: Engine,
    store_id: str,
    segment_id: str,
    actor: audit.Actor,
    *,
    page: int,
    limit: int,
) -> MembersView:
    """Page ``page`` (from 1) of a segment's members, audited in the same transaction as
    the read. Pages go by number, not by the API's customer-id cursor, so that no id is
    ever in a dashboard URL.

    Raises :class:`NotFound` for an unknown store or segment (nothing is audited then:
    no personal data was read).
    """
    with engine.begin() as conn:
        stores.get_store(conn, store_id)
        known = {s["id"]: s for s in list_segments(conn)}
        if segment_id not in known:
            raise NotFound(f"no segment {segment_id!r} in the latest scoring run")
        found = segment_page(conn, segment_id, None, limit, offset=(page - 1) * limit)
        audit.record(
            conn,
            actor,
            MEMBERS_READ,
            "segment",
            segment_id,
            {"members": len(found.members), "page": page, "via": "dashboard"},
            customers=[m["customer_id"] for m in found.members],
        )
    segment = SegmentHeader.model_validate(known[segment_id])
    return MembersView(
        store_id=store_id,
        segment=segment,
        pages=max(1, -(-segment.customers // limit)),
        members=[MemberRow.model_validate(m) for m in found.members],
        page=page,
        has_next=found.next_cursor is not None,
    )


def _cell(value: float | None, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def segment_table_csv(view: CustomersView) -> str:
    """The segment tables (RFM, then clusters) as CSV for a spreadsheet: aggregates only."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SEGMENT_CSV_COLUMNS)
    for r in [*view.rfm, *view.clusters]:
        writer.writerow(
            [
                inert_cell(r.kind),
                inert_cell(r.id),
                inert_cell(r.name),
                r.customers,
                _cell(r.customer_share, 4),
                _cell(r.revenue_share, 4),
                _cell(r.revenue_trend_pct, 1),
                _cell(r.total_clv, 2),
                _cell(r.mean_clv, 2),
                _cell(r.mean_churn_risk, 4),
                _cell(r.high_risk_share, 4),
                r.description,
            ]
        )
    return out.getvalue()
