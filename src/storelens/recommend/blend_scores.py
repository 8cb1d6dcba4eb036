"""Each customer's next basket scored by the learned blend, kept for serving.

The blend cannot score one customer on request: TIFU-KNN looks for neighbours among
every customer and ALS factors all of them at once, so it scores the whole history in
one batch. ``storelens recommend train`` therefore fits it on the orders as of now
(the same time-split training and validation-chosen settings as the evaluation),
scores every customer's next basket, and keeps each consenting customer's top
``recommend_blend_top_n`` items in ``recommend_blend``. The serving entry loads them
beside the purchase evidence, so a request re-ranks by a dict lookup per candidate.

The next order's context (gap since the prior order, weekday, hour) is not known when
the batch runs, yet the blend was trained with it: each customer's usual context stands
in (their median gap, their most frequent weekday and hour), which costs some of the
offline figure (docs/recommendations.md reports both).

The rows are personal: only customers whose latest ``personalization`` decision is a
grant are written, a withdrawal deletes the person's rows as its projection reads it
(and so does a merge that hands the person a withdrawal made under another id), every
train replaces the whole table, serving ignores them without consent, and the privacy
registry exports and erases them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, delete, insert, select

from storelens.core.errors import InvalidInput
from storelens.privacy.consent import granted_subjects
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.withdrawals import forget_on_withdrawal, withdrawn_among
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import recommend_blend

if TYPE_CHECKING:
    from storelens.recommend.baskets import BasketHistory
    from storelens.recommend.ranker import SourceParams
    from storelens.storage.eventlog import StoredEvent

__all__ = [
    "CONSENT_PURPOSE",
    "BlendScores",
    "consenting",
    "expected_context",
    "forget_withdrawn",
    "load_blend",
    "score_next_baskets",
    "write_blend",
]

CONSENT_PURPOSE = "personalization"
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BlendScores:
    """Every scored customer's items, best first, as (product id, blend score)."""

    model_version: str
    scored_at: datetime
    lists: dict[str, list[tuple[str, float]]]


def expected_context(history: BasketHistory) -> FloatArray:
    """Per user, the context their next order most likely has: the median of their known
    gaps, their most frequent weekday and hour (NaN where they have none)."""
    out = np.full((history.n_users, 3), np.nan)
    for u in range(history.n_users):
        when = history.order_context(u)
        gaps = when[:, 0][~np.isnan(when[:, 0])]
        if len(gaps):
            out[u, 0] = float(np.median(gaps))
        for col in (1, 2):
            known = when[:, col][~np.isnan(when[:, col])]
            if len(known):
                values, counts = np.unique(known, return_counts=True)
                out[u, col] = float(values[int(np.argmax(counts))])
    return out


def score_next_baskets(
    history: BasketHistory,
    params: SourceParams,
    top_n: int,
    scored_at: datetime,
    attributes: Mapping[str, Sequence[str]] | None = None,
) -> BlendScores:
    """Fit the blend on the whole history and keep every user's ``top_n`` next-basket items."""
    if top_n < 1:
        raise InvalidInput(f"top_n must be at least 1, not {top_n}")
    if scored_at.tzinfo is None:
        raise InvalidInput("scored_at must be timezone-aware")
    from storelens.recommend.ranker import fit_blend, source_scores

    scores = source_scores(history, params, attributes)
    blend = fit_blend(history, params, attributes, tuple(scores))
    matrix = blend.score(history, scores, expected_context(history), attributes)
    lists: dict[str, list[tuple[str, float]]] = {}
    for u, user in enumerate(history.users):
        lo, hi = matrix.indptr[u], matrix.indptr[u + 1]
        data, items = matrix.data[lo:hi], matrix.indices[lo:hi]
        best = np.lexsort((items, -data))[:top_n]  # ties: the lower item index first
        lists[user] = [(history.items[int(items[i])], float(data[i])) for i in best]
    version = f"gbdt-{scored_at.strftime('%Y%m%dT%H%M%SZ')}-c{params.candidates}"
    return BlendScores(version, scored_at, lists)


def consenting(conn: Connection, customers: Sequence[str]) -> set[str]:
    """The customers whose latest ``personalization`` decision is a grant."""
    return granted_subjects(conn, CONSENT_PURPOSE) & set(customers)


def write_blend(conn: Connection, scores: BlendScores, allowed: set[str]) -> int:
    """Replace the whole table with the lists of ``allowed`` customers; rows written.

    A score that is not a finite number is left out (ranks close up): NaN compares
    false both ways, so one in a list made its order depend on how the list was built
    (a review found serving's merged ranking and the full one disagreeing on it), and
    SQLite stores it as NULL, which the column refuses."""
    rows = []
    for customer, items in scores.lists.items():
        if customer not in allowed:
            continue
        kept = [(product, score) for product, score in items if math.isfinite(score)]
        rows += [
            {"customer_id": customer, "product_id": product, "score": score, "rank": rank,
             "model_version": scores.model_version, "scored_at": scores.scored_at}
            for rank, (product, score) in enumerate(kept, start=1)
        ]  # fmt: skip
    conn.execute(delete(recommend_blend))
    for start in range(0, len(rows), 5000):
        conn.execute(insert(recommend_blend), rows[start : start + 5000])
    return len(rows)


def load_blend(conn: Connection, customer_id: str) -> tuple[dict[str, float], float]:
    """(product -> blend score, scored at as Unix seconds); empty when never scored. A
    non-finite score (PostgreSQL keeps NaN and infinities) is left out, as at writing."""
    rows = conn.execute(
        select(recommend_blend.c.product_id, recommend_blend.c.score, recommend_blend.c.scored_at)
        .where(recommend_blend.c.customer_id == customer_id)
        .order_by(recommend_blend.c.rank)
    ).all()
    if not rows:
        return {}, 0.0
    scores = {r.product_id: float(r.score) for r in rows}
    return {p: v for p, v in scores.items() if math.isfinite(v)}, rows[0].scored_at.timestamp()


def _export(req: SubjectRequest) -> list[dict[str, Any]]:
    rows = req.conn.execute(
        select(recommend_blend)
        .where(recommend_blend.c.customer_id.in_(req.subject.ids))
        .order_by(recommend_blend.c.customer_id, recommend_blend.c.rank)
    ).mappings()
    return [plain(dict(r)) for r in rows]


def _erase(req: SubjectRequest) -> int:
    stmt = delete(recommend_blend).where(recommend_blend.c.customer_id.in_(req.subject.ids))
    return req.conn.execute(stmt).rowcount


def _forget(conn: Connection, ids: list[str]) -> int:
    column = recommend_blend.c.customer_id
    return conn.execute(
        delete(recommend_blend).where(dialect_for(conn).one_of(column, ids))
    ).rowcount


def forget_withdrawn(conn: Connection, batch: Sequence[StoredEvent]) -> None:
    """Projection handler (``recommend-withdrawals``): a ``personalization`` withdrawal
    deletes the person's rows at once, not at the next train. Serving already ignored
    them, but they stayed in the table, exported and scanned as the person's, until
    someone trained again (a security review).

    A projection of its own, doing nothing else: the erasure lock it takes exclusively
    is held to its commit. Taken inside the candidates projection, it was held across the
    rest of a batch's orders and Redis writes, so a decline waited 2.5 s behind one
    withdrawal (a review)."""
    forget_on_withdrawal(conn, batch, CONSENT_PURPOSE, _forget)


def _relink(conn: Connection, named: frozenset[str]) -> int:
    """Resolution just linked or split the people ``named`` ids belong to: delete the
    rows kept under any of their ids whose person's latest personalization decision is
    not a grant (a withdrawal under a web account merged into a scored card)."""
    return _forget(conn, withdrawn_among(conn, named, (recommend_blend,), CONSENT_PURPOSE))


register(
    PersonalStore("recommend_blend", _export, _erase, tables=("recommend_blend",), relink=_relink)
)
