"""Request and response bodies of the API, kept apart from the tables they come from."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from storelens.accounts import Role
from storelens.api.predict_schemas import CustomerPrediction
from storelens.catalogue import ProductRecord

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyPublic",
    "AuditPublic",
    "ConsentPublic",
    "CustomerProfile",
    "CustomerRecordPublic",
    "EventPublic",
    "FieldErrorPublic",
    "GoldenValuePublic",
    "IdentityChangePublic",
    "ImportReport",
    "IngestResult",
    "ListOf",
    "OrderPublic",
    "ProductPublic",
    "RejectedPublic",
    "StoreCreate",
    "StorePublic",
    "StoreUpdate",
    "TimeZoneName",
    "Token",
    "UnmergeRequest",
    "UnmergeResult",
    "UserCreate",
    "UserPublic",
]

T = TypeVar("T")


class ListOf(BaseModel, Generic[T]):
    """Every list response: the page of items and the total count that matched."""

    data: list[T]
    count: int


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105  # the OAuth2 token type, not a secret
    expires_in: int
    role: Role


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    password: str = Field(min_length=12, max_length=256)
    role: Role


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None


class ApiKeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    store_id: str | None = Field(default=None, description="limit the key to events of this store")


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    role: Role
    store_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the secret; shown once, store it now")


class FieldErrorPublic(BaseModel):
    loc: str
    msg: str
    type: str


class RejectedPublic(BaseModel):
    index: int
    id: str | None
    errors: list[FieldErrorPublic]


class IngestResult(BaseModel):
    accepted: int
    duplicates: int = Field(description="the same event (same id, same content) was stored before")
    rejected: int = Field(description="not stored: each is listed in errors, up to 1,000")
    conflicts: int = Field(
        description="how many of the rejected reuse an id that names a different event "
        "(error type id_conflict): send those again under a new id"
    )
    errors: list[RejectedPublic]


class EventPublic(BaseModel):
    seq: int
    id: str
    type: str
    ts: datetime
    store_id: str | None
    source: str
    subject: str | None
    payload: dict[str, Any]
    sent_by: str | None = Field(
        description="who handed the event in: key:{prefix}, a user's name, "
        "mqtt:{store}/{source} or cli:{login}; null where not recorded"
    )


def _real_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Berlin' or 'UTC'"
        ) from None
    return name


TimeZoneName = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_real_zone)]
"""An IANA zone: a store's figures by hour and daypart are computed in it."""


class StoreCreate(BaseModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=200)
    timezone: TimeZoneName = "UTC"
    kind: str = Field(default="other", min_length=1, max_length=64)


class StoreUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: TimeZoneName | None = None
    kind: str | None = Field(default=None, min_length=1, max_length=64)


class StorePublic(BaseModel):
    id: str
    name: str
    timezone: str
    kind: str
    created_at: datetime
    layout_version: int | None = None


class ProductPublic(ProductRecord):
    model_config = ConfigDict(extra="ignore")
    updated_at: datetime


class ImportReport(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    conflicts: int = Field(
        default=0, description="how many of the rejected hit an id holding a different event"
    )
    errors: list[RejectedPublic]


class CustomerRecordPublic(BaseModel):
    source_system: str
    source_record_id: str
    customer_id: str | None
    first_name: str | None
    last_name: str | None
    email: str | None
    phone: str | None
    address: str | None
    postcode: str | None
    city: str | None
    country: str | None
    dob: date | None
    loyalty_id: str | None
    greeting_name: str | None = None
    updated_at: datetime


class OrderPublic(BaseModel):
    store_id: str
    order_id: str
    ts: datetime
    channel: str
    total: float
    currency: str
    lines: list[dict[str, Any]]


class ConsentPublic(BaseModel):
    purpose: str
    granted: bool
    ts: datetime
    channel: str


class GoldenValuePublic(BaseModel):
    value: Any
    source_system: str
    source_record_id: str
    updated_at: datetime
    rule: str
    agreeing: int
    conflicting: int


class IdentityChangePublic(BaseModel):
    kind: str
    customer_id: str
    others: list[str]
    records: list[str]
    evidence: list[dict[str, Any]]
    actor: str | None
    at: datetime


class CustomerProfile(BaseModel):
    """The unified profile; ``customer_id`` is current even when a retired id was asked for."""

    customer_id: str
    requested_id: str
    golden: dict[str, GoldenValuePublic]
    records: list[CustomerRecordPublic]
    orders: list[OrderPublic]
    baskets: list[dict[str, Any]]
    consent: list[ConsentPublic]
    total_spent: float
    order_count: int
    engagement: dict[str, Any]
    preferences: dict[str, Any]
    web: dict[str, Any]
    visits: dict[str, Any]
    confidence: dict[str, Any]
    identity_history: list[IdentityChangePublic]
    known_ids: list[str]
    as_of: datetime | None = Field(description="time of the newest record, order or web event")
    computed_at: datetime
    predictions: CustomerPrediction | None = Field(
        default=None,
        description="CLV, P(alive), churn risk and segments from the latest scoring run; "
        "absent until scored, and never without analytics consent",
    )
    predictions_missing: str | None = Field(
        default=None,
        description="why predictions is null: no analytics consent, no scoring run yet, or "
        "not in the latest run",
    )


class UnmergeRequest(BaseModel):
    records: list[str] = Field(
        min_length=1, max_length=500, description="records to split off, as source:record"
    )
    reason: str | None = Field(default=None, max_length=400)


class UnmergeResult(BaseModel):
    customer_id: str = Field(description="the id the records left behind have now")
    new_customer_id: str = Field(description="the id of the records split off")
    records: list[str]
    aliases: list[str] = Field(
        default_factory=list, description="retired ids that now name the records split off"
    )


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    ts: datetime
    actor: str
    actor_kind: str
    role: str | None
    action: str
    resource: str
    resource_id: str | None
    detail: dict[str, Any] | None
    ip: str | None
