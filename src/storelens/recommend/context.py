"""The request context a list is re-ranked for: time of day, day, season, zone, channel.

A query string carries it as ``key:value`` pairs joined by commas
(``context=daypart:morning,zone:bakery,channel:app``); a JSON body as an object. Both
become one :class:`Context`, and a bad pair is reported by its key
(``query.context.daypart``) so a client knows which field to fix. What the client
leaves out is filled from the clock in the store's time zone.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storelens.core.dayparts import DAYPARTS, Daypart
from storelens.core.dayparts import daypart_of_hour as daypart_of
from storelens.core.errors import FieldError, InvalidInput, field_errors
from storelens.core.kept_by_identity import KeptByIdentity

__all__ = ["DAYPARTS", "Context", "daypart_of", "parse_context", "resolve_context"]

_SEASONS = {12: "winter", 1: "winter", 2: "winter", 3: "spring", 4: "spring", 5: "spring"}
_SEASONS |= {6: "summer", 7: "summer", 8: "summer", 9: "autumn", 10: "autumn", 11: "autumn"}
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"


class Context(BaseModel):
    """Where and when the customer is; unknown keys are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daypart: Daypart | None = None
    dow: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] | None = None
    season: Literal["winter", "spring", "summer", "autumn"] | None = None
    zone: str | None = Field(default=None, pattern=_NAME_PATTERN)
    channel: Literal["in_store", "mobile", "web", "app", "kiosk", "staff"] | None = None
    device: str | None = Field(default=None, pattern=_NAME_PATTERN)
    page: str | None = Field(default=None, pattern=_NAME_PATTERN)


def parse_context(text: str | None, loc: tuple[str, ...] = ("query", "context")) -> Context:
    """``key:value,key:value`` → :class:`Context`; errors name ``loc`` plus the key."""
    if text is None or not text.strip():
        return Context()
    pairs: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InvalidInput(
                f"context part {part!r} is not key:value",
                [FieldError.at([*loc], f"{part!r} is not key:value", "context_pair")],
            )
        if key in pairs:
            raise InvalidInput(
                f"context key {key!r} given twice",
                [FieldError.at([*loc, key], "given twice", "context_duplicate")],
            )
        pairs[key] = value
    try:
        return Context.model_validate(pairs)
    except ValidationError as exc:
        errors = [FieldError.at([*loc, *e.path], e.msg, e.type) for e in field_errors(exc)]
        raise InvalidInput("invalid context", errors) from None


def resolve_context(context: Context, now: datetime, timezone: str) -> Context:
    """Fill daypart, day and season the client left out from ``now`` in the store's zone.

    What is filled depends on the local hour, weekday and month alone, so the filled
    context is kept per (context, hour, weekday, month) instead of a pydantic copy on
    every request. Contexts are frozen, so sharing one is safe. The same context object
    (the recommendation lane keeps one per query text) is found by identity first: a
    pydantic model's hash and equality, which the cache by value needs, cost more than
    the rest of this function."""
    try:
        local = now.astimezone(ZoneInfo(timezone))
    except (KeyError, ValueError):  # a store saved with a zone this machine lacks
        local = now
    when = (local.hour, local.weekday(), local.month)
    held = _BY_IDENTITY.get(context, when)
    if held is not None:
        return held
    return _BY_IDENTITY.keep(context, _filled(context, *when), when)


# Bounded: contexts parsed per request (not kept by the lane) come and go.
_BY_IDENTITY: KeptByIdentity[Context, Context] = KeptByIdentity(1024)


@lru_cache(maxsize=4096)  # clients choose zones and pages: bounded
def _filled(context: Context, hour: int, weekday: int, month: int) -> Context:
    return context.model_copy(
        update={
            "daypart": context.daypart or daypart_of(hour),
            "dow": context.dow or ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday],
            "season": context.season or _SEASONS[month],
        }
    )
