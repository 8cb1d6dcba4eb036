"""API shapes of predictive analytics: a customer's scores, segments and their members."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CustomerPrediction",
    "CustomersOverview",
    "SegmentMember",
    "SegmentMembers",
    "SegmentMembership",
    "SegmentPublic",
]


class SegmentMembership(BaseModel):
    id: str
    name: str
    kind: str = Field(description="rfm or cluster")
    description: str


class CustomerPrediction(BaseModel):
    """The latest scoring run's numbers for one customer (absent without analytics consent)."""

    as_of: datetime
    model_version: str
    clv: float | None = Field(description="discounted expected revenue over the CLV horizon")
    expected_purchases: float | None = Field(description="expected purchases in the churn window")
    p_alive: float | None = Field(
        description="the purchase model's probability the customer is still active; BG/NBD "
        "and the honeymoon model give exactly 1 to a customer with no repeat purchase day "
        "(they cannot see a one-time buyer leave): read churn_risk for them"
    )
    churn_risk: float | None = Field(description="P(no purchase in the churn window), calibrated")
    rfm: str
    segments: list[SegmentMembership]


class SegmentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    name: str
    description: str
    customers: int
    revenue_share: float | None = Field(
        description="of the scored customers' revenue; null when withdrawn after a member left"
    )
    revenue_trend_pct: float | None
    as_of: datetime
    model_version: str


class SegmentMember(BaseModel):
    customer_id: str
    clv: float | None
    churn_risk: float | None
    p_alive: float | None
    rfm: str | None
    orders: int | None = Field(default=None, description="orders before the run's as-of")


class SegmentMembers(BaseModel):
    """One page of a segment's members; pass ``next_cursor`` as ``cursor`` for the next."""

    data: list[SegmentMember]
    next_cursor: str | None


class CustomersOverview(BaseModel):
    """What the dashboard's Customers page draws."""

    segments: list[dict[str, object]]
    clv: dict[str, object]
