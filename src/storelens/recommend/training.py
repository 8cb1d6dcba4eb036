"""``storelens recommend train``'s I/O: the orders table as basket histories, and the
candidates every customer gets precomputed into the serving store.

Orders are ordered per customer by payment time, the same split the basket-file
evaluation uses (each customer's last order held out), so figures from a basket file
and from the database mean the same thing. The payment time also gives each order the
context a basket file carries in its own columns (days since the customer's prior
order, weekday, hour) and the till's line number stands in for the cart position.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, and_, select

from storelens.config import Settings
from storelens.privacy.consent import granted_subjects
from storelens.recommend.baskets import BasketHistory, BasketLine, history_from_lines
from storelens.recommend.blend_scores import (
    CONSENT_PURPOSE,
    consenting,
    score_next_baskets,
    write_blend,
)
from storelens.recommend.candidate_store import CandidateStore
from storelens.recommend.engine import RecommendationEngine
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import order_lines, orders

__all__ = ["history_from_orders", "precompute_candidates", "store_blend_scores"]

if TYPE_CHECKING:
    from storelens.recommend.ranker import SourceParams


def history_from_orders(conn: Connection) -> BasketHistory:
    """The orders of every customer whose latest ``personalization`` decision is a grant,
    in payment order.

    The blend learns from whole histories (TIFU-KNN's neighbours, ALS's factors), so a
    customer's orders shape everyone's lists. Until December 2026 every named customer's
    did, consenting or not, and erased people's pseudonymised orders too (a security
    review: 495 of the demo's 570 histories had no consent). Now only those who agreed
    to personalization are learned from, as only those with analytics consent feed the
    predictive models; everyone else, anonymous orders included, counts only in the
    store's popularity, which names no one. An erasure deletes the person's decisions,
    so a pseudonym never consents."""
    learners = granted_subjects(conn, CONSENT_PURPOSE)
    rows = conn.execute(
        select(orders.c.customer_id, orders.c.store_id, orders.c.order_id, orders.c.ts,
               order_lines.c.product_id, order_lines.c.line_no)
        .join(order_lines, and_(order_lines.c.store_id == orders.c.store_id,
                                order_lines.c.order_id == orders.c.order_id))
        .where(orders.c.customer_id.is_not(None))
    ).all()  # fmt: skip
    rows = [row for row in rows if row[0] in learners]
    paid: dict[str, dict[str, datetime]] = {}
    for customer, store, order, ts, _, _ in rows:
        paid.setdefault(customer, {})[f"{store}/{order}"] = ts
    gap: dict[str, float] = {}
    for times in paid.values():
        prior: datetime | None = None
        for key, ts in sorted(times.items(), key=lambda kv: (kv[1], kv[0])):
            gap[key] = math.nan if prior is None else (ts - prior).total_seconds() / 86400
            prior = ts
    lines = [
        BasketLine(customer, f"{store}/{order}", product, int(ts.timestamp() * 1000), line_no,
                   gap[f"{store}/{order}"], ts.weekday(), ts.hour)
        for customer, store, order, ts, product, line_no in rows
    ]  # fmt: skip
    return history_from_lines(lines)


def precompute_candidates(
    engine: Engine,
    settings: Settings,
    store: CandidateStore,
    customers: list[str],
    advance: Callable[[], None] = lambda: None,
) -> int:
    """Build and store each customer's candidates; returns how many were written."""
    reco = RecommendationEngine(engine, settings, store)
    written = 0
    with engine.connect() as conn:
        for customer in customers:
            entry = reco.build(conn, customer)
            if entry is not None:
                store.put(entry)
                written += 1
            advance()
    return written


def store_blend_scores(
    engine: Engine,
    settings: Settings,
    history: BasketHistory,
    params: SourceParams,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[int, int]:
    """Score every customer's next basket with the blend fitted on all their orders and
    replace ``recommend_blend`` with the consenting ones' lists: (customers, rows)."""
    scores = score_next_baskets(history, params, settings.recommend_blend_top_n, clock())
    with engine.begin() as conn:
        # Scoring takes seconds to minutes, and an erasure may commit meanwhile: written
        # as read, its person's rows came back under their id, which no erasure could
        # then find (a security review). So consent is read under the erasure lock, as
        # every writer of rows computed from earlier reads does.
        dialect_for(conn).lock_erasures(conn, shared=True)
        allowed = consenting(conn, list(scores.lists))
        rows = write_blend(conn, scores, allowed)
    return len(allowed & set(scores.lists)), rows
