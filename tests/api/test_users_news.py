"""PostgreSQL's users signal: the triggers' notifications, counted by a listener.

The real PostgreSQL throughout. The signal must move on any change to ``users`` or
``api_keys`` made by anyone, and read as unknown (nothing remembered) whenever the
listener could have missed one: not yet listening, its connection lost, a trigger
disabled.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, make_url, text
from tests.waiting import until

from storelens import accounts
from storelens.accounts import Role
from storelens.api.users_news import PostgresUsersNews, UsersNews
from storelens.storage.db import create_engine

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(pg_database: str) -> Iterator[tuple[Engine, str]]:
    engine = create_engine(pg_database)
    yield (
        engine,
        make_url(pg_database).set(drivername="postgresql").render_as_string(hide_password=False),
    )
    engine.dispose()


@pytest.fixture
def news(pg: tuple[Engine, str]) -> Iterator[PostgresUsersNews]:
    listener = PostgresUsersNews(pg[1], check_s=0.2)
    first = listener.current()  # starts listening on first use: unknown until then
    # Its thread may have its LISTEN in place before this call returns (CI saw it once):
    # then the first count, with nothing heard yet.
    assert first is None or first == (1, 0), first
    until(lambda: listener.current() is not None, "listening")
    yield listener
    listener.close()


def _moved(listener: PostgresUsersNews, before: object) -> Callable[[], bool]:
    return lambda: listener.current() not in (before, None)


def test_any_change_to_users_or_api_keys_moves_the_signal(
    pg: tuple[Engine, str], news: PostgresUsersNews
) -> None:
    engine, _ = pg
    name = f"u{uuid.uuid4().hex[:10]}"
    steps: list[tuple[str, Callable[[], object]]] = [
        ("create", lambda: accounts.create_user(conn, name, "a long passphrase", Role.staff)),
        ("raw update", lambda: conn.execute(text("UPDATE users SET role = 'analyst'"
                                                 " WHERE username = :n"), {"n": name})),
        ("key", lambda: accounts.create_api_key(conn, f"k-{name}")),
        ("raw key update", lambda: conn.execute(text("UPDATE api_keys SET name = name"))),
        ("delete", lambda: accounts.delete_user(conn, name)),
    ]  # fmt: skip
    for what, step in steps:
        before = news.current()
        with engine.begin() as conn:
            step()
        until(_moved(news, before), what)
    before = news.current()
    with engine.begin() as conn:  # another table: nothing to hear
        conn.execute(text("SELECT count(*) FROM stores"))
    time.sleep(0.3)
    assert news.current() == before


def test_a_lost_connection_reads_unknown_and_nothing_from_before_matches_after(
    pg: tuple[Engine, str], news: PostgresUsersNews
) -> None:
    """Notifications sent while the listener was away are lost: a mark taken before must
    never equal one taken after it listens again."""
    engine, _ = pg
    before, pid = news.current(), news.backend_pid
    assert pid is not None
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    until(lambda: news.current() is None or news.backend_pid != pid, "the loss was noticed")
    until(lambda: news.current() is not None, "listening again")
    assert news.backend_pid != pid
    after = news.current()
    assert isinstance(before, tuple) and isinstance(after, tuple)
    assert after[0] > before[0]  # a new count, whatever the counts are


def test_a_disabled_trigger_reads_unknown(pg: tuple[Engine, str], news: PostgresUsersNews) -> None:
    """Without the trigger a change would go unheard: nothing may be remembered then."""
    engine, _ = pg
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE api_keys DISABLE TRIGGER api_keys_changed"))
    try:
        until(lambda: news.current() is None, "unknown while a trigger is disabled")
        time.sleep(0.5)
        assert news.current() is None
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE api_keys ENABLE ALWAYS TRIGGER api_keys_changed"))
    until(lambda: news.current() is not None, "listening again")


def test_one_listener_per_database_in_a_process(pg: tuple[Engine, str]) -> None:
    """Every app of a process holds the same listener; it goes with the last of them."""
    own = f"{pg[1]}?application_name=storelens-test-{uuid.uuid4().hex[:8]}"  # no other app's
    one, two = UsersNews(own), UsersNews(own)
    assert one.listener is two.listener
    until(lambda: one.current() is not None, "listening")
    assert one.current() == two.current()
    one.close()
    one.close()  # once only: the other app's hold stays
    assert two.current() is not None
    listener = two.listener
    del two  # an app dropped without closing lets go too
    assert listener.current() is None
    three = UsersNews(own)
    assert three.listener is not listener
    three.close()


def test_writes_unheard_while_a_trigger_was_off_start_a_new_count(
    pg: tuple[Engine, str], news: PostgresUsersNews
) -> None:
    """Disable, write, enable again within one check (``pg_restore --disable-triggers``
    does it per table): the write sent nothing, so the check's view of the triggers
    having changed must end the count (an attacker review)."""
    engine, _ = pg
    before = news.current()
    assert isinstance(before, tuple)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE users DISABLE TRIGGER users_changed"))
        conn.execute(text("UPDATE users SET active = active"))
        conn.execute(text("ALTER TABLE users ENABLE ALWAYS TRIGGER users_changed"))
    until(lambda: (now := news.current()) is not None and now[0] > before[0], "a new count")  # type: ignore[index]


def test_replica_role_writes_are_heard_and_probes_are_not_news(
    pg: tuple[Engine, str], news: PostgresUsersNews
) -> None:
    """Logical replication and ``pg_restore`` write in the replica role, where ordinary
    triggers do not fire: ours fire ALWAYS. The listener's own probe notifications (one
    per check) never move the count."""
    engine, _ = pg
    before = news.current()
    time.sleep(1.0)  # five checks, five probes, no writes
    assert news.current() == before
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        conn.execute(text("UPDATE api_keys SET name = name"))
    until(_moved(news, before), "the replica-role write was heard")


def test_an_only_replica_trigger_reads_unknown(
    pg: tuple[Engine, str], news: PostgresUsersNews
) -> None:
    engine, _ = pg
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE users ENABLE REPLICA TRIGGER users_changed"))
    try:
        until(lambda: news.current() is None, "unknown while the trigger fires in replicas only")
    finally:
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE users ENABLE ALWAYS TRIGGER users_changed"))
    until(lambda: news.current() is not None, "listening again")
