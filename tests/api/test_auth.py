"""Authentication and roles: 401 without credentials, 403 for the wrong role, device limits."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from storelens.accounts import Role, create_user, delete_user
from storelens.api.app import create_app
from storelens.api.auth import RoleGate, _public
from storelens.config import DEV_SECRET, Settings
from storelens.storage.tables import users

Login = Callable[[str], dict[str, str]]
DeviceKey = Callable[..., dict[str, str]]
# The staff app's page and files are public by design (a phone must load the page to
# show its sign-in form; what it shows comes from the staff-only API).
PUBLIC_ROUTES = {"/health", "/metrics", "/v1/auth/token", "/staff", "/staff/{name}"}


@dataclass(frozen=True)
class _Route:
    """One HTTP operation of the app, wherever FastAPI keeps it."""

    methods: frozenset[str]
    path: str
    dependant: Any


def _gates(route: _Route) -> tuple[set[Role], bool]:
    roles: set[Role] = set()
    public = False
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if isinstance(dep.call, RoleGate):
            roles |= dep.call.roles
        if dep.call is _public:
            public = True
        stack.extend(dep.dependencies)
    return roles, public


def _api_routes(client: TestClient) -> list[_Route]:
    """Every HTTP operation. FastAPI 0.16x keeps included routers as wrappers in
    ``app.routes`` (a walk over ``APIRoute`` alone finds none of them), so unwrap them.
    WebSockets (no ``methods``, no dependant) check their credential in the handler and
    have their own tests (``test_live_auth.py``, the notice socket tests)."""
    out: list[_Route] = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(route, APIRoute):
            out.append(_Route(frozenset(route.methods), route.path, route.dependant))
        elif hasattr(route, "effective_route_contexts"):
            for ctx in route.effective_route_contexts():
                if ctx.methods and ctx.dependant is not None:
                    out.append(_Route(frozenset(ctx.methods), ctx.path, ctx.dependant))
    return out


def test_the_route_walk_sees_every_documented_operation(client: TestClient) -> None:
    """The walks below prove nothing if they walk nothing (they once walked zero)."""
    schema = client.get("/openapi.json").json()
    documented = {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if path.startswith("/v1") and method in ("get", "post", "put", "patch", "delete")
    }
    walked = {(m, r.path) for r in _api_routes(client) for m in r.methods}
    assert len(documented) >= 40
    assert documented <= walked, documented - walked


def test_every_route_declares_its_roles(client: TestClient) -> None:
    routes = _api_routes(client)
    assert len(routes) >= 40
    for route in routes:
        roles, public = _gates(route)
        assert roles or public, f"{route.path} declares no roles"
        assert not (roles and public), f"{route.path} is both public and gated"
        assert public == (route.path in PUBLIC_ROUTES), route.path


def _call(client: TestClient, route: _Route, headers: dict[str, str]) -> int:
    path = route.path.replace("{store_id}", "cafe-01").replace("{customer_id}", "L-1")
    path = path.replace("{key_id}", "1")
    method = sorted(route.methods)[0]
    return client.request(method, path, headers=headers).status_code


def test_no_credentials_gives_401_everywhere(client: TestClient) -> None:
    for route in _api_routes(client):
        if route.path in PUBLIC_ROUTES:
            continue
        assert _call(client, route, {}) == 401, route.path


def test_wrong_role_gives_403(client: TestClient, login: Login) -> None:
    staff = login("staff")
    for route in _api_routes(client):
        roles, _ = _gates(route)
        if roles and Role.staff not in roles:
            assert _call(client, route, staff) == 403, route.path


def test_device_key_may_only_post_events(
    client: TestClient, device_key: DeviceKey, raw_event: Callable[..., dict[str, Any]]
) -> None:
    key = device_key()
    for route in _api_routes(client):
        roles, _ = _gates(route)
        if roles and Role.device not in roles:
            assert _call(client, route, key) == 403, route.path
    r = client.post("/v1/events", json=[raw_event()], headers=key)
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_api_key_as_bearer_works_and_revoked_key_fails(
    client: TestClient, login: Login, raw_event: Callable[..., dict[str, Any]]
) -> None:
    admin = login("admin")
    r = client.post("/v1/api-keys", json={"name": "cam", "store_id": "nowhere"}, headers=admin)
    assert r.status_code == 404 and "nowhere" in r.json()["detail"]
    created = client.post("/v1/api-keys", json={"name": "pos-bridge"}, headers=admin).json()
    bearer = {"Authorization": f"Bearer {created['key']}"}
    assert client.post("/v1/events", json=[raw_event()], headers=bearer).status_code == 200
    assert client.delete(f"/v1/api-keys/{created['id']}", headers=admin).status_code == 204
    r = client.post("/v1/events", json=[raw_event()], headers={"X-API-Key": created["key"]})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


@pytest.mark.parametrize("key", ["garbage", "slk_deadbeef_wrong", "slk_x"])
def test_bad_api_keys_are_401(client: TestClient, key: str) -> None:
    assert client.get("/v1/auth/me", headers={"X-API-Key": key}).status_code == 401


def test_tampered_and_expired_tokens_are_401(
    client: TestClient, login: Login, settings: Settings
) -> None:
    headers = login("analyst")
    token = headers["Authorization"].split()[1]
    assert client.get("/v1/auth/me", headers=headers).status_code == 200
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode(
        {**claims, "role": "admin"},
        "another-secret-of-at-least-thirty-two-bytes",
        algorithm="HS256",
    )
    r = client.get("/v1/users", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    past = datetime.now(UTC) - timedelta(hours=2)
    expired = jwt.encode(
        {**claims, "iat": past, "exp": past + timedelta(minutes=1)},
        settings.secret_key.get_secret_value(),
        algorithm="HS256",
    )
    r = client.get("/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401 and r.json()["detail"] == "token expired"


def test_role_change_applies_to_live_tokens(
    client: TestClient, login: Login, engine: Engine
) -> None:
    headers = login("admin")
    assert client.get("/v1/users", headers=headers).status_code == 200
    name = client.get("/v1/auth/me", headers=headers).json()["name"]
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.username == name).values(role="staff"))
    assert client.get("/v1/users", headers=headers).status_code == 403
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.username == name).values(active=False))
    assert client.get("/v1/auth/me", headers=headers).status_code == 401


def test_a_deleted_users_token_does_not_fit_a_new_account_of_the_same_name(
    client: TestClient, engine: Engine
) -> None:
    with engine.begin() as conn:
        create_user(conn, "bob", "a-long-enough-password", Role.staff)
    form = {"username": "bob", "password": "a-long-enough-password"}
    r = client.post("/v1/auth/token", data=form)
    old = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert client.get("/v1/auth/me", headers=old).status_code == 200
    with engine.begin() as conn:
        delete_user(conn, "bob")  # `storelens users delete`; the API has no such route
    assert client.get("/v1/auth/me", headers=old).status_code == 401
    with engine.begin() as conn:
        create_user(conn, "bob", "another-long-password", Role.admin)
    r = client.get("/v1/auth/me", headers=old)
    assert r.status_code == 401 and r.json()["detail"] == "token revoked: sign in again"
    assert client.get("/v1/users", headers=old).status_code == 401


def test_login_failures_are_audited_and_rate_limited(
    client: TestClient, login: Login, engine: Engine
) -> None:
    with engine.begin() as conn:
        create_user(conn, "barista", "a-long-enough-password", Role.staff)
    for _ in range(3):
        r = client.post("/v1/auth/token", data={"username": "barista", "password": "wrong"})
        assert r.status_code == 401
    r = client.post("/v1/auth/token", data={"username": "nobody", "password": "wrong"})
    assert r.status_code == 401
    audit = client.get("/v1/audit?action=login.failed", headers=login("admin")).json()
    assert sorted({a["resource_id"] for a in audit["data"]}) == ["barista", "nobody"]
    statuses = [
        client.post("/v1/auth/token", data={"username": "barista", "password": "wrong"}).status_code
        for _ in range(10)
    ]
    assert 429 in statuses
    assert statuses[statuses.index(429) :] == [429] * (len(statuses) - statuses.index(429))


def test_passwords_are_hashed_with_argon2(engine: Engine) -> None:
    with engine.begin() as conn:
        create_user(conn, "hashcheck", "a-long-enough-password", Role.analyst)
        stored = conn.execute(users.select().where(users.c.username == "hashcheck")).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "a-long-enough-password" not in stored.password_hash


def test_production_hashes_at_the_recommended_cost() -> None:
    """The suite hashes cheaply (conftest); the installation must not."""
    from storelens import accounts

    stored = accounts._recommended_hasher().hash("a-long-enough-password")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_short_password_and_device_user_are_refused(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match="12 characters"):
        create_user(conn, "shorty", "short", Role.analyst)
    with engine.begin() as conn, pytest.raises(ValueError, match="API keys"):
        create_user(conn, "camera", "a-long-enough-password", Role.device)


@pytest.mark.parametrize("env", ["test", "prod"])
def test_default_secret_is_refused_outside_dev(env: str) -> None:
    with pytest.raises(ValueError, match="STORELENS_SECRET_KEY"):
        Settings(env=env, secret_key=DEV_SECRET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 32"):
        Settings(env=env, secret_key="short")  # type: ignore[arg-type]
    no_file = Path("/nonexistent/storelens.key")
    assert Settings(env="dev", secret_key_file=no_file).secret_key.get_secret_value() == DEV_SECRET


@pytest.mark.redis
def test_redis_login_limiter_shares_counts(
    settings: Settings, engine: Engine, redis_url: str
) -> None:
    """Two API processes behind one Redis see the same attempt count."""
    shared = settings.model_copy(update={"redis_url": redis_url, "login_attempts_per_minute": 3})
    # A client address of its own: the per-address bucket lives in a Redis that other
    # test runs share, so "testclient" may already carry their failed attempts.
    peer = (f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}", 1)
    a = TestClient(create_app(shared, engine=engine, run_projections=False), client=peer)
    b = TestClient(create_app(shared, engine=engine, run_projections=False), client=peer)
    user = f"redis-{uuid.uuid4().hex}"  # unique: another test run may share this Redis
    codes = [
        c.post("/v1/auth/token", data={"username": user, "password": "x"}).status_code
        for c in (a, b, a, b)
    ]
    assert codes == [401, 401, 401, 429]


def test_memory_limiter_window_opens_at_first_attempt() -> None:
    from storelens.api.ratelimit import MemoryLimiter

    limiter = MemoryLimiter(limit=2, window_s=60)
    assert [limiter.hit("k") for _ in range(3)] == [True, True, False]
    assert limiter.hit("other")
    limiter.reset("k")
    assert limiter.hit("k")
