"""Waiting for news that arrives on another thread or process (a listener, a broker).

Fails the test only if the news never comes: the deadline is for a loaded CI machine,
where it takes milliseconds, so no test measures time with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

__all__ = ["DEADLINE_S", "until"]

DEADLINE_S = 20.0


def until(
    done: Callable[[], bool], what: str = "the news arrived", deadline_s: float = DEADLINE_S
) -> None:
    end = time.monotonic() + deadline_s
    while not done():
        if time.monotonic() > end:
            pytest.fail(f"never: {what}")
        time.sleep(0.01)
