"""What a recommendation request gets back, and the impression rows it leaves.

An answer is shown to someone, so it is logged: one impression per item, in the
order the log's table takes them. Keeping the two together means the log cannot
drift from what the route returns (the same items, ranks and confidences).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from storelens.recommend.context import Context
from storelens.recommend.impression_log import Row
from storelens.recommend.suggestions import Recommendation

__all__ = ["Answer", "impression_rows"]


@dataclass(frozen=True, slots=True)
class Answer:
    customer_id: str
    store_id: str
    personalized: bool
    reason: str | None
    context: Context
    items: list[Recommendation]
    degraded: bool = False  # candidates computed from the database (cache unavailable)


def impression_rows(answer: Answer, actor: str, at: datetime) -> list[Row]:
    """One tuple per shown item, in :data:`impression_log.COLUMNS` order."""
    cid, sid, pers, who = answer.customer_id, answer.store_id, answer.personalized, actor[:128]
    return [
        (at, cid, sid, r.product_id, i, r.confidence, pers, who)
        for i, r in enumerate(answer.items, start=1)
    ]
