"""Where the claimer view's suggestions and segments come from: recommend and predict.

``storelens.staff`` defines what the claimer view needs (a :class:`Suggester`, a
:class:`SegmentLookup`) and ``storelens.recommend`` / ``storelens.predict`` provide
it, but sibling domains never import each other, so the adapters live here, one
layer above both, and ``api/app.py`` puts them on ``app.state``.

Consent decides what a salesperson may be told. The engine personalises only with
``personalization`` consent; without it, its answer is the store's popular items with
``personalized`` false, and that is what the claimer sees: nothing derived from the
customer's own purchases. With consent but nothing personal in the engine (its
candidates are keyed by the canonical id, while older orders can sit under ids that
were merged into it), the purchase-history suggester speaks from all the person's
orders; only if that finds nothing either are the popular items shown.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection

from storelens.predict.store import customer_prediction
from storelens.privacy.consent import has_consent
from storelens.recommend.context import Context
from storelens.recommend.engine import CONSENT_PURPOSE, Recommendation, RecommendationEngine
from storelens.sales import Order
from storelens.staff.claimer_view import CustomerSegment
from storelens.staff.suggestions import Suggester, Suggestion

__all__ = ["EngineSuggester", "StoredSegments", "suggestion_of"]

STAFF_CONTEXT = Context(channel="staff")


def suggestion_of(rec: Recommendation) -> Suggestion:
    """An engine item as the claimer sees it: its explanation is the reason said aloud."""
    return Suggestion(
        product_id=rec.product_id,
        name=rec.name or rec.product_id,
        reason=rec.explanation,
        score=rec.confidence,
        source=rec.source,
    )


class EngineSuggester:
    """A :class:`Suggester` on the recommendations engine, in the notice's store.

    ``engine_of`` is read on every call (the app's current engine), so a test or a
    reload that swaps ``app.state.recommendations`` is followed."""

    def __init__(self, engine_of: Callable[[], RecommendationEngine], fallback: Suggester) -> None:
        self._engine_of = engine_of
        self._fallback = fallback

    def suggest(
        self,
        conn: Connection,
        customer_ids: Sequence[str],
        history: Sequence[Order],
        limit: int,
        *,
        store_id: str,
        actor: str,
    ) -> list[Suggestion]:
        if limit <= 0 or not customer_ids:
            return []
        engine = self._engine_of()
        customer_id = customer_ids[0]
        answer = engine.answer(
            customer_id, store_id, limit, STAFF_CONTEXT, actor=actor, log_impressions=False
        )
        if not answer.personalized and has_consent(conn, customer_id, CONSENT_PURPOSE):
            personal = self._fallback.suggest(
                conn, customer_ids, history, limit, store_id=store_id, actor=actor
            )
            if personal:
                return personal
        engine.record_shown(conn, answer, actor)  # in the view's transaction, with its audit
        return [suggestion_of(r) for r in answer.items]


class StoredSegments:
    """A :class:`SegmentLookup` on the last scoring run: the RFM segment first, then the
    cluster, each with the description the run wrote. A customer the run did not
    score (no analytics consent, no orders yet) has none."""

    def segments(self, conn: Connection, customer_ids: Sequence[str]) -> list[CustomerSegment]:
        found = customer_prediction(conn, list(customer_ids))
        if found is None:
            return []
        return [
            CustomerSegment(
                id=str(s["id"]),
                kind=str(s["kind"]),
                name=str(s["name"]),
                description=s["description"] or None,
            )
            for s in found["segments"]
        ]
