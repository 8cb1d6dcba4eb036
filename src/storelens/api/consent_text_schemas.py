"""Request and response bodies of the consent-text routes (``/v1/faces/consent-texts``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from storelens.recognition.consent_texts import MAX_BODY_CHARS, MIN_BODY_CHARS

__all__ = ["ConsentTextCreate", "ConsentTextList", "ConsentTextPublic"]


class ConsentTextCreate(BaseModel):
    """A text to publish: once published, its words never change."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=40, examples=["2026-12"])
    # Twice the limit here: line ends and accents are normalised first, and the limit
    # applies to the text as stored (a CRLF file the CLI took was a 422 here; a review).
    body: str = Field(
        min_length=1,
        max_length=2 * MAX_BODY_CHARS,
        description=f"the words, as shown: {MIN_BODY_CHARS} to {MAX_BODY_CHARS:,} characters "
        "once line ends are normalised",
    )


class ConsentTextPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: str
    body: str
    sha256: str = Field(description="SHA-256 of the body, as UTF-8")
    published_at: datetime
    published_by: str | None = Field(description="admins only; null for others")
    retired_at: datetime | None
    retired_by: str | None = Field(description="admins only; null for others")
    in_force: bool
    replaced: list[str] = Field(
        default_factory=list, description="in a publish's answer: the text(s) it retired"
    )


class ConsentTextList(BaseModel):
    """``current`` is the newest text in force, the one the staff app shows the member;
    None until an admin publishes one (enrollment is refused until then)."""

    current: ConsentTextPublic | None
    items: list[ConsentTextPublic]
