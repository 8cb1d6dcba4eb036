"""What a recommendation request gets back, and the impression rows it leaves.

An answer is shown to someone, so it is logged: one impression row per answer, its
items in the order shown. Keeping the two together means the log cannot
drift from what the route returns (the same items, ranks and confidences).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storelens.recommend.context import Context
from storelens.recommend.impression_log import Row
from storelens.recommend.suggestions import Recommendation

__all__ = ["Answer", "impression_row"]


@dataclass(frozen=True, slots=True)
class Answer:
    customer_id: str
    store_id: str
    personalized: bool
    reason: str | None
    context: Context
    items: list[Recommendation]
    degraded: bool = False  # candidates computed from the database (cache unavailable)


def impression_row(answer: Answer, actor: str, at: datetime) -> Row:
    """The shown list as one row, in :data:`impression_log.COLUMNS` order; its items as
    (product, confidence) pairs, best first (the log spells them out when writing)."""
    shown = tuple([(r.product_id, r.confidence) for r in answer.items])
    return (at, answer.customer_id, answer.store_id, answer.personalized, actor[:128], shown)
