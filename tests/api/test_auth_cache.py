"""Remembered sign-ins: a warm request reads no user row, and revocation stays immediate.

Two app instances on one database stand in for two workers (or a worker and the
``storelens users`` command): whatever one changes, the other's very next request sees.
On PostgreSQL "next" means once the change's notification has reached the listener
(milliseconds after the commit): those tests wait for it, and fail if it never comes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, update
from tests.waiting import until

from storelens import accounts
from storelens.accounts import Role
from storelens.api.app import create_app
from storelens.api.auth_cache import SignedIn, SignedInCache, SqliteDataVersion, users_signal
from storelens.api.users_news import UsersNews
from storelens.config import Settings
from storelens.storage.db import create_engine
from storelens.storage.tables import users

PASSWORD = "correct horse battery staple"
EXP = datetime(2030, 1, 1, tzinfo=UTC)


class FakeSignal:
    def __init__(self) -> None:
        self.value: object | None = 1

    def current(self) -> object | None:
        return self.value


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _signed_in(name: str = "ana") -> SignedIn:
    return SignedIn(name, Role.staff, EXP, EXP.timestamp())


def test_a_remembered_sign_in_is_reused_until_the_signal_changes() -> None:
    signal = FakeSignal()
    cache = SignedInCache(signal)
    cache.put("tok", _signed_in(), cache.mark())
    assert cache.get("tok") == _signed_in()
    assert cache.get("other") is None
    signal.value = 2
    assert cache.get("tok") is None
    assert len(cache) == 0  # dropped, not kept for a signal that might come back


def test_an_unreadable_signal_never_matches() -> None:
    signal = FakeSignal()
    cache = SignedInCache(signal)
    cache.put("tok", _signed_in(), cache.mark())
    signal.value = None
    assert cache.get("tok") is None
    cache.put("tok", _signed_in(), None)  # marked while unreadable: not remembered
    signal.value = 1
    assert cache.get("tok") is None


def test_expiry_and_the_backstop_age_end_a_remembered_sign_in() -> None:
    wall, mono = Clock(EXP.timestamp() - 10), Clock(0.0)
    cache = SignedInCache(FakeSignal(), max_age_s=30.0, wall=wall, monotonic=mono)
    cache.put("tok", _signed_in(), cache.mark())
    wall.t = EXP.timestamp()  # the token's exp: expired from that second on, as in PyJWT
    assert cache.get("tok") is None
    wall.t = EXP.timestamp() - 10
    cache.put("tok", _signed_in(), cache.mark())
    mono.t = 30.0
    assert cache.get("tok") is not None
    mono.t = 30.5
    assert cache.get("tok") is None


def test_without_a_signal_nothing_is_remembered() -> None:
    cache = SignedInCache(None)
    assert not cache.enabled and cache.mark() is None
    cache.put("tok", _signed_in(), 1)
    assert cache.get("tok") is None and len(cache) == 0


def test_the_cache_is_bounded_oldest_first() -> None:
    cache = SignedInCache(FakeSignal(), max_entries=3)
    for n in range(5):
        cache.put(f"tok{n}", _signed_in(f"u{n}"), cache.mark())
    assert len(cache) == 3
    assert cache.get("tok0") is None and cache.get("tok1") is None
    assert cache.get("tok4") == _signed_in("u4")


def test_data_version_moves_on_commits_by_other_connections_only(tmp_path: Path) -> None:
    path = tmp_path / "signal.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x)")
    signal = SqliteDataVersion(str(path))
    before = signal.current()
    writer.execute("BEGIN")
    writer.execute("INSERT INTO t VALUES (1)")
    assert signal.current() == before  # not committed: nothing to see yet
    writer.execute("COMMIT")
    after = signal.current()
    assert after is not None and after != before
    assert signal.current() == after  # reading changes nothing
    signal.close()
    writer.close()


def test_a_mark_from_before_a_reconnect_never_matches_after_it(tmp_path: Path) -> None:
    """``data_version`` starts afresh on a new connection: without the generation a mark
    taken before the signal reconnected could equal a value read after a write."""
    path = tmp_path / "signal.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x)")
    signal = SqliteDataVersion(str(path))
    mark = signal.current()
    signal.close()  # what the signal's error path does
    writer.execute("INSERT INTO t VALUES (1)")  # a revocation, say
    after = signal.current()
    assert mark is not None and after is not None
    assert after != mark
    signal.close()
    writer.close()


def test_a_vanished_database_file_reads_as_unknown(tmp_path: Path) -> None:
    signal = SqliteDataVersion(str(tmp_path / "missing" / "nowhere.db"))
    assert signal.current() is None


@pytest.mark.parametrize(
    ("url", "cached"),
    [
        ("sqlite:///{tmp}/file.db", True),
        ("sqlite://", False),
        ("sqlite:///:memory:", False),
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", False),  # unless the setting
    ],
)
def test_which_databases_get_a_signal(tmp_path: Path, url: str, cached: bool) -> None:
    engine = create_engine(url.format(tmp=tmp_path))
    assert (users_signal(engine) is not None) is cached
    if engine.url.get_backend_name() == "postgresql":
        signal = users_signal(engine, postgres=True)  # connects on first use only
        assert isinstance(signal, UsersNews)
        signal.close()
    engine.dispose()


# -- two instances on one database -----------------------------------------------------


@pytest.fixture
def second_engine(db_url: str) -> Iterator[Engine]:
    """A second engine on the same database: another worker's pool."""
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


def _user_reads(engine: Engine) -> list[str]:
    seen: list[str] = []

    def note(_c: object, _cur: object, statement: str, *_a: object) -> None:
        if "FROM users" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    return seen


def _news(client: TestClient) -> Callable[[], None]:
    """Call before a write; what it returns waits, on PostgreSQL, until ``client``'s
    listener has heard the write (SQLite's signal is read on the request itself)."""
    cache: SignedInCache = client.app.state.signed_in  # type: ignore[attr-defined]
    before = cache.mark()

    def heard() -> None:
        if isinstance(cache.signal, UsersNews):
            until(lambda: cache.mark() not in (before, None), "the change was heard")

    return heard


def _two_workers(
    settings: Settings, engine: Engine, second_engine: Engine, role: Role = Role.staff
) -> tuple[TestClient, TestClient, dict[str, str]]:
    settings = settings.model_copy(update={"signed_in_cache_postgres": True})
    with engine.begin() as conn:
        accounts.create_user(conn, "ana", PASSWORD, role)
    one = TestClient(create_app(settings, engine=engine, run_projections=False))
    two = TestClient(create_app(settings, engine=second_engine, run_projections=False))
    cache: SignedInCache = two.app.state.signed_in  # type: ignore[attr-defined]
    until(lambda: cache.mark() is not None, "the users signal is readable")
    r = one.post("/v1/auth/token", data={"username": "ana", "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    for _ in range(2):
        assert two.get("/v1/auth/me", headers=headers).status_code == 200
    return one, two, headers


def test_a_warm_request_reads_no_user_row(
    settings: Settings, engine: Engine, second_engine: Engine
) -> None:
    _, two, headers = _two_workers(settings, engine, second_engine)
    reads = _user_reads(second_engine)
    for _ in range(3):
        assert two.get("/v1/auth/me", headers=headers).status_code == 200
    assert reads == []  # SQLite's data_version, PostgreSQL's notifications


def test_disabling_in_one_worker_refuses_the_next_request_in_another(
    settings: Settings, engine: Engine, second_engine: Engine
) -> None:
    _, two, headers = _two_workers(settings, engine, second_engine)
    heard = _news(two)
    with engine.begin() as conn:
        accounts.set_active(conn, "ana", False)
    heard()
    r = two.get("/v1/auth/me", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["detail"] == "account disabled or removed"
    heard = _news(two)
    with engine.begin() as conn:  # enabled again: the old token stays revoked
        accounts.set_active(conn, "ana", True)
    heard()
    assert two.get("/v1/auth/me", headers=headers).status_code == 401


def test_a_password_reset_elsewhere_revokes_the_token_at_once(
    settings: Settings, engine: Engine, second_engine: Engine
) -> None:
    one, two, headers = _two_workers(settings, engine, second_engine)
    heard = _news(two)
    with engine.begin() as conn:
        accounts.set_password(conn, "ana", "a brand new passphrase")
    heard()
    r = two.get("/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["detail"] == "token revoked: sign in again"
    r = one.post("/v1/auth/token", data={"username": "ana", "password": "a brand new passphrase"})
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert two.get("/v1/auth/me", headers=fresh).status_code == 200


def test_a_role_change_or_deletion_elsewhere_applies_at_once(
    settings: Settings, engine: Engine, second_engine: Engine
) -> None:
    _, two, headers = _two_workers(settings, engine, second_engine, Role.admin)
    assert two.get("/v1/users", headers=headers).status_code == 200
    heard = _news(two)
    with engine.begin() as conn:  # a raw write, no accounts function: still seen
        conn.execute(update(users).where(users.c.username == "ana").values(role="staff"))
    heard()
    assert two.get("/v1/users", headers=headers).status_code == 403
    assert two.get("/v1/auth/me", headers=headers).json()["role"] == "staff"
    heard = _news(two)
    with engine.begin() as conn:
        accounts.delete_user(conn, "ana")
    heard()
    assert two.get("/v1/auth/me", headers=headers).status_code == 401


def test_a_bad_token_is_refused_however_warm_the_cache(
    settings: Settings, engine: Engine, second_engine: Engine
) -> None:
    _, two, headers = _two_workers(settings, engine, second_engine)
    token = headers["Authorization"].removeprefix("Bearer ")
    head, body, signature = token.split(".")
    tampered = f"{head}.{body}.{signature[:-4]}AAAA"
    for bad in (tampered, token + "x", token[:-1]):
        r = two.get("/v1/auth/me", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, bad
