"""The periodic half of socket revocation: an idle socket's person is looked up again
on the app's clock, and the watch ends only when they were revoked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storelens import accounts
from storelens.accounts import Role
from storelens.api.auth_cache import SignedInCache
from storelens.api.socket_revocation import RECHECK_S, Standing, revocation

PASSWORD = "correct horse battery staple"


class StepClock:
    """Each sleep moves time on at once and then runs ``on_sleep`` (the test's doing)."""

    def __init__(self, on_sleep: Callable[[int], None]) -> None:
        self.t = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def now(self) -> datetime:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += timedelta(seconds=seconds)
        self.on_sleep(len(self.sleeps))
        await asyncio.sleep(0)


class Enough(Exception):
    """The test has watched long enough."""


def _standing(engine: Engine, name: str, cache: SignedInCache | None = None) -> Standing:
    with engine.begin() as conn:
        accounts.create_user(conn, name, PASSWORD, Role.staff)
        admitted = accounts.token_version(conn, name)
    return Standing(engine, name, admitted, cache)


def test_an_idle_socket_is_let_go_at_the_first_look_after_revocation(engine: Engine) -> None:
    standing = _standing(engine, "ana")

    def revoke_on_third(n: int) -> None:
        if n == 3:
            with engine.begin() as conn:
                accounts.set_active(conn, "ana", False)

    clock = StepClock(revoke_on_third)
    asyncio.run(revocation(standing, clock))
    assert clock.sleeps == [RECHECK_S] * 3  # two looks found her current, the third not


def test_a_current_person_is_watched_for_as_long_as_the_socket_lives(engine: Engine) -> None:
    standing = _standing(engine, "ben")

    def stop_after_five(n: int) -> None:
        if n > 5:
            raise Enough

    with pytest.raises(Enough):
        asyncio.run(revocation(standing, StepClock(stop_after_five)))
    assert standing.holds()


def test_a_role_change_or_a_new_password_ends_the_standing(engine: Engine) -> None:
    changed, reset = _standing(engine, "cy"), _standing(engine, "di")
    with engine.begin() as conn:
        accounts.set_role(conn, "cy", Role.admin)  # a promotion too: the token is re-issued
        accounts.set_password(conn, "di", "another horse battery staple")
    assert not changed.holds() and not reset.holds()


class CountingSignal:
    def __init__(self) -> None:
        self.value = 1

    def current(self) -> object | None:
        return self.value


def test_an_unchanged_users_signal_spares_the_read_and_a_changed_one_forces_it(
    engine: Engine,
) -> None:
    signal = CountingSignal()
    standing = _standing(engine, "eve", SignedInCache(signal))
    assert standing.holds()  # first look reads the row and remembers the signal
    with engine.begin() as conn:
        accounts.set_active(conn, "eve", False)
    assert standing.holds()  # the signal claims nothing changed: no read
    signal.value = 2
    assert not standing.holds()


def test_api_keys_are_never_revoked_mid_socket() -> None:
    clock = StepClock(lambda n: None)

    async def watch() -> bool:
        task = asyncio.create_task(revocation(None, clock))
        for _ in range(100):
            await asyncio.sleep(0)
        done = task.done()
        task.cancel()
        return done

    assert asyncio.run(watch()) is False and clock.sleeps == []
