"""Orders and their lines, projected from ``pos.order_paid`` events.

The order table is a read model: it can be dropped and rebuilt from the log, and it
is what customer profiles, lifetime value and recommendations read purchases from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.storage.dialects import dialect_for
from storelens.storage.eventlog import StoredEvent
from storelens.storage.tables import order_lines, orders

__all__ = ["ORDER_TYPES", "Order", "order_currencies", "orders_of_customer", "project_orders"]

ORDER_TYPES = ("pos.order_paid",)


@dataclass(frozen=True, slots=True)
class Order:
    store_id: str
    order_id: str
    ts: datetime
    channel: str
    total: float
    currency: str
    customer_id: str | None
    lines: list[dict[str, Any]]


def project_orders(conn: Connection, batch: list[StoredEvent]) -> None:
    """Write paid orders; a re-sent order id keeps the first payment (idempotent).

    The first payment keeps its lines too: they are inserted only for orders this
    batch creates. Ignoring a re-sent order's head but not its lines let a second
    ``pos.order_paid`` for the same order (a new event id) add lines past the first
    payment's last one, so the order's lines no longer added up to its total and the
    customer "bought" what the second event listed.
    """
    head: dict[tuple[str, str], dict[str, Any]] = {}
    lines: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ev in batch:
        if ev.type != "pos.order_paid" or ev.store_id is None:
            continue
        p = ev.payload
        key = (ev.store_id, p["order_id"])
        if key in head:
            continue  # the same order twice in one batch: the first in log order counts
        total = round(sum(li["qty"] * li["unit_price"] for li in p["lines"]), 2)
        head[key] = {
            "store_id": ev.store_id,
            "order_id": p["order_id"],
            "ts": ev.ts,
            "register": p.get("register_id"),
            "channel": p.get("channel", "in_store"),
            "customer_id": p.get("customer_id") or ev.subject,
            "total": total,
            "currency": p.get("currency", "EUR"),
            "event_id": ev.id,
        }
        lines[key] = [
            {
                "store_id": ev.store_id,
                "order_id": p["order_id"],
                "line_no": n,
                "product_id": li["product_id"],
                "qty": li["qty"],
                "unit_price": li["unit_price"],
            }
            for n, li in enumerate(p["lines"], start=1)
        ]
    for key in _stored_orders(conn, list(head)):
        del head[key], lines[key]
    if not head:
        return
    dialect = dialect_for(conn)
    conn.execute(dialect.insert_ignore(orders, ["store_id", "order_id"]), list(head.values()))
    conn.execute(
        dialect.insert_ignore(order_lines, ["store_id", "order_id", "line_no"]),
        [line for key in head for line in lines[key]],
    )


_CHUNK = 1000  # order ids per IN list


def _stored_orders(conn: Connection, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of ``keys`` (store id, order id) already have an order row."""
    found: set[tuple[str, str]] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = conn.execute(
            select(orders.c.store_id, orders.c.order_id).where(
                orders.c.order_id.in_({k[1] for k in chunk}),
                orders.c.store_id.in_({k[0] for k in chunk}),
            )
        )
        found.update((r.store_id, r.order_id) for r in rows)
    return found & set(keys)


def orders_of_customer(conn: Connection, customer_ids: list[str], limit: int = 200) -> list[Order]:
    rows = conn.execute(
        select(orders)
        .where(orders.c.customer_id.in_(customer_ids))
        .order_by(orders.c.ts.desc())
        .limit(limit)
    ).all()
    if not rows:
        return []
    keys = [(r.store_id, r.order_id) for r in rows]
    line_rows = conn.execute(
        select(order_lines).where(
            order_lines.c.order_id.in_([k[1] for k in keys]),
            order_lines.c.store_id.in_({k[0] for k in keys}),
        )
    ).all()
    by_order: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for li in line_rows:
        by_order.setdefault((li.store_id, li.order_id), []).append(
            {"product_id": li.product_id, "qty": li.qty, "unit_price": li.unit_price}
        )
    return [
        Order(
            store_id=r.store_id,
            order_id=r.order_id,
            ts=r.ts,
            channel=r.channel,
            total=r.total,
            currency=r.currency,
            customer_id=r.customer_id,
            lines=by_order.get((r.store_id, r.order_id), []),
        )
        for r in rows
    ]


def order_currencies(conn: Connection, store_id: str | None = None, most: int = 5) -> list[str]:
    """The currencies orders were paid in (in one store, or anywhere), at most ``most``,
    sorted. Values summed from orders (lifetime value, segment and zone revenue) add
    these as sent, unconverted, so a page showing a sum names them, and says so when
    there are several."""
    query = select(orders.c.currency).distinct().order_by(orders.c.currency).limit(most)
    if store_id is not None:
        query = query.where(orders.c.store_id == store_id)
    rows = conn.execute(query).scalars()
    return [str(c) for c in rows]


def _export_orders(req: SubjectRequest) -> list[dict[str, Any]]:
    """The person's paid orders with their lines."""
    return [plain(o) for o in orders_of_customer(req.conn, list(req.subject.ids), limit=1_000_000)]


def _pseudonymise_orders(req: SubjectRequest) -> int:
    result = req.conn.execute(
        update(orders)
        .where(orders.c.customer_id.in_(req.subject.ids))
        .values(customer_id=req.pseudonym)
    )
    return int(result.rowcount or 0)


register(
    PersonalStore(
        "orders",
        _export_orders,
        _pseudonymise_orders,
        tables=("orders", "order_lines"),
        kept="orders and their lines stay for the accounts (bookkeeping law), under a "
        "pseudonym instead of the customer id",
    )
)
