"""Who is calling: JWT bearer tokens for people, API keys for devices, and role gates.

Every route declares the roles it allows with :func:`allow` (or :func:`public`); a
test walks the app and fails on any route that declares neither. A person's role
comes from their user row, not from the token, so demoting or disabling someone takes
effect at once rather than when their token expires; a password reset, disabling or
a role change also bumps the user's token version, which every token carries. A token
that passed both checks is remembered until the users table may have changed
(:mod:`storelens.api.auth_cache`), so a warm request reads no row and revocation stays
immediate in every worker.

Tokens live at most ``access_token_minutes``: a token whose ``exp - iat`` is longer
is refused even when its signature is good, so a leaked secret cannot mint tokens
that outlive its rotation by years.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from starlette.requests import HTTPConnection

from storelens.accounts import KEY_PREFIX, Role, find_api_key, token_version
from storelens.api.auth_cache import SignedIn, SignedInCache
from storelens.config import Settings
from storelens.core.errors import AuthError
from storelens.privacy.audit import Actor

__all__ = [
    "Principal",
    "RoleGate",
    "allow",
    "client_ip",
    "current_principal",
    "issue_token",
    "person_from_token",
    "person_name_and_role",
    "person_principal",
    "principal_from_credential",
    "public",
    "settings_of",
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
    event_types: frozenset[str] | None = None  # None: any type (people)
    expires_at: datetime | None = None  # when the credential stops working (tokens)
    # People: the user row's token version the credential was checked against, so what
    # outlives the request (a socket) can tell a revocation that landed since.
    token_version: int | None = None
    # Keys: the key's public prefix, so a live socket can look the key up again without
    # ever holding its secret.
    key_prefix: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor(name=self.name, kind=self.kind, role=self.role.value, ip=self.ip)


def issue_token(settings: Settings, username: str, role: Role, version: int = 0) -> tuple[str, int]:
    now = datetime.now(UTC)
    ttl = timedelta(minutes=settings.access_token_minutes)
    claims = {
        "sub": username,
        "role": role.value,
        "ver": version,
        "iat": now,
        "exp": now + ttl,
        "iss": ISSUER,
    }
    token = jwt.encode(
        claims, settings.secret_key.get_secret_value(), algorithm=settings.jwt_algorithm
    )
    return token, int(ttl.total_seconds())


def settings_of(conn: HTTPConnection) -> Settings:
    """The app's one ``Settings``: routes take it as ``SettingsDep`` (built on this),
    and code that runs outside a route's dependencies (token checks, WebSockets) calls
    this, so nothing builds a second ``Settings`` or reads the environment itself."""
    settings: Settings = conn.app.state.settings
    return settings


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


def person_from_token(request: HTTPConnection, token: str) -> Principal:
    """A person's bearer token checked (cached while the users signal allows, else the
    user row read); HTTPException 401 when it does not hold. Also the recommendation
    lane's check (api/recommendations_lane.py), so both ask the same question."""
    cache: SignedInCache | None = getattr(request.app.state, "signed_in", None)
    known = None if cache is None else cache.get(token)
    if known is not None:
        return Principal(
            name=known.username,
            kind="user",
            role=known.role,
            ip=client_ip(request),
            expires_at=known.expires_at,
            token_version=known.version,
        )
    mark = None if cache is None else cache.mark()  # before the row is read
    settings = settings_of(request)
    try:
        claims = jwt.decode(
            token,
            settings.secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            issuer=ISSUER,
            options={"require": ["sub", "exp", "iat", "iss", "ver"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise _unauthorized("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise _unauthorized("invalid token") from exc
    lifetime = _number(claims["exp"]) - _number(claims["iat"])
    if lifetime > settings.access_token_minutes * 60:
        raise _unauthorized("token lifetime over the limit")
    expires = datetime.fromtimestamp(_number(claims["exp"]), UTC)
    principal = person_principal(request, str(claims["sub"]), claims["ver"], expires)
    if cache is not None:
        signed_in = SignedIn(
            principal.name, principal.role, expires, _number(claims["exp"]), principal.token_version
        )
        cache.put(token, signed_in, mark)
    return principal


def person_name_and_role(request: HTTPConnection, token: str) -> tuple[str, Role]:
    """Who a person's bearer token stands for and their role: :func:`person_from_token`
    reduced to what the recommendation lane asks, without building a ``Principal``
    (and resolving the client's address) for a token the signed-in cache holds. The
    same cache lookup is that function's first step; a miss runs it whole."""
    cache: SignedInCache | None = getattr(request.app.state, "signed_in", None)
    known = None if cache is None else cache.get(token)
    if known is not None:
        return known.username, known.role
    principal = person_from_token(request, token)
    return principal.name, principal.role


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _unauthorized("invalid token")
    return float(value)


def person_principal(
    request: HTTPConnection, username: str, version: object, expires_at: datetime
) -> Principal:
    """The signed-in person, if they still exist, are active and the token is current."""
    with request.app.state.engine.connect() as conn:
        found = token_version(conn, username)
    if found is None or not found[1]:
        raise _unauthorized("account disabled or removed")
    role, _, current = found
    if version != current:
        raise _unauthorized("token revoked: sign in again")
    return Principal(
        name=username,
        kind="user",
        role=role,
        ip=client_ip(request),
        expires_at=expires_at,
        token_version=current,
    )


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
        ip=client_ip(request),
        event_types=key.event_types,
        key_prefix=key.prefix,
    )


def _trusted(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request: HTTPConnection) -> str | None:
    """The caller's address. ``X-Forwarded-For`` counts only when the peer is one of
    ``trusted_proxies``; then the nearest hop that is not a trusted proxy is the client,
    so a caller cannot pick the address its attempts are counted under."""
    peer = request.client.host if request.client else None
    networks = settings_of(request).trusted_proxies
    if peer is None or not networks or not _trusted(peer, networks):
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
    hops = [h for h in hops if h]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop[:64]
    return hops[0][:64] if hops else peer


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
        return person_from_token(request, token)
    raise _unauthorized("not authenticated: send a bearer token or an X-API-Key header")


def principal_from_credential(conn: HTTPConnection, credential: str) -> Principal:
    """A token or API key given outside the usual headers (WebSocket query strings)."""
    if credential.startswith(f"{KEY_PREFIX}_"):
        return _from_key(conn, credential)
    return person_from_token(conn, credential)


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
