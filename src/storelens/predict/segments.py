"""RFM scores and the named segments a marketer acts on, each described from its numbers.

Scores are quintiles 1-5 of recency (recent is 5), order count and spend, computed
from the share of customers *strictly below* a value, so tied customers always share a
score and the result does not depend on row order. With many one-time buyers that
puts all of them at F=1, which is what a marketer means by "bought once".

Segments follow the widely used R x F grid (M is reported and described, not used to
name): recency says whether the relationship is live, frequency how deep it is.

=====  ===============  ===================  ===================  =========  ==========
R \\ F  1                2                    3                    4          5
=====  ===============  ===================  ===================  =========  ==========
5      new              potential loyalists  potential loyalists  champions  champions
4      promising        potential loyalists  potential loyalists  loyal      loyal
3      need attention   need attention       need attention       loyal      loyal
2      hibernating      hibernating          at risk              at risk    can't lose
1      lost             lost                 at risk              at risk    can't lose
=====  ===============  ===================  ===================  =========  ==========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SEGMENTS", "SegmentSummary", "describe_segments", "rfm_scores", "segment_of"]

# Name and what it means for the marketer, in the order a segment list is shown. Every
# claim is relative to the store's own customers, as the quintiles are: in a cafe whose
# regulars all came this week, "lost" holds customers with four orders who last came
# nine days ago, and "one or two orders, longest ago" was false of them (a new user's
# review). The description's medians, and the store's beside them, carry the amounts.
SEGMENTS: dict[str, str] = {
    "champions": "among the most recent and most frequent buyers here: reward them, "
    "ask for reviews",
    "loyal": "order more often than most, not long ago: offer loyalty perks and upsell",
    "potential loyalists": "bought more recently than most, with fewer orders than the "
    "loyal: a membership offer can hold them",
    "new": "among the fewest orders here, and among the most recent: welcome them and help "
    "the next order happen",
    "promising": "among the fewest orders here, fairly recently: build familiarity before it fades",
    "need attention": "middling recency, no more orders than most: a limited-time offer can "
    "wake them",
    "at risk": "a middling or high number of orders, but less recently than most: win "
    "them back personally",
    "can't lose": "among the most frequent buyers here, but less recently than most: act "
    "first here",
    "hibernating": "fewer orders than most, and less recently than most: include in broad "
    "campaigns only",
    "lost": "among the fewest orders and the longest since the last one here: low "
    "priority, or re-acquire",
}


def segment_of(r: int, f: int) -> str:
    """The segment of one (R, F) score pair; see the grid in the module docstring."""
    if r >= 4 and f >= 4:
        return "champions" if r == 5 else "loyal"
    if r == 3 and f >= 4:
        return "loyal"
    if r >= 4:
        if f == 1:
            return "new" if r == 5 else "promising"
        return "potential loyalists"
    if r == 3:
        return "need attention"
    if f == 5:
        return "can't lose"
    if f >= 3:
        return "at risk"
    return "hibernating" if r == 2 else "lost"


def _quintile(values: pd.Series) -> pd.Series:
    """1 + floor(5 x share of customers strictly below): ties share, order irrelevant."""
    below = values.rank(method="min").sub(1).div(len(values))
    return (np.floor(below * 5) + 1).clip(1, 5).astype("int64")


def rfm_scores(features: pd.DataFrame) -> pd.DataFrame:
    """``r``, ``f``, ``m`` scores, ``rfm`` ("545") and ``segment`` per customer.

    Takes :func:`storelens.predict.features.customer_features` output (``recency_days``,
    ``orders``, ``monetary``), indexed by customer id; returns the same index, sorted.
    """
    import pandas as pd

    frame = features.sort_index()
    r = _quintile(-frame["recency_days"])
    f = _quintile(frame["orders"])
    m = _quintile(frame["monetary"])
    segment = [segment_of(int(a), int(b)) for a, b in zip(r, f, strict=True)]
    return pd.DataFrame(
        {
            "r": r,
            "f": f,
            "m": m,
            "rfm": r.astype(str) + f.astype(str) + m.astype(str),
            "segment": pd.Series(segment, index=frame.index, dtype="string"),
        },
        index=frame.index,
    )


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """One named segment: its size, its weight in revenue, and a sentence about it."""

    name: str
    customers: int
    revenue_share: float
    median_recency_days: float
    median_orders: float
    median_spend: float
    description: str


def _days(value: float) -> str:
    """``value`` days, rounded as shown: "1 day", not "1 days" for 1.2."""
    shown = round(value)
    return f"{shown} day{'' if shown == 1 else 's'}"


def _orders(value: float) -> str:
    return f"{value:g} order{'' if value == 1 else 's'}"


def _versus(value: float, reference: float) -> str:
    if reference <= 0:
        return "spends like the median customer" if value <= 0 else "spends more than most"
    change = 100.0 * (value - reference) / reference
    if abs(change) < 5:
        return "spends about as much as the median customer"
    side = "above" if change > 0 else "below"
    return f"spends {abs(change):.0f} % {side} the median customer"


def describe_segments(features: pd.DataFrame, scores: pd.DataFrame) -> list[SegmentSummary]:
    """Every non-empty segment, in :data:`SEGMENTS` order, described from its medians."""
    joined = features.join(scores["segment"], how="inner")
    total = float(joined["monetary"].sum())
    overall = float(joined["monetary"].median())
    store = (
        f"store medians {_days(float(joined['recency_days'].median()))} and "
        f"{_orders(float(joined['orders'].median()))}"
    )
    out = []
    for name, meaning in SEGMENTS.items():
        members = joined[joined["segment"] == name]
        if members.empty:
            continue
        recency = float(members["recency_days"].median())
        orders = float(members["orders"].median())
        spend = float(members["monetary"].median())
        share = float(members["monetary"].sum()) / total if total > 0 else 0.0
        text = (
            f"{len(members)} customer{'' if len(members) == 1 else 's'}, {100 * share:.0f} % of "
            f"revenue: last bought a median {_days(recency)} ago, {_orders(orders)} each "
            f"({store}), {_versus(spend, overall)}; {meaning}."
        )
        out.append(
            SegmentSummary(
                name=name,
                customers=len(members),
                revenue_share=share,
                median_recency_days=recency,
                median_orders=orders,
                median_spend=spend,
                description=text,
            )
        )
    return out
