"""The periodic half of socket revocation: an idle socket's person or API key is looked
up again on the app's clock, and the watch ends only when it was revoked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, Engine, delete, update
from tests.waiting import until

from storelens import accounts, stores
from storelens.accounts import Role
from storelens.api.auth_cache import SignedInCache, users_signal
from storelens.api.socket_revocation import (
    MAX_TRUST_S,
    RECHECK_S,
    KeyStanding,
    Standing,
    revocation,
)
from storelens.storage.tables import api_keys

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


@pytest.fixture
def cafe(engine: Engine) -> None:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")


def _grant(engine: Engine, name: str) -> tuple[str, object]:
    """A staff-role key for cafe-01: its prefix and what a socket opened with it holds."""
    with engine.begin() as conn:
        key, _ = accounts.create_api_key(conn, name, role=Role.staff, store_id="cafe-01")
        admitted = accounts.key_grant(conn, key.prefix)
    assert admitted is not None
    return key.prefix, admitted


def _key(engine: Engine, name: str) -> KeyStanding:
    return KeyStanding(engine, *_grant(engine, name))


def _key_id(conn: Connection, name: str) -> int:
    found = conn.execute(api_keys.select().where(api_keys.c.name == name)).one()
    return int(found.id)


def test_an_idle_key_socket_is_let_go_at_the_first_look_after_its_key_is_revoked(
    engine: Engine, cafe: None
) -> None:
    standing = _key(engine, "hub-1")

    def revoke_on_third(n: int) -> None:
        if n == 3:
            with engine.begin() as conn:
                accounts.revoke_api_key(conn, _key_id(conn, "hub-1"))

    clock = StepClock(revoke_on_third)
    asyncio.run(revocation(standing, clock))
    assert clock.sleeps == [RECHECK_S] * 3  # two looks found the key live, the third not


def test_another_keys_revocation_leaves_the_socket_watched(engine: Engine, cafe: None) -> None:
    standing, _ = _key(engine, "hub-2"), _key(engine, "till-2")

    def revoke_the_other_then_stop(n: int) -> None:
        if n == 2:
            with engine.begin() as conn:
                accounts.revoke_api_key(conn, _key_id(conn, "till-2"))
        if n > 5:
            raise Enough

    with pytest.raises(Enough):
        asyncio.run(revocation(standing, StepClock(revoke_the_other_then_stop)))
    assert standing.holds()


@pytest.mark.parametrize("change", ["deleted", "store changed", "role changed", "types changed"])
def test_a_deleted_or_rescoped_key_ends_the_standing(
    engine: Engine, change: str, cafe: None
) -> None:
    """No route edits a key, but an operator's SQL (or a store deleted, which cascades)
    may: the socket keeps only what it was admitted under."""
    standing = _key(engine, "hub-3")
    values: dict[str, dict[str, object]] = {
        "store changed": {"store_id": None},
        "role changed": {"role": Role.admin.value},
        "types changed": {"event_types": ["pos.order_paid"]},
    }
    with engine.begin() as conn:
        hub = api_keys.c.name == "hub-3"
        if change == "deleted":
            conn.execute(delete(api_keys).where(hub))
        else:
            conn.execute(update(api_keys).where(hub).values(**values[change]))
    assert not standing.holds()


def test_a_key_used_meanwhile_still_holds(engine: Engine, cafe: None) -> None:
    """``last_used_at`` moves as the key posts events; that is not a revocation."""
    standing = _key(engine, "hub-4")
    with engine.begin() as conn:
        conn.execute(update(api_keys).values(last_used_at=datetime(2027, 1, 1, tzinfo=UTC)))
    assert standing.holds()


def test_a_key_admitted_without_a_prefix_or_a_live_row_never_holds(engine: Engine) -> None:
    assert not KeyStanding(engine, None, (1, Role.staff, None, frozenset())).holds()
    assert not KeyStanding(engine, "deadbeef", None).holds()


class CountingKeyStanding(KeyStanding):
    reads = 0

    def _read(self, conn: Connection) -> object | None:
        self.reads += 1
        return super()._read(conn)


def test_the_databases_own_signal_sees_a_key_revoked_by_another_connection(
    engine: Engine, cafe: None
) -> None:
    """The real signal (SQLite's ``data_version``, PostgreSQL's notifications from the
    api_keys trigger): an unchanged one spares the read, and revoking the key through
    another connection changes it, so the next look reads the row and lets the socket
    go. On PostgreSQL the notification comes milliseconds after the commit: waited for."""
    cache = SignedInCache(users_signal(engine, postgres=True))
    assert cache.enabled  # so this checks the signal rather than reading every time
    standing = CountingKeyStanding(engine, *_grant(engine, "hub-5"), cache)
    try:
        until(lambda: cache.mark() is not None, "the users signal is readable")
        assert standing.holds() and standing.holds() and standing.holds()
        assert standing.reads == 1
        before = cache.mark()
        with engine.begin() as conn:
            accounts.revoke_api_key(conn, _key_id(conn, "hub-5"))
        until(lambda: cache.mark() not in (before, None), "the revocation was heard")
        assert not standing.holds()
        assert standing.reads == 2
    finally:
        cache.close()


def test_an_unchanged_signal_spares_the_read_for_thirty_seconds_only(
    engine: Engine, cafe: None
) -> None:
    """News a signal missed (a trigger off for a moment, a silently dead listener) must
    not keep a revoked key's socket open for good: like HTTP's cache, a socket trusts an
    unchanged signal for MAX_TRUST_S, then reads the row (an attacker review)."""

    class Still:
        def current(self) -> object | None:
            return 1

        def close(self) -> None: ...

    now = [0.0]
    standing = CountingKeyStanding(engine, *_grant(engine, "hub-6"), SignedInCache(Still()))
    standing._monotonic = lambda: now[0]
    assert standing.holds() and standing.holds()
    assert standing.reads == 1
    with engine.begin() as conn:  # unheard: the signal stands still
        accounts.revoke_api_key(conn, _key_id(conn, "hub-6"))
    now[0] += MAX_TRUST_S - 1
    assert standing.holds()  # within the limit the signal is trusted
    now[0] += 2
    assert not standing.holds()
    assert standing.reads == 2
