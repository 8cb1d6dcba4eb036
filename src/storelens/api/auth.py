"""Who is calling: JWT bearer tokens for people, API keys for devices, and role gates.

Every route declares the roles it allows with :func:`allow` (or :func:`public`); a
test walks the app and fails on any route that declares neither. A person's role is
re-read from the database on each request, so demoting or disabling someone takes
effect at once rather than when their token expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from sqlalchemy import select
from starlette.requests import HTTPConnection

from storelens.accounts import KEY_PREFIX, Role, find_api_key
from storelens.config import Settings
from storelens.core.errors import AuthError
from storelens.privacy.audit import Actor
from storelens.storage.tables import users

__all__ = [
    "Principal",
    "RoleGate",
    "allow",
    "current_principal",
    "issue_token",
    "principal_from_credential",
    "public",
]

ISSUER = "storelens"
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    kind: Literal["user", "api_key"]
    role: Role
    store_scope: str | None = None
    ip: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.name, kind=self.kind, role=self.role.value, ip=self.ip)


def issue_token(settings: Settings, username: str, role: Role) -> tuple[str, int]:
    now = datetime.now(UTC)
    ttl = timedelta(minutes=settings.access_token_minutes)
    claims = {"sub": username, "role": role.value, "iat": now, "exp": now + ttl, "iss": ISSUER}
    token = jwt.encode(
        claims, settings.secret_key.get_secret_value(), algorithm=settings.jwt_algorithm
    )
    return token, int(ttl.total_seconds())


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _from_token(request: HTTPConnection, token: str) -> Principal:
    settings: Settings = request.app.state.settings
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("invalid token") from exc
    with request.app.state.engine.connect() as conn:
        row = conn.execute(
            select(users.c.role, users.c.active).where(users.c.username == claims["sub"])
        ).first()
    if row is None or not row.active:
        raise _unauthorized("account disabled or removed")
    return Principal(name=claims["sub"], kind="user", role=Role(row.role), ip=_ip(request))


def _from_key(request: HTTPConnection, secret: str) -> Principal:
    try:
        key = find_api_key(request.app.state.engine, secret)
    except AuthError as exc:
        raise _unauthorized(str(exc)) from exc
    return Principal(
        name=f"key:{key.prefix}:{key.name}",
        kind="api_key",
        role=key.role,
        store_scope=key.store_id,
        ip=_ip(request),
    )


def _ip(request: HTTPConnection) -> str | None:
    return request.client.host if request.client else None


async def current_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_header)],
) -> Principal:
    if api_key:
        return _from_key(request, api_key)
    if token:
        if token.startswith(f"{KEY_PREFIX}_"):
            return _from_key(request, token)
        return _from_token(request, token)
    raise _unauthorized("not authenticated: send a bearer token or an X-API-Key header")


def principal_from_credential(conn: HTTPConnection, credential: str) -> Principal:
    """A token or API key given outside the usual headers (WebSocket query strings)."""
    if credential.startswith(f"{KEY_PREFIX}_"):
        return _from_key(conn, credential)
    return _from_token(conn, credential)


class RoleGate:
    """A dependency that admits only the listed roles (inspectable by tests)."""

    def __init__(self, roles: tuple[Role, ...]) -> None:
        if not roles:
            raise ValueError("a route must allow at least one role; use public() for none")
        self.roles = frozenset(roles)

    async def __call__(
        self, principal: Annotated[Principal, Depends(current_principal)]
    ) -> Principal:
        if principal.role not in self.roles:
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value!r} may not do this (allowed: {allowed})",
            )
        return principal


def allow(*roles: Role) -> Any:
    return Depends(RoleGate(roles))


async def _public() -> None:
    """Marks a route as deliberately open to anyone."""


def public() -> Any:
    return Depends(_public)
