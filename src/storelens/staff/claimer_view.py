"""What the staff member who claimed a notice sees about the customer, and nobody else.

Only what helps serve the person at the counter: the name they asked to be greeted
by (never the legal name when they chose another; their first name only when they
chose none), their last visits, what they bought, their segment when one is stored,
and a few suggestions with reasons. No e-mail, phone, address or birthday: a phone
on the shop floor is read over shoulders. The gate (claimer only, claim open) and
the audit row are the caller's: ``NoticeDesk.held_claim`` and the API route.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, select

from storelens.privacy.subject import resolve_subject
from storelens.sales import Order, orders_of_customer
from storelens.staff.notices import Notice
from storelens.staff.suggestions import Suggester
from storelens.storage.tables import customers, products, stores

__all__ = [
    "CustomerSegment",
    "SegmentLookup",
    "claimer_view",
    "greeting",
    "last_visits",
]


@dataclass(frozen=True, slots=True)
class CustomerSegment:
    """A segment the customer belongs to, in words a salesperson can use."""

    id: str
    kind: str  # "rfm" | "cluster"
    name: str
    description: str | None


class SegmentLookup(Protocol):
    """Where a customer's segments come from (the last scoring run, ``storelens.predict``),
    most telling first; the API layer adapts the store, staff never imports predict."""

    def segments(self, conn: Connection, customer_ids: Sequence[str]) -> list[CustomerSegment]: ...


def greeting(records: Sequence[Any]) -> tuple[str | None, str | None]:
    """(name to greet by, where it came from) from the customer's records, newest first:
    a chosen greeting name wins; else a first name; else nothing (greet politely)."""
    for r in records:
        if r.greeting_name and r.greeting_name.strip():
            return r.greeting_name.strip(), "chosen"
    for r in records:
        if r.first_name and r.first_name.strip():
            return r.first_name.strip(), "first_name"
    return None, None


def last_visits(
    history: Sequence[Order], store_names: dict[str, str], limit: int
) -> list[dict[str, Any]]:
    """Visits tied by payment (one per store and day), newest first."""
    visits: dict[tuple[str, str], dict[str, Any]] = {}
    for order in history:  # newest first
        key = (order.store_id, order.ts.date().isoformat())
        visit = visits.get(key)
        if visit is None:
            if len(visits) == limit:
                break
            visit = visits[key] = {
                "date": key[1],
                "at": order.ts,
                "store_id": order.store_id,
                "store_name": store_names.get(order.store_id, order.store_id),
                "orders": 0,
                "spent": 0.0,
                "currency": order.currency,
            }
        visit["orders"] += 1
        visit["spent"] = round(visit["spent"] + order.total, 2)
    return list(visits.values())


def claimer_view(
    conn: Connection,
    notice: Notice,
    *,
    suggester: Suggester,
    segments: SegmentLookup,
    suggestions: int,
    actor: str,
    visits: int = 5,
    purchases: int = 10,
) -> dict[str, Any]:
    """The customer behind ``notice`` as the claimer sees them (JSON-ready but times).

    ``actor`` is the claimer, named in the record of recommendations shown."""
    subject = resolve_subject(conn, notice.customer_id)
    others = sorted(set(subject.ids) - {notice.customer_id}) if subject is not None else []
    ids = [notice.customer_id, *others]  # the notice's (canonical) id first
    records = conn.execute(
        select(customers.c.greeting_name, customers.c.first_name)
        .where(customers.c.customer_id.in_(ids))
        .order_by(customers.c.updated_at.desc())
    ).all()
    name, source = greeting(records)
    history = orders_of_customer(conn, ids, limit=200)
    wanted = {str(li["product_id"]) for o in history[:purchases] for li in o.lines}
    names = {
        str(r.id): str(r.name)
        for r in conn.execute(
            select(products.c.id, products.c.name).where(products.c.id.in_(wanted))
        )
    }
    found = segments.segments(conn, ids)
    store_names = {str(r.id): str(r.name) for r in conn.execute(select(stores.c.id, stores.c.name))}
    return {
        "notice_id": notice.id,
        "customer_id": notice.customer_id,
        "greeting_name": name,
        "greeting_source": source,
        "segment": found[0].name if found else None,
        "segment_description": found[0].description if found else None,
        "segments": [asdict(s) for s in found],
        "orders_total": len(history),
        "last_visits": last_visits(history, store_names, visits),
        "purchases": [
            {
                "order_id": o.order_id,
                "ts": o.ts,
                "store_id": o.store_id,
                "total": o.total,
                "currency": o.currency,
                "items": [
                    {
                        "product_id": li["product_id"],
                        "name": names.get(str(li["product_id"]), str(li["product_id"])),
                        "qty": li["qty"],
                    }
                    for li in o.lines
                ],
            }
            for o in history[:purchases]
        ],
        "suggestions": [
            asdict(s)
            for s in suggester.suggest(
                conn, ids, history, suggestions, store_id=notice.store_id, actor=actor
            )
        ],
    }
