"""Request and response bodies of staff notices and the claimer's customer view."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ClaimerView",
    "ItemPublic",
    "NoticeCreate",
    "NoticeDecline",
    "NoticeFaceEnrollment",
    "NoticeFaceWithdrawal",
    "NoticeOutcome",
    "NoticePublic",
    "PurchasePublic",
    "SegmentPublic",
    "SuggestionPublic",
    "VisitPublic",
]

Ident = Field(min_length=1, max_length=128, pattern=r"^[^\s]+$")


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    store_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\s]+$")
    customer_id: str = Ident
    trigger: Literal["recognition", "loyalty_scan", "app_checkin"]


class NoticePublic(BaseModel):
    """A notice as its raiser and claimer see it. No customer id, for anyone: staff
    devices never receive one (the claimer sees a greeting name, not an identifier),
    and a raiser that sent an alias must not learn the canonical id behind it."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    store_id: str
    trigger: str
    state: Literal["open", "claimed", "closed", "expired"]
    raised_at: datetime
    expires_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None
    releases: int
    outcome: str | None
    created: bool = Field(
        True, description="false when this member already had an open or claimed notice here"
    )


class NoticeOutcome(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["served", "purchase", "declined"]


class NoticeDecline(BaseModel):
    """A declined item, as the claimer is told: the notice, never the customer's id."""

    notice_id: str
    product_id: str


class NoticeFaceEnrollment(BaseModel):
    """The claimer's enrollment of the member in front of them, as the claimer is told:
    the notice and the consent's terms, never the customer's id. Matches no one until an
    admin approves it (``approved_at`` null until then)."""

    notice_id: str
    consent_id: int
    purpose: str
    text_version: str
    stores: list[str] | None  # None: every store
    granted_at: datetime
    photos: int
    approved_at: datetime | None


class NoticeFaceWithdrawal(BaseModel):
    notice_id: str
    embeddings_deleted: int
    withdrawn_at: datetime


class VisitPublic(BaseModel):
    date: str
    at: datetime
    store_id: str
    store_name: str
    orders: int
    spent: float
    currency: str


class ItemPublic(BaseModel):
    product_id: str
    name: str
    qty: int


class PurchasePublic(BaseModel):
    order_id: str
    ts: datetime
    store_id: str
    total: float
    currency: str
    items: list[ItemPublic]


class SuggestionPublic(BaseModel):
    product_id: str
    name: str
    reason: str = Field(description="why, in words a salesperson can say")
    score: float
    source: str = Field(
        description="repeat, copurchase, popularity (the engine's sources) or usual, "
        "complement (from purchase history when the engine has nothing personal)"
    )


class SegmentPublic(BaseModel):
    id: str
    kind: str = Field(description="rfm or cluster")
    name: str
    description: str | None


class ClaimerView(BaseModel):
    """What the claimer sees while their claim is open; every read is audited. No
    customer id: a staff device needs a name to greet, not an identifier to keep."""

    notice_id: str
    greeting_name: str | None = Field(description="the name the customer chose to be greeted by")
    greeting_source: Literal["chosen", "first_name"] | None
    segment: str | None = Field(description="the customer's segment, when one is stored")
    segment_description: str | None = Field(
        None, description="what the segment means, as the last scoring run described it"
    )
    segments: list[SegmentPublic] = Field(
        default_factory=list, description="every stored segment: RFM first, then the cluster"
    )
    orders_total: int
    last_visits: list[VisitPublic]
    purchases: list[PurchasePublic]
    suggestions: list[SuggestionPublic]
