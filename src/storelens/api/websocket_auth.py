"""Credentials for WebSockets, which browsers cannot send headers on.

A browser first asks ``POST /v1/ws-ticket`` (with its bearer token) for a ticket: a
signed, single-use credential that lives 30 seconds, so the one secret that appears
in a URL (and so in proxy and access logs) is worthless by the time anyone reads it.
Native clients send ``Authorization`` or ``X-API-Key`` headers instead. ``?token=``
still works for old devices; the access-log filter redacts it.

A socket lives no longer than the credential it was opened with: the handler waits
on :func:`credential_expiry` and closes with 4401 when it passes. The clock is
``app.state.clock`` when set, so tests can move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Protocol

import jwt
from fastapi import HTTPException
from starlette.requests import HTTPConnection

from storelens import stores
from storelens.accounts import token_version
from storelens.api.auth import (
    ISSUER,
    Principal,
    person_principal,
    principal_from_credential,
    settings_of,
)
from storelens.core.errors import MissingExtra, NotFound

__all__ = [
    "TICKET_SECONDS",
    "Clock",
    "SystemClock",
    "clock_of",
    "credential_expiry",
    "issue_ticket",
    "store_refusal",
    "websocket_principal",
]

TICKET_SECONDS = 30
_AUDIENCE = "storelens:ws"


class Clock(Protocol):
    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def clock_of(conn: HTTPConnection) -> Clock:
    clock: Clock | None = getattr(conn.app.state, "clock", None)
    return clock if clock is not None else SystemClock()


class _UsedTickets:
    """Ticket ids already redeemed, until they would have expired anyway."""

    def __init__(self, redis_url: str | None) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._redis = None
        if redis_url:
            try:
                import redis
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise MissingExtra("Redis ticket store", "redis") from exc
            self._redis = redis.Redis.from_url(redis_url)

    def first_use(self, jti: str) -> bool:
        if self._redis is not None:
            return bool(self._redis.set(f"sl:ws-ticket:{jti}", 1, nx=True, ex=TICKET_SECONDS * 2))
        now = time.monotonic()
        with self._lock:
            for old in [k for k, t in self._seen.items() if now - t > TICKET_SECONDS * 2]:
                del self._seen[old]
            if jti in self._seen:
                return False
            self._seen[jti] = now
            return True


def _used(conn: HTTPConnection) -> _UsedTickets:
    state = conn.app.state
    used: _UsedTickets | None = getattr(state, "ws_tickets", None)
    if used is None:
        used = _UsedTickets(settings_of(conn).redis_url)
        state.ws_tickets = used
    return used


def issue_ticket(conn: HTTPConnection, principal: Principal) -> tuple[str, int]:
    """A single-use ticket for the signed-in person, valid ``TICKET_SECONDS``."""
    settings = settings_of(conn)
    with conn.app.state.engine.connect() as db:
        found = token_version(db, principal.name)
    if found is None or principal.expires_at is None:
        raise HTTPException(401, detail="tickets are for signed-in people")
    now = clock_of(conn).now()
    claims = {
        "sub": principal.name,
        "ver": found[2],
        "cred_exp": int(principal.expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + timedelta(seconds=TICKET_SECONDS),
        "iss": ISSUER,
        "aud": _AUDIENCE,
    }
    secret = settings.secret_key.get_secret_value()
    return jwt.encode(claims, secret, algorithm=settings.jwt_algorithm), TICKET_SECONDS


def _redeem(conn: HTTPConnection, ticket: str) -> Principal:
    settings = settings_of(conn)
    try:
        claims = jwt.decode(
            ticket,
            settings.secret_key.get_secret_value(),
            algorithms=[settings.jwt_algorithm],
            issuer=ISSUER,
            audience=_AUDIENCE,
            options={"require": ["sub", "exp", "iat", "jti", "ver", "cred_exp"]},
        )
    except jwt.InvalidTokenError as exc:
        raise HTTPException(401, detail="invalid or expired ticket") from exc
    if int(claims["exp"]) - int(claims["iat"]) > TICKET_SECONDS:
        raise HTTPException(401, detail="invalid ticket")
    if not _used(conn).first_use(str(claims["jti"])):
        raise HTTPException(401, detail="ticket already used")
    expires = datetime.fromtimestamp(int(claims["cred_exp"]), UTC)
    return person_principal(conn, str(claims["sub"]), claims["ver"], expires)


def websocket_principal(
    conn: HTTPConnection, *, ticket: str | None, token: str | None
) -> Principal:
    """Who opened the socket: headers first, then a ticket, then the legacy ``?token=``."""
    auth = conn.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return principal_from_credential(conn, auth[7:].strip())
    key = conn.headers.get("x-api-key")
    if key:
        return principal_from_credential(conn, key)
    if ticket:
        return _redeem(conn, ticket)
    if token:
        return principal_from_credential(conn, token)
    raise HTTPException(401, detail="not authenticated")


def store_refusal(conn: HTTPConnection, principal: Principal, store_id: str) -> int | None:
    """The close code refusing ``store_id`` to ``principal`` (None: allowed)."""
    if principal.store_scope is not None and principal.store_scope != store_id:
        return 4403
    try:
        with conn.app.state.engine.connect() as db:
            stores.get_store(db, store_id)
    except NotFound:
        return 4404
    return None


async def credential_expiry(principal: Principal, clock: Clock) -> None:
    """Return once the principal's credential has expired (never for API keys)."""
    if principal.expires_at is None:
        await asyncio.Event().wait()
        return
    while (left := (principal.expires_at - clock.now()).total_seconds()) > 0:
        await clock.sleep(left)
