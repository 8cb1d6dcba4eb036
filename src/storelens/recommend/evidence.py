"""The I/O half of serving: purchase evidence, popularity, stock, declines, impressions.

Everything the engine knows comes from here, as plain values, so every count an
explanation cites is a count of rows in the orders table. The stores of personal data
this module owns (logged impressions, declined items, the candidate caches) register
with the privacy registry at the bottom.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, delete, func, select, update

from storelens.config import Settings
from storelens.core.errors import FieldError, InvalidInput
from storelens.privacy import audit
from storelens.privacy.registry import PersonalStore, Subject, SubjectRequest, plain, register
from storelens.recommend.candidate_store import (
    CandidateStore,
    CandidatesUnavailable,
    CoPurchase,
    CustomerCandidates,
    RedisCandidates,
    candidate_store,
    live_stores,
)
from storelens.recommend.context import daypart_of
from storelens.recommend.impression_log import forget_all, hold_all, queued_for
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import (
    customers,
    order_lines,
    orders,
    products,
    recommend_declines,
    recommend_impressions,
    store_stock,
    stores,
)

__all__ = [
    "CoPurchaseTable",
    "Popularity",
    "ProductInfo",
    "blocked_items",
    "build_candidates",
    "catalogue_info",
    "copurchase_table",
    "customer_known",
    "decline",
    "declined",
    "log_impressions",
    "out_of_stock",
    "record_decline",
    "set_stock",
    "store_popularity",
]


@dataclass(frozen=True, slots=True)
class ProductInfo:
    name: str
    category: str
    zone_id: str | None


@dataclass(frozen=True, slots=True)
class Popularity:
    """Orders of one store in one daypart over the window, and how many held each item."""

    orders: int
    counts: dict[str, int]
    days: int


@dataclass(frozen=True, slots=True)
class CoPurchaseTable:
    """For each item, the orders holding it and the items most often in those orders."""

    orders_with: dict[str, int]
    together: dict[str, list[tuple[str, int]]]


def copurchase_table(conn: Connection, since: datetime, per_item: int = 10) -> CoPurchaseTable:
    """One pass over the window's order lines (non-personal: counts over all orders)."""
    rows = conn.execute(
        select(order_lines.c.store_id, order_lines.c.order_id, order_lines.c.product_id)
        .join(
            orders,
            and_(
                orders.c.store_id == order_lines.c.store_id,
                orders.c.order_id == order_lines.c.order_id,
            ),
        )
        .where(orders.c.ts >= since)
    ).all()
    baskets: dict[tuple[str, str], set[str]] = {}
    for store_id, order_id, product in rows:
        baskets.setdefault((store_id, order_id), set()).add(product)
    orders_with: Counter[str] = Counter()
    pairs: dict[str, Counter[str]] = {}
    for basket in baskets.values():
        orders_with.update(basket)
        if len(basket) > 1:
            for a in basket:
                pairs.setdefault(a, Counter()).update(b for b in basket if b != a)
    return CoPurchaseTable(
        orders_with=dict(orders_with),
        together={a: c.most_common(per_item) for a, c in pairs.items()},
    )


def _co_purchases(
    table: CoPurchaseTable, anchors: list[str], exclude: set[str]
) -> dict[str, CoPurchase]:
    """Items most often bought with the customer's favourites, that they never bought."""
    found: dict[str, CoPurchase] = {}
    for anchor in anchors:
        anchor_orders = table.orders_with.get(anchor, 0)
        for product, n in table.together.get(anchor, []):
            if product in exclude or not anchor_orders:
                continue
            best = found.get(product)
            if best is None or n / anchor_orders > best[1] / best[2]:
                found[product] = (anchor, n, anchor_orders)
    return found


def build_candidates(
    conn: Connection, customer_id: str, anchors: int, table: CoPurchaseTable
) -> CustomerCandidates | None:
    """The customer's evidence from the orders table; None if they never ordered."""
    rows = conn.execute(
        select(orders.c.order_id, orders.c.store_id, orders.c.ts, order_lines.c.product_id)
        .join(
            order_lines,
            and_(
                order_lines.c.store_id == orders.c.store_id,
                order_lines.c.order_id == orders.c.order_id,
            ),
        )
        .where(orders.c.customer_id == customer_id)
        .order_by(orders.c.ts)
    ).all()
    if not rows:
        return None
    entry = CustomerCandidates(customer_id=customer_id)
    by_order: dict[str, tuple[float, list[str]]] = {}
    for order_id, store_id, ts, product in rows:
        key = f"{store_id}/{order_id}"
        by_order.setdefault(key, (ts.timestamp(), []))[1].append(product)
    for key, (ts, bought) in sorted(by_order.items(), key=lambda kv: kv[1][0]):
        entry.apply_order(key, ts, bought)
    favourites = sorted(entry.items, key=lambda p: (-len(entry.items[p]), p))[:anchors]
    entry.copurchase = _co_purchases(table, favourites, set(entry.items))
    return entry


def store_popularity(
    conn: Connection, store_id: str, since: datetime, timezone: str, days: int
) -> dict[str, Popularity]:
    """Per daypart (store time): orders in the window and the orders holding each item."""
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        zone = ZoneInfo("UTC")
    rows = conn.execute(
        select(orders.c.order_id, orders.c.ts, order_lines.c.product_id)
        .join(
            order_lines,
            and_(
                order_lines.c.store_id == orders.c.store_id,
                order_lines.c.order_id == orders.c.order_id,
            ),
        )
        .where(orders.c.store_id == store_id, orders.c.ts >= since)
    ).all()
    seen: dict[str, set[tuple[str, str]]] = {}
    order_sets: dict[str, set[str]] = {}
    for order_id, ts, product in rows:
        part = daypart_of(ts.astimezone(zone).hour)
        order_sets.setdefault(part, set()).add(order_id)
        seen.setdefault(part, set()).add((order_id, product))
    out: dict[str, Popularity] = {}
    for name, ids in order_sets.items():
        counts = Counter(product for _, product in seen[name])
        out[name] = Popularity(orders=len(ids), counts=dict(counts), days=days)
    # All dayparts together: what a daypart without orders falls back to.
    all_ids = {o for ids in order_sets.values() for o in ids}
    total = Counter(p for pairs in seen.values() for _, p in pairs)
    out["all"] = Popularity(orders=len(all_ids), counts=dict(total), days=days)
    return out


def catalogue_info(conn: Connection) -> dict[str, ProductInfo]:
    rows = conn.execute(
        select(products.c.id, products.c.name, products.c.category, products.c.zone_id)
    ).all()
    return {r.id: ProductInfo(r.name, r.category, r.zone_id) for r in rows}


def out_of_stock(conn: Connection, store_id: str) -> set[str]:
    """Items the store's stock feed marks as unavailable (no row: assumed available)."""
    rows = conn.execute(
        select(store_stock.c.product_id).where(
            store_stock.c.store_id == store_id, store_stock.c.in_stock.is_(False)
        )
    ).scalars()
    return set(rows)


def set_stock(
    conn: Connection,
    store_id: str,
    levels: dict[str, bool],
    now: datetime,
    *,
    most_out: int | None = None,
) -> int:
    """Mark items out of stock (false) or back (true) in this store; the number now out.

    An item back in stock loses its row (no row means available), so the table holds
    what is out and nothing else. It kept a row per item ever sent, and every worker
    reloads the store's list each second: a security review's analyst key sent a
    million made-up ids and left the workers busy while idle. ``most_out`` refuses a
    write that marks items out and would leave more than that many out (the caller's
    transaction is rolled back); writers of one store are serialised."""
    back = sorted(p for p, available in levels.items() if available)
    out = [p for p, available in levels.items() if not available]
    column = store_stock.c.product_id
    # One writer per store at a time: two PUTs under the limit each, counted before
    # either committed, left 18,000 items out against a limit of 10,000 (a review). A
    # write to the store's row takes its row lock (PostgreSQL) or the write lock (SQLite).
    conn.execute(update(stores).where(stores.c.id == store_id).values(id=stores.c.id))
    if back:
        conn.execute(
            delete(store_stock).where(
                store_stock.c.store_id == store_id, dialect_for(conn).one_of(column, back)
            )
        )
    if out:
        conn.execute(
            dialect_for(conn).upsert(
                store_stock, ["store_id", "product_id"], ["in_stock", "updated_at"]
            ),
            [{"store_id": store_id, "product_id": p, "in_stock": False, "updated_at": now}
             for p in out],
        )  # fmt: skip
    now_out: int = conn.execute(
        select(func.count())
        .select_from(store_stock)
        .where(store_stock.c.store_id == store_id, store_stock.c.in_stock.is_(False))
    ).scalar_one()
    # Only a write that adds items out is refused: a store over the limit (rows from
    # before it) must be able to mark items back in stock.
    if most_out is not None and out and now_out > most_out:
        why = (
            f"this would leave {now_out:,} items out of stock in the store, more than the "
            f"{most_out:,} allowed (STORELENS_RECOMMEND_STOCK_MAX_OUT); mark items back "
            "in stock (true) first"
        )
        raise InvalidInput(why, [FieldError.at(("body", "items"), why, "value_error")])
    return now_out


def blocked_items(conn: Connection, store_id: str, customer_id: str) -> set[str]:
    """Out of stock in this store, or declined by this customer: one round trip."""
    stock = select(store_stock.c.product_id).where(
        store_stock.c.store_id == store_id, store_stock.c.in_stock.is_(False)
    )
    declines = select(recommend_declines.c.product_id).where(
        recommend_declines.c.customer_id == customer_id
    )
    return set(conn.execute(stock.union_all(declines)).scalars())


def declined(conn: Connection, customer_id: str) -> set[str]:
    rows = conn.execute(
        select(recommend_declines.c.product_id).where(
            recommend_declines.c.customer_id == customer_id
        )
    ).scalars()
    return set(rows)


def customer_known(conn: Connection, customer_id: str) -> bool:
    """A customer record carries the id, or an order was paid under it."""
    if conn.execute(
        select(customers.c.id).where(customers.c.customer_id == customer_id).limit(1)
    ).first():
        return True
    return (
        conn.execute(
            select(orders.c.order_id).where(orders.c.customer_id == customer_id).limit(1)
        ).first()
        is not None
    )


def record_decline(
    conn: Connection,
    actor: audit.Actor,
    customer_id: str,
    product_id: str,
    now: datetime,
    detail: dict[str, str] | None = None,
) -> bool:
    """Audit a decline (the miss too) and store it if ``customer_id`` is a customer;
    whether it was. The by-id route and a claimed notice's both come here.

    An erasure running now either ends first (the person is then unknown) or waits for
    this row and deletes it: never a decline outliving the erasure."""
    dialect_for(conn).lock_erasures(conn, shared=True)
    known = customer_known(conn, customer_id)
    action = "recommendations.decline" + ("" if known else ".not_found")
    named = [customer_id] if known else []
    about = {"product_id": product_id, **(detail or {})}
    audit.record(conn, actor, action, "customer", customer_id, about, customers=named)
    if known:
        decline(conn, customer_id, product_id, now)
    return known


def decline(conn: Connection, customer_id: str, product_id: str, now: datetime) -> None:
    conn.execute(
        dialect_for(conn).insert_ignore(recommend_declines, ["customer_id", "product_id"]),
        [{"customer_id": customer_id, "product_id": product_id, "at": now}],
    )


def log_impressions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(recommend_impressions.insert(), rows)


# -- the registry of personal data ------------------------------------------------------


def _export_impressions(req: SubjectRequest) -> list[dict[str, Any]]:
    rows = req.conn.execute(
        select(recommend_impressions)
        .where(recommend_impressions.c.customer_id.in_(req.subject.ids))
        # By time: a write stores a batch in customer order, so ids alone would list
        # one of a person's ids before another's within a batch (a review).
        .order_by(recommend_impressions.c.ts, recommend_impressions.c.id)
    ).mappings()
    written = [plain(dict(r)) for r in rows]
    # Shown but still queued for the writer: part of the record too (no id yet).
    return written + [plain({"id": None, **r}) for r in queued_for(set(req.subject.ids))]


def _erase_impressions(req: SubjectRequest) -> int:
    # Queued rows written later would outlive the erasure; new ones are refused until
    # a grace after the commit (an answer computed from a read before it).
    queued = forget_all(set(req.subject.ids))
    stmt = delete(recommend_impressions).where(
        recommend_impressions.c.customer_id.in_(req.subject.ids)
    )
    return queued + req.conn.execute(stmt).rowcount


def _settle_impressions(engine: Engine, subject: Subject, committed: bool) -> int:
    """Rows queued or written by an answer that ran alongside the erasure; after a
    rollback only the fence is lifted (the person's rows stay theirs)."""
    queued = hold_all(set(subject.ids), drop=committed)
    if not committed:
        return 0
    with engine.begin() as conn:
        stmt = delete(recommend_impressions).where(
            recommend_impressions.c.customer_id.in_(subject.ids)
        )
        return queued + conn.execute(stmt).rowcount


def _export_declines(req: SubjectRequest) -> list[dict[str, Any]]:
    rows = req.conn.execute(
        select(recommend_declines).where(recommend_declines.c.customer_id.in_(req.subject.ids))
    ).mappings()
    return [plain(dict(r)) for r in rows]


def _erase_declines(req: SubjectRequest) -> int:
    stmt = delete(recommend_declines).where(recommend_declines.c.customer_id.in_(req.subject.ids))
    return req.conn.execute(stmt).rowcount


def _settle_declines(engine: Engine, subject: Subject, committed: bool) -> int:
    """A decline posted alongside the erasure: its check saw the customer before the
    commit, and its insert landed after the erasure's delete."""
    if not committed:
        return 0
    with engine.begin() as conn:
        stmt = delete(recommend_declines).where(recommend_declines.c.customer_id.in_(subject.ids))
        return conn.execute(stmt).rowcount


def _candidate_stores() -> list[CandidateStore]:
    """The stores of this process, plus the configured Redis when this process has none
    open: ``storelens privacy erase`` never serves, so before this its erasure left the
    Redis entry (order ids, items) serving personal answers until it expired, and the
    check after it reported nothing left (found by a security review)."""
    stores = live_stores()
    settings = Settings()
    if settings.recommend_candidate_store == "redis" and not any(
        isinstance(s, RedisCandidates) for s in stores
    ):
        stores.append(candidate_store(settings))
    return stores


def _export_candidates(req: SubjectRequest) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for store in _candidate_stores():
        for cid in req.subject.ids:
            try:
                entry = store.get(cid)
            except CandidatesUnavailable as exc:
                raise CandidatesUnavailable(f"candidate store unreachable: {exc}") from exc
            if entry is not None:
                out.append({"customer_id": cid, "items": sorted(entry.items)})
    return out


def _erase_candidates(req: SubjectRequest) -> int:
    """Drop cached lists in every candidate store (memory and Redis). A store that
    cannot be reached fails the erasure (its transaction rolls back) rather than leave
    the lists behind. Other server processes drop their memory copies when they next
    follow the audit trail (``recommend.follower``, ``recommend_follow_s``)."""
    removed = 0
    for store in _candidate_stores():
        removed += store.fence(list(req.subject.ids))  # and refuse fills until settled
    return removed


def _settle_candidates(engine: Engine, subject: Subject, committed: bool) -> int:
    """Delete what a request put back before the fence closed, and keep refusing fills
    for the grace period: a request that read the tables before the commit may still
    be on its way to the store."""
    removed = 0
    for store in _candidate_stores():
        if committed:
            removed += store.delete(list(subject.ids))
        store.hold(list(subject.ids))
    return removed


register(
    PersonalStore(
        "recommend_impressions",
        _export_impressions,
        _erase_impressions,
        tables=("recommend_impressions",),
        settle=_settle_impressions,
    )
)
register(
    PersonalStore(
        "recommend_declines",
        _export_declines,
        _erase_declines,
        tables=("recommend_declines",),
        settle=_settle_declines,
    )
)
register(
    PersonalStore(
        "recommend_candidates", _export_candidates, _erase_candidates, settle=_settle_candidates
    )
)
