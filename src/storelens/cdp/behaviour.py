"""What a customer does, summarised for the profile: baskets, preferences, engagement.

Pure functions over orders, catalogue entries and web events, so the numbers an
analyst reads are testable without a database. Later issues (segments, lifetime value,
recommendations) read the same summaries.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from statistics import median
from typing import Any

__all__ = [
    "engagement",
    "identity_confidence",
    "preferences",
    "web_summary",
]

TOP = 5


def preferences(
    lines: Sequence[Mapping[str, Any]], catalogue: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Top categories, brands and products by quantity, and a price-sensitivity index.

    ``price_index`` compares what the customer paid per item with the median list
    price of the categories they bought in: below 0.9 they favour cheaper items,
    above 1.1 premium ones. ``None`` when nothing they bought is in the catalogue.
    """
    categories: Counter[str] = Counter()
    brands: Counter[str] = Counter()
    products: Counter[str] = Counter()
    ratios: list[float] = []
    by_category: dict[str, list[float]] = {}
    for entry in catalogue.values():
        by_category.setdefault(str(entry["category"]), []).append(float(entry["price"]))
    medians = {c: median(p) for c, p in by_category.items() if p}
    for line in lines:
        qty = int(line["qty"])
        products[str(line["product_id"])] += qty
        product = catalogue.get(str(line["product_id"]))
        if product is None:
            continue
        category = str(product["category"])
        categories[category] += qty
        if product.get("brand"):
            brands[str(product["brand"])] += qty
        if medians.get(category):
            ratios.extend([float(line["unit_price"]) / medians[category]] * qty)
    index = round(sum(ratios) / len(ratios), 3) if ratios else None
    band = (
        None if index is None else "value" if index < 0.9 else "premium" if index > 1.1 else "mid"
    )
    return {
        "top_categories": [{"category": c, "items": n} for c, n in categories.most_common(TOP)],
        "top_brands": [{"brand": b, "items": n} for b, n in brands.most_common(TOP)],
        "top_products": [
            {"product_id": p, "name": (catalogue.get(p) or {}).get("name"), "items": n}
            for p, n in products.most_common(TOP)
        ],
        "price_index": index,
        "price_band": band,
    }


def engagement(
    order_times: Sequence[datetime],
    totals: Sequence[float],
    channels: Sequence[str],
    now: datetime,
    web_last_seen: datetime | None = None,
) -> dict[str, Any]:
    """Recency, frequency and spend, the raw inputs for RFM segments and lifetime value."""
    if len(order_times) != len(totals) or len(totals) != len(channels):
        raise ValueError("order_times, totals and channels must be the same length")
    if not order_times:
        return {
            "orders": 0, "total_spent": 0.0, "average_basket": None, "first_order": None,
            "last_order": None, "days_since_last_order": None, "orders_per_month": None,
            "channels": {}, "last_seen": web_last_seen,
        }  # fmt: skip
    first, last = min(order_times), max(order_times)
    months = max((now - first).days / 30.44, 1.0)
    last_seen = max(last, web_last_seen) if web_last_seen else last
    return {
        "orders": len(order_times),
        "total_spent": round(sum(totals), 2),
        "average_basket": round(sum(totals) / len(totals), 2),
        "first_order": first,
        "last_order": last,
        "days_since_last_order": max((now - last).days, 0),
        "orders_per_month": round(len(order_times) / months, 2),
        "channels": dict(Counter(channels).most_common()),
        "last_seen": last_seen,
    }


def web_summary(events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sessions, actions and most viewed products from ``web.event`` payloads with ``ts``."""
    if not events:
        return {"sessions": 0, "events": 0, "actions": {}, "top_viewed": [], "last_seen": None}
    actions = Counter(str(e["payload"]["action"]) for e in events)
    viewed = Counter(
        str(e["payload"]["product_id"])
        for e in events
        if e["payload"].get("product_id") and e["payload"]["action"] == "product_view"
    )
    searches = [e["payload"]["query"] for e in events if e["payload"].get("query")]
    return {
        "sessions": len({e["payload"]["session_id"] for e in events}),
        "events": len(events),
        "actions": dict(actions.most_common()),
        "top_viewed": [{"product_id": p, "views": n} for p, n in viewed.most_common(TOP)],
        "recent_searches": searches[-TOP:],
        "last_seen": max(e["ts"] for e in events),
    }


def identity_confidence(
    link_probabilities: Sequence[float | None], golden: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """How much to trust that this profile is one real person with these details.

    ``identity`` is the weakest link holding a record in the customer (1.0 for a single
    record or deterministic links); ``completeness`` is the share of core contact fields
    known; ``agreement`` the share of golden values no record contradicts. The score is
    identity * (0.5 + 0.25 * completeness + 0.25 * agreement): a doubtful link dominates.
    """
    links = [p for p in link_probabilities if p is not None]
    identity = min(links) if links else 1.0
    core = ("first_name", "last_name", "email", "phone", "address", "dob")
    completeness = sum(1 for f in core if f in golden) / len(core)
    agreement = (
        sum(1 for v in golden.values() if not v.get("conflicting")) / len(golden) if golden else 0.0
    )
    score = identity * (0.5 + 0.25 * completeness + 0.25 * agreement)
    return {
        "score": round(score, 3),
        "identity": round(identity, 4),
        "completeness": round(completeness, 3),
        "agreement": round(agreement, 3),
        "records": len(link_probabilities),
    }
