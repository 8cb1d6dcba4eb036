"""The filled-in context is kept per (context, local hour, weekday, month): each of those
must still change what is filled, in the store's own time zone, and what clients send
cannot grow the kept set without bound."""

from __future__ import annotations

from datetime import UTC, datetime

from storelens.recommend import context as ctx_module
from storelens.recommend.context import Context, parse_context, resolve_context


def test_each_part_of_the_clock_still_changes_the_context() -> None:
    plain = Context()
    morning = resolve_context(plain, datetime(2026, 3, 9, 7, 30, tzinfo=UTC), "UTC")
    assert (morning.daypart, morning.dow, morning.season) == ("morning", "mon", "spring")
    again = resolve_context(plain, datetime(2026, 3, 9, 7, 59, tzinfo=UTC), "UTC")
    assert again is morning  # the same hour: kept, not copied again
    evening = resolve_context(plain, datetime(2026, 3, 9, 19, 0, tzinfo=UTC), "UTC")
    assert evening.daypart == "evening" and evening.dow == "mon"
    tuesday = resolve_context(plain, datetime(2026, 3, 10, 7, 30, tzinfo=UTC), "UTC")
    assert tuesday.dow == "tue" and tuesday.daypart == "morning"
    june = resolve_context(plain, datetime(2026, 6, 8, 7, 30, tzinfo=UTC), "UTC")
    assert june.season == "summer" and june.dow == "mon"


def test_the_store_zone_decides_not_the_servers() -> None:
    """07:30 UTC is 16:30 in Tokyo and 02:30 in New York (still Monday in both here)."""
    at = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    tokyo = resolve_context(Context(), at, "Asia/Tokyo")
    new_york = resolve_context(Context(), at, "America/New_York")
    assert tokyo.daypart != new_york.daypart
    assert resolve_context(Context(), at, "UTC").daypart == "morning"
    assert (tokyo.dow, new_york.dow) == ("mon", "mon")


def test_what_the_client_said_is_kept_over_the_clock() -> None:
    asked = parse_context("daypart:evening,zone:bakery")
    got = resolve_context(asked, datetime(2026, 3, 9, 7, 30, tzinfo=UTC), "UTC")
    assert (got.daypart, got.zone, got.dow) == ("evening", "bakery", "mon")
    plain = resolve_context(Context(), datetime(2026, 3, 9, 7, 30, tzinfo=UTC), "UTC")
    assert plain.zone is None and plain.daypart == "morning"


def test_the_kept_contexts_are_bounded() -> None:
    at = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    kept = ctx_module._filled.cache_info().maxsize
    assert kept is not None
    for i in range(kept + 10):
        resolve_context(parse_context(f"zone:z{i}"), at, "UTC")
    assert ctx_module._filled.cache_info().currsize <= kept
    assert resolve_context(parse_context("zone:z1"), at, "UTC").zone == "z1"
    assert len(ctx_module._BY_IDENTITY) <= 1024


def test_a_context_equal_to_a_kept_one_but_another_object_is_resolved_on_its_own() -> None:
    """Found by identity first: a new object at a dead one's address (CPython reuses
    them) must not get the dead one's filled context. The kept pair holds its context,
    so while kept its address cannot be reused; an equal context is found by value."""
    at = datetime(2026, 3, 9, 7, 30, tzinfo=UTC)
    first = parse_context("zone:bakery")
    kept = resolve_context(first, at, "UTC")
    assert resolve_context(first, at, "UTC") is kept
    other = parse_context("zone:till")
    got = resolve_context(other, at, "UTC")
    assert got.zone == "till" and got is not kept
    equal = parse_context("zone:bakery")
    assert equal is not first and resolve_context(equal, at, "UTC") == kept
