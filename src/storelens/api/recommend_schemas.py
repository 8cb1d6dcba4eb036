"""Bodies of the recommendation routes: a ranked list with its evidence, and the batch."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from storelens.recommend.context import Context

__all__ = [
    "DeclineIn",
    "DeclinePublic",
    "PersonalizeBatch",
    "PersonalizeRequest",
    "RecommendationPublic",
    "RecommendationsPublic",
    "StockIn",
    "StockSaved",
]


class RecommendationPublic(BaseModel):
    product_id: str
    name: str | None
    score: float = Field(
        description="what the list is ordered by, x context bonus: the learned blend's "
        "score for items it scored for this customer (listed first), else the confidence"
    )
    confidence: float = Field(description="estimated probability the item is in the next basket")
    explanation: str
    source: str = Field(description="repeat | copurchase | popularity")
    evidence: dict[str, Any] = Field(description="the counts the explanation cites")


class RecommendationsPublic(BaseModel):
    customer_id: str
    store_id: str
    personalized: bool
    reason: str | None = Field(description="why the list is not personal, when it is not")
    context: Context
    degraded: bool = Field(description="computed from the database: the candidate cache was down")
    data: list[RecommendationPublic]
    count: int


class PersonalizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: str = Field(min_length=1, max_length=128, pattern=r"^\S+$")
    store: str = Field(min_length=1, max_length=64)
    # strict: a JSON true or "7" was read as a number without a word (a review)
    k: int = Field(default=10, ge=1, le=500, strict=True)
    context: Context = Context()


class PersonalizeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests: list[PersonalizeRequest] = Field(min_length=1, max_length=100)


ProductId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^\S+$")]
"""A product id as the tables hold it (128 characters): a longer key was a 500 on
PostgreSQL and stored as sent on SQLite (a review found both)."""


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: ProductId


class DeclinePublic(BaseModel):
    customer_id: str
    product_id: str


class StockIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: dict[ProductId, bool] = Field(
        min_length=1, max_length=10_000, description="product id → available in this store"
    )


class StockSaved(BaseModel):
    store_id: str
    updated: int
