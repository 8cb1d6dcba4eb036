"""Sign-in limits that slow guessers without letting anyone lock an account out."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from storelens.accounts import Role, create_user
from storelens.api.app import create_app
from storelens.api.ratelimit import Backoff, LoginThrottle, MemoryThrottle
from storelens.api.routers import auth as auth_router
from storelens.config import Settings
from storelens.storage.tables import audit_log

PASSWORD = "the owner's long password"


class FakeTime:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def _client(settings: Settings, engine: Engine, peer: str, **changes: Any) -> TestClient:
    own = Settings(
        env="test", database_url=settings.database_url, secret_key=settings.secret_key, **changes
    )
    app = create_app(own, engine=engine, run_projections=False)
    return TestClient(app, client=(peer, 50000))


def _sign_in(client: TestClient, password: str, **headers: str) -> int:
    data = {"username": "owner", "password": password}
    return client.post("/v1/auth/token", data=data, headers=headers).status_code


@pytest.fixture
def owner(engine: Engine) -> None:
    with engine.begin() as conn:
        create_user(conn, "owner", PASSWORD, Role.staff)


def test_guesses_from_elsewhere_do_not_lock_the_owner_out(
    settings: Settings, engine: Engine, owner: None
) -> None:
    attacker = _client(settings, engine, "203.0.113.5")
    for i in range(11):
        _sign_in(attacker, "wrong", **{"X-Forwarded-For": f"198.51.100.{i}"})
    assert _sign_in(attacker, "wrong") == 429  # forwarded-for from a stranger is ignored
    shared = attacker.app.state.login_throttle  # type: ignore[attr-defined]
    the_owner = _client(settings, engine, "192.0.2.44")
    the_owner.app.state.login_throttle = shared  # type: ignore[attr-defined]
    assert _sign_in(the_owner, PASSWORD) == 200


def test_successful_sign_ins_do_not_count(settings: Settings, engine: Engine, owner: None) -> None:
    client = _client(settings, engine, "192.0.2.44")
    assert [_sign_in(client, PASSWORD) for _ in range(15)] == [200] * 15


def test_forwarded_for_is_believed_only_from_trusted_proxies(
    settings: Settings, engine: Engine, owner: None
) -> None:
    proxied = _client(settings, engine, "10.0.0.2", trusted_proxies=["10.0.0.0/8"])
    hops = "198.51.100.7, 10.0.0.9"  # the client, then another proxy of ours
    assert _sign_in(proxied, PASSWORD, **{"X-Forwarded-For": hops}) == 200
    direct = _client(settings, engine, "203.0.113.5", trusted_proxies=["10.0.0.0/8"])
    assert _sign_in(direct, PASSWORD, **{"X-Forwarded-For": "198.51.100.99"}) == 200
    with engine.connect() as conn:
        ips = conn.execute(
            select(audit_log.c.ip).where(audit_log.c.action == "login").order_by(audit_log.c.id)
        ).scalars()
        assert list(ips) == ["198.51.100.7", "203.0.113.5"]


def test_backoff_doubles_then_clears_instead_of_locking_out(
    settings: Settings, engine: Engine, owner: None
) -> None:
    clock = FakeTime()
    client = _client(settings, engine, "203.0.113.5", login_attempts_per_minute=3)
    client.app.state.login_throttle = MemoryThrottle(  # type: ignore[attr-defined]
        Backoff(base_s=60, max_s=200), clock=clock
    )
    assert [_sign_in(client, "wrong") for _ in range(3)] == [401, 401, 401]
    r = client.post("/v1/auth/token", data={"username": "owner", "password": PASSWORD})
    assert r.status_code == 429 and r.headers["Retry-After"] == "60"
    waits = [r.headers["Retry-After"]]
    for _ in range(3):
        clock.t += int(waits[-1]) - 1
        assert _sign_in(client, PASSWORD) == 429  # still waiting, even with the right one
        clock.t += 1
        assert _sign_in(client, "wrong") == 401
        r = client.post("/v1/auth/token", data={"username": "owner", "password": "x"})
        waits.append(r.headers["Retry-After"])
    assert waits == ["60", "120", "200", "200"]  # doubling, capped by login_backoff_max_s
    clock.t += 200
    assert _sign_in(client, PASSWORD) == 200
    assert _sign_in(client, "wrong") == 401  # the success cleared the count
    with engine.connect() as conn:
        throttled = conn.execute(
            select(audit_log.c.resource_id, audit_log.c.detail).where(
                audit_log.c.action == "login.throttled"
            )
        ).all()
    assert [t.resource_id for t in throttled] == ["owner"] * 7
    assert throttled[0].detail == {"retry_after": "60"}


def test_client_bucket_slows_spraying_many_usernames(
    settings: Settings, engine: Engine, owner: None
) -> None:
    client = _client(settings, engine, "203.0.113.5", login_failures_per_client=4)
    codes = [
        client.post("/v1/auth/token", data={"username": f"u{i}", "password": "x"}).status_code
        for i in range(6)
    ]
    assert codes == [401, 401, 401, 401, 429, 429]


@pytest.mark.parametrize(
    ("username", "password"),
    [("u" * 129, "x"), ("u" * 1_000_000, "x"), ("owner", "p" * 1025), ("", "x")],
)
def test_oversized_fields_are_422_and_not_stored(
    client: TestClient, engine: Engine, username: str, password: str
) -> None:
    r = client.post("/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 422
    with engine.connect() as conn:
        assert conn.execute(select(audit_log.c.id)).first() is None


def test_memory_throttle_forgets_quiet_keys() -> None:
    clock = FakeTime()
    throttle = MemoryThrottle(Backoff(base_s=10, max_s=40), clock=clock)
    assert [throttle.failed("k", free=2) for _ in range(3)] == [0.0, 10.0, 20.0]
    assert throttle.wait("k") == 20.0
    clock.t += 81  # quiet for longer than twice the cap
    throttle.failed("other", free=2)
    assert throttle.wait("k") == 0.0 and throttle.failed("k", free=2) == 0.0


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_an_attempt_is_counted_before_its_outcome_is_known(store: str, request: Any) -> None:
    """Reserved in one step: ten guesses in flight at once cannot all pass the check."""
    clock = FakeTime()
    backoff = Backoff(base_s=60, max_s=900)
    throttle: LoginThrottle
    if store == "redis":
        from storelens.api.ratelimit import RedisThrottle

        url = request.getfixturevalue("redis_url")
        throttle = RedisThrottle(url, backoff, clock=clock, prefix=f"t:{uuid.uuid4().hex}")
    else:
        throttle = MemoryThrottle(backoff, clock=clock)
    waits = [throttle.attempt("k", free=3) for _ in range(5)]  # none has finished yet
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] == waits[4] == 60.0
    throttle.refund("k", free=3)  # the third was the right password after all
    assert throttle.attempt("k", free=3) == 0.0  # ...so its wait went with it
    assert throttle.attempt("k", free=3) == 60.0
    clock.t += 61
    assert throttle.attempt("k", free=3) == 0.0  # the fourth failure: doubling from here
    assert throttle.attempt("k", free=3) == 120.0


def test_the_password_is_checked_only_after_the_attempt_is_counted(
    settings: Settings, engine: Engine, owner: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(settings, engine, "192.0.2.7")
    throttle = MemoryThrottle(Backoff(), clock=FakeTime())
    client.app.state.login_throttle = throttle  # type: ignore[attr-defined]
    seen: list[int] = []
    real = auth_router.accounts.authenticate

    def spy(engine_: Engine, username: str, password: str) -> Any:
        seen.append(throttle._state["user:5:owner:192.0.2.7"][0])
        return real(engine_, username, password)

    monkeypatch.setattr(auth_router.accounts, "authenticate", spy)
    assert _sign_in(client, "wrong") == 401
    assert _sign_in(client, "wrong") == 401
    assert seen == [1, 2]  # counted when the slow check starts, not after it
    assert _sign_in(client, PASSWORD) == 200
    assert "user:5:owner:192.0.2.7" not in throttle._state
    assert throttle._state["ip:192.0.2.7"][0] == 2  # the success was given back
