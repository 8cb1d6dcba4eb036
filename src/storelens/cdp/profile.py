"""The unified customer profile: everything storelens knows about one person, on read.

Assembled from the projections at request time rather than stored, so a new order,
web event or consent change shows the moment its projection has run (seconds in the
server), and an erasure leaves nothing behind in a cached copy. Identifiers the person
is known by (their customer id, loyalty ids, retired ids) tie in POS orders, consent
and web events; an in-store visit is tied through a payment: the one non-staff track
standing in the store's counter zone when the order was paid.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, select

from storelens.cdp.behaviour import engagement, identity_confidence, preferences, web_summary
from storelens.cdp.golden import golden_record
from storelens.cdp.normalise import normalise_email, normalise_phone
from storelens.cdp.resolution import canonical_id, history_of, record_key
from storelens.privacy.consent import consent_state
from storelens.sales import Order, orders_of_customer
from storelens.storage.tables import (
    customer_aliases,
    customers,
    events,
    ops_visits,
    ops_zone_visits,
    products,
    zones,
)

__all__ = ["PAYMENT_ZONE_KINDS", "build_profile", "known_ids"]

PAYMENT_ZONE_KINDS = ("counter", "checkout")
_PAY_GRACE = timedelta(seconds=30)  # a tap at the reader just after stepping away
_WEB_LIMIT = 2000


def known_ids(conn: Connection, customer_id: str, records: list[dict[str, Any]]) -> list[str]:
    """Every identifier this customer's orders, consent and web events may carry."""
    aliases = conn.execute(
        select(customer_aliases.c.alias).where(customer_aliases.c.customer_id == customer_id)
    ).scalars()
    return sorted(
        {
            customer_id,
            *aliases,
            *(r["loyalty_id"] for r in records if r["loyalty_id"]),
            *(record_key(r["source_system"], r["source_record_id"]) for r in records),
        }
    )


def _comparable(record: dict[str, Any]) -> dict[str, Any]:
    """Contact fields in one spelling, so formats of one number do not count as conflicts."""
    region = record.get("country") or "DE"
    phone = normalise_phone(record.get("phone"), region) or record.get("phone")
    email = normalise_email(record.get("email")) or record.get("email")
    return {**record, "phone": phone, "email": email}


def _visits(conn: Connection, orders: list[Order]) -> dict[str, Any]:
    in_store = [o for o in orders if o.channel == "in_store"]
    if not in_store:
        return {"tied": 0, "untied": 0, "visits": [], "median_dwell_s": None}
    stores = {o.store_id for o in in_store}
    pay_zones = {
        (s, z)
        for s, z in conn.execute(
            select(zones.c.store_id, zones.c.zone_id).where(
                zones.c.store_id.in_(stores), zones.c.kind.in_(PAYMENT_ZONE_KINDS)
            )
        )
    }
    tied: list[dict[str, Any]] = []
    for order in in_store:
        zone_ids = [z for s, z in pay_zones if s == order.store_id]
        if not zone_ids:
            continue
        at_counter = conn.execute(
            select(ops_zone_visits.c.track_id).where(
                ops_zone_visits.c.store_id == order.store_id,
                ops_zone_visits.c.zone_id.in_(zone_ids),
                ops_zone_visits.c.is_staff.is_(False),
                ops_zone_visits.c.enter <= order.ts,
                ops_zone_visits.c.exit >= order.ts - _PAY_GRACE,
            )
        ).scalars()
        tracks = sorted(set(at_counter))
        if len(tracks) != 1:
            continue  # nobody or several people at the counter: not attributable
        visit = conn.execute(
            select(ops_visits).where(
                and_(ops_visits.c.store_id == order.store_id, ops_visits.c.track_id == tracks[0])
            )
        ).first()
        if visit is not None:
            tied.append(
                {
                    "store_id": order.store_id,
                    "order_id": order.order_id,
                    "enter": visit.enter,
                    "exit": visit.exit,
                    "dwell_s": round((visit.exit - visit.enter).total_seconds(), 1),
                    "zones": visit.zones,
                }
            )
    dwell = sorted(v["dwell_s"] for v in tied)
    return {
        "tied": len(tied),
        "untied": len(in_store) - len(tied),
        "visits": tied[:50],
        "median_dwell_s": dwell[len(dwell) // 2] if dwell else None,
    }


def _web(conn: Connection, ids: list[str]) -> dict[str, Any]:
    rows = conn.execute(
        select(events.c.ts, events.c.payload)
        .where(events.c.type == "web.event", events.c.subject.in_(ids))
        .order_by(events.c.ts.desc())
        .limit(_WEB_LIMIT)
    ).all()
    return web_summary([{"ts": r.ts, "payload": r.payload} for r in reversed(rows)])


def build_profile(
    conn: Connection, customer_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """The profile of ``customer_id`` (a current, retired or loyalty id); None if unknown."""
    now = now or datetime.now(UTC)
    resolved = canonical_id(conn, customer_id) or customer_id
    rows = conn.execute(
        select(customers)
        .where(customers.c.customer_id == resolved)
        .order_by(customers.c.updated_at.desc())
    ).all()
    records = [dict(r._mapping) for r in rows]
    ids = known_ids(conn, resolved, records)
    orders = orders_of_customer(conn, ids, limit=1000)
    consent = consent_state(conn, ids)
    web = _web(conn, ids)
    if not records and not orders and not consent and not web["events"]:
        return None
    golden = {k: v.as_dict() for k, v in golden_record([_comparable(r) for r in records]).items()}
    # The whole catalogue, once: preferences compare prices with each category's median.
    catalogue = {r.id: dict(r._mapping) for r in conn.execute(select(products))}
    lines = [line for o in orders for line in o.lines]
    prefs = preferences(lines, catalogue)
    last_record = max((r["updated_at"] for r in records), default=None)
    freshest = [t for t in (last_record, orders[0].ts if orders else None, web["last_seen"]) if t]
    return {
        "customer_id": resolved,
        "requested_id": customer_id,
        "golden": golden,
        "records": records,
        "orders": orders,
        "baskets": [
            {
                "order_id": o.order_id,
                "ts": o.ts,
                "items": [
                    {**line, "name": (catalogue.get(str(line["product_id"])) or {}).get("name")}
                    for line in o.lines
                ],
            }
            for o in orders[:20]
        ],
        "engagement": engagement(
            [o.ts for o in orders],
            [o.total for o in orders],
            [o.channel for o in orders],
            now,
            web["last_seen"],
        ),
        "preferences": prefs,
        "web": web,
        "visits": _visits(conn, orders),
        "consent": consent,
        "confidence": identity_confidence([r["match_probability"] for r in records], golden),
        "identity_history": history_of(conn, resolved)[:20],
        "known_ids": ids,
        "as_of": max(freshest) if freshest else None,
        "computed_at": now,
    }
