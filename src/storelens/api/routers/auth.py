"""Sign-in, the caller's identity, users and device API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Path, Request, status
from pydantic import BaseModel, Field, StrictBool
from sqlalchemy import Engine

from storelens import accounts
from storelens.api.auth import Principal, client_ip, issue_token, public, settings_of
from storelens.api.deps import MAX_ROW_ID, AdminOnly, AnyPerson, EngineDep, SettingsDep
from storelens.api.errors import ERROR_RESPONSES, error_responses
from storelens.api.ratelimit import Backoff, LoginThrottle, throttle_for
from storelens.api.schemas import (
    ApiKeyCreated,
    ApiKeyPublic,
    ListOf,
    Token,
    UserCreate,
    UserPublic,
)
from storelens.api.websocket_auth import issue_ticket
from storelens.config import Settings
from storelens.core.errors import AuthError, FieldError, InvalidInput
from storelens.privacy import audit

router = APIRouter(prefix="/v1", tags=["auth"], responses=ERROR_RESPONSES)

# Longer than any real username or passphrase; bounds what reaches Argon2 and the audit log.
USERNAME_MAX, PASSWORD_MAX = 128, 1024


def _throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    throttle: LoginThrottle | None = getattr(state, "login_throttle", None)
    if throttle is None:
        settings = settings_of(request)
        throttle = throttle_for(settings.redis_url, Backoff(max_s=settings.login_backoff_max_s))
        state.login_throttle = throttle
    return throttle


@router.post(
    "/auth/token",
    dependencies=[public()],
    responses=error_responses(429),
)
def login(
    request: Request,
    username: Annotated[str, Form(min_length=1, max_length=USERNAME_MAX)],
    password: Annotated[str, Form(min_length=1, max_length=PASSWORD_MAX)],
    engine: EngineDep,
    settings: SettingsDep,
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> Token:
    """OAuth2 password flow: exchange a username and password for a bearer token.

    Failures slow down the next attempt for this username from this address (and,
    past ``login_failures_per_client``, any attempt from the address); successes
    cost nothing and clear the username's count."""
    return sign_in(request, username, password, engine, settings)


def sign_in(
    request: Request, username: str, password: str, engine: Engine, settings: Settings
) -> Token:
    """The one password check, throttle and audit trail behind every sign-in (the API's
    token route and the dashboard's login form): 401 or 429 as ``HTTPException``."""
    ip = client_ip(request) or "unknown"
    throttle = _throttle(request)
    user_key, ip_key = f"user:{len(username)}:{username}:{ip}", f"ip:{ip}"
    actor = audit.Actor(name=username, kind="user", ip=ip)
    user_free, ip_free = settings.login_attempts_per_minute, settings.login_failures_per_client
    # counted before the password check, given back on success (see ratelimit)
    wait = throttle.attempt(user_key, user_free)
    if wait == 0:
        wait = throttle.attempt(ip_key, ip_free)
        if wait > 0:
            throttle.refund(user_key, user_free)  # refused here: not a guess at the password
    if wait > 0:
        retry = str(max(1, round(wait)))
        with engine.begin() as conn:
            audit.record(conn, actor, "login.throttled", "user", username, {"retry_after": retry})
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many failed sign-in attempts; try again in {retry} s",
            headers={"Retry-After": retry},
        )
    try:
        user = accounts.authenticate(engine, username, password)
    except AuthError as exc:
        with engine.begin() as conn:
            audit.record(conn, actor, "login.failed", "user", username)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    throttle.succeeded(user_key)
    throttle.refund(ip_key, ip_free)
    with engine.begin() as conn:
        audit.record(conn, actor, "login", "user", user.username)
    token, ttl = issue_token(settings, user.username, user.role, user.token_version)
    return Token(access_token=token, expires_in=ttl, role=user.role)


class WsTicket(BaseModel):
    ticket: str = Field(description="pass as ?ticket= when opening the WebSocket; single use")
    expires_in: int


@router.post("/ws-ticket")
def ws_ticket(request: Request, principal: AnyPerson) -> WsTicket:
    """A 30-second, single-use ticket for opening a WebSocket from a browser, which
    cannot send an ``Authorization`` header there; the socket lives as long as the
    token that asked for the ticket."""
    ticket, ttl = issue_ticket(request, principal)
    return WsTicket(ticket=ticket, expires_in=ttl)


@router.get("/auth/me")
def me(principal: AnyPerson) -> dict[str, str | None]:
    return {"name": principal.name, "kind": principal.kind, "role": principal.role.value}


@router.get("/users")
def list_users(_: AdminOnly, engine: EngineDep) -> ListOf[UserPublic]:
    rows = [UserPublic.model_validate(u) for u in accounts.list_users(engine)]
    return ListOf(data=rows, count=len(rows))


@router.post("/users", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def create_user(body: UserCreate, principal: AdminOnly, engine: EngineDep) -> UserPublic:
    if body.role == accounts.Role.device:
        message = "devices use API keys: POST /v1/api-keys"
        raise InvalidInput(message, [FieldError.at(("body", "role"), message, "role")])
    with engine.begin() as conn:
        user = accounts.create_user(conn, body.username, body.password, body.role)
        audit.record(
            conn, principal.actor, "user.create", "user", user.username, {"role": user.role.value}
        )
    return UserPublic.model_validate(user)


class ApiKeyScopedCreate(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    store_id: str | None = Field(default=None, description="limit the key to events of this store")
    event_types: list[str] | None = Field(
        default=None,
        max_length=64,
        description="event types the key may send; default: the store-level operational "
        "types. Chain-wide types (customer.upserted, web.event) must be listed here.",
    )
    consent_source: StrictBool = Field(
        default=False, description="the key may send consent.changed (a consent platform)"
    )


class ApiKeyScoped(ApiKeyPublic):
    event_types: list[str]
    last_used_at: datetime | None = None


class ApiKeyScopedCreated(ApiKeyCreated):
    event_types: list[str]


def _scoped(key: accounts.ApiKey) -> ApiKeyScoped:
    return ApiKeyScoped(
        **ApiKeyPublic.model_validate(key).model_dump(),
        event_types=sorted(key.event_types),
        last_used_at=key.last_used_at,
    )


@router.get("/api-keys")
def list_keys(_: AdminOnly, engine: EngineDep) -> ListOf[ApiKeyScoped]:
    keys = [_scoped(k) for k in accounts.list_api_keys(engine)]
    return ListOf(data=keys, count=len(keys))


@router.post(
    "/api-keys", status_code=status.HTTP_201_CREATED, responses=error_responses(404)
)  # 404: no such store_id
def create_key(
    body: ApiKeyScopedCreate, principal: AdminOnly, engine: EngineDep
) -> ApiKeyScopedCreated:
    """A device key (cameras, POS bridges, sensors): it may post the event types it is
    made for, and nothing else."""
    try:
        accounts.key_event_types(body.event_types, consent_source=body.consent_source)
    except ValueError as exc:
        error = {"loc": ["body", "event_types"], "msg": str(exc), "type": "value_error"}
        raise HTTPException(422, detail=[error]) from exc
    with engine.begin() as conn:
        key, secret = accounts.create_api_key(
            conn,
            body.name,
            store_id=body.store_id,
            created_by=principal.name,
            event_types=body.event_types,
            consent_source=body.consent_source,
        )
        audit.record(
            conn,
            principal.actor,
            "api_key.create",
            "api_key",
            key.prefix,
            {"name": key.name, "store_id": key.store_id, "event_types": sorted(key.event_types)},
        )
    return ApiKeyScopedCreated(
        **ApiKeyPublic.model_validate(key).model_dump(),
        key=secret,
        event_types=sorted(key.event_types),
    )


@router.delete(
    "/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404)
)
def revoke_key(
    key_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)], principal: AdminOnly, engine: EngineDep
) -> None:
    with engine.begin() as conn:
        accounts.revoke_api_key(conn, key_id)
        audit.record(conn, principal.actor, "api_key.revoke", "api_key", str(key_id))


__all__ = ["Principal", "router", "sign_in"]
