"""The one retry module: capped, overflow-safe, jittered backoff and one Retry-After parser."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest

from storelens.core.retry import (
    Backoff,
    ManualClock,
    SystemClock,
    backoff_ceiling,
    parse_retry_after,
)


class UpperBound(random.Random):
    """Makes jitter pick the top of its range, so sequences can be checked exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


class LowerBound(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return a


def test_ceiling_doubles_then_stays_at_the_cap() -> None:
    assert [backoff_ceiling(n, 0.5, 2.0, 30.0) for n in range(9)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        30.0,
        30.0,
        30.0,
    ]
    assert backoff_ceiling(7, 1.0, 1.0, 30.0) == 1.0  # factor 1: a constant wait


@pytest.mark.parametrize("attempt", [1023, 1024, 1025, 5_000, 10**9, 10**400])
def test_ceiling_never_overflows(attempt: int) -> None:
    assert backoff_ceiling(attempt, 0.5, 2.0, 30.0) == 30.0
    assert backoff_ceiling(attempt, 0.5, 1.5, 30.0) == 30.0


def test_ceiling_of_a_tiny_initial_with_a_huge_cap() -> None:
    # 2.0 ** 1500 alone overflows a float; the ceiling itself does not
    assert backoff_ceiling(1500, 1e-300, 2.0, 1e300) == pytest.approx(1e-300 * 2.0**750 * 2.0**750)
    assert backoff_ceiling(5_000, 1e-300, 2.0, 1e300) == 1e300


def test_backoff_at_attempt_5000_and_10_to_the_9() -> None:
    backoff = Backoff(0.5, 30.0, jitter="none")
    for _ in range(5_000):
        assert 0.5 <= backoff.next() <= 30.0
    assert backoff.attempt == 5_000
    assert backoff.next() == 30.0
    backoff.attempt = 10**9
    assert backoff.next() == 30.0
    assert backoff.attempt == 10**9 + 1
    backoff.reset()
    assert backoff.next() == 0.5


def test_full_and_equal_jitter_bounds() -> None:
    assert [Backoff(jitter="full", rng=LowerBound()).next() for _ in range(3)] == [0.0] * 3
    full = Backoff(0.5, 30.0, jitter="full", rng=UpperBound())
    assert [full.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    equal = Backoff(0.5, 30.0, jitter="equal", rng=LowerBound())
    assert [equal.next() for _ in range(8)] == [0.25, 0.5, 1, 2, 4, 8, 15, 15]
    seeded = Backoff(jitter="full", rng=random.Random(7))
    delays = [seeded.next() for _ in range(200)]
    assert all(0 <= d <= 30 for d in delays)
    assert len(set(delays)) == len(delays)  # jittered, not a fixed schedule


def test_retry_after_replaces_the_wait_but_the_attempt_still_counts() -> None:
    backoff = Backoff(0.5, 30.0, jitter="none", max_retry_after=60.0)
    assert backoff.next() == 0.5
    assert backoff.next(retry_after=7.0) == 7.0
    assert backoff.next() == 2.0
    assert backoff.next(retry_after=3600.0) == 60.0  # a server cannot park us for an hour
    assert backoff.next(retry_after=float("nan")) == 8.0  # not a number: our own wait


@pytest.mark.parametrize(
    ("initial", "cap", "factor"),
    [(0, 30, 2), (-1, 30, 2), (5, 1, 2), (0.5, 30, 0.5), (0.5, float("inf"), 2)],
)
def test_backoff_refuses_nonsense(initial: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(initial, cap, factor=factor)


NOW = datetime(2026, 11, 2, 9, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Mon, 02 Nov 2026 09:01:30 GMT", 90.0),
        ("Mon, 02 Nov 2026 08:00:00 GMT", 0.0),  # already past: go now
        ("Monday, 02-Nov-26 09:00:10 GMT", 10.0),  # RFC 850, still allowed to be sent
        (None, None),
        ("", None),
        ("-5", None),
        ("nan", None),
        ("inf", None),
        ("1e9", None),
        ("12 seconds", None),
        ("soon", None),
        ("Mon, 99 Foo 2026 25:00:00 GMT", None),
        ("9" * 400, None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_manual_clock_moves_only_when_told_and_records_sleeps() -> None:
    clock = ManualClock(100.0)
    assert clock.now() == 100.0
    stop = threading.Event()
    assert clock.sleep(2.5, stop) is False
    clock.advance(0.5)
    assert clock.now() == 103.0
    stop.set()
    assert clock.sleep(1.0, stop) is True
    assert clock.sleeps == [2.5, 1.0]


def test_system_clock_sleep_wakes_on_stop() -> None:
    stop = threading.Event()
    stop.set()
    assert SystemClock().sleep(3600.0, stop) is True
    assert SystemClock().sleep(0.0) is False
