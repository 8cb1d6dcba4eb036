"""Sign-in, the caller's identity, users and device API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordRequestForm

from storelens import accounts
from storelens.api.auth import Principal, issue_token, public
from storelens.api.deps import AdminOnly, AnyPerson, EngineDep, SettingsDep
from storelens.api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    ListOf,
    Token,
    UserCreate,
    UserPublic,
)
from storelens.core.errors import AuthError
from storelens.privacy import audit

router = APIRouter(prefix="/v1", tags=["auth"])


@router.post("/auth/token", dependencies=[public()])
def login(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    engine: EngineDep,
    settings: SettingsDep,
) -> Token:
    """OAuth2 password flow: exchange a username and password for a bearer token."""
    ip = request.client.host if request.client else "unknown"
    limiter = request.app.state.login_limiter
    if not limiter.hit(f"login:{form.username}") or not limiter.hit(f"login-ip:{ip}"):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many sign-in attempts; wait a minute",
            headers={"Retry-After": "60"},
        )
    actor = audit.Actor(name=form.username, kind="user", ip=ip)
    try:
        user = accounts.authenticate(engine, form.username, form.password)
    except AuthError as exc:
        with engine.begin() as conn:
            audit.record(conn, actor, "login.failed", "user", form.username)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from exc
    limiter.reset(f"login:{form.username}")
    with engine.begin() as conn:
        audit.record(conn, actor, "login", "user", user.username)
    token, ttl = issue_token(settings, user.username, user.role)
    return Token(access_token=token, expires_in=ttl, role=user.role)


@router.get("/auth/me")
def me(principal: AnyPerson) -> dict[str, str | None]:
    return {"name": principal.name, "kind": principal.kind, "role": principal.role.value}


@router.get("/users")
def list_users(_: AdminOnly, engine: EngineDep) -> ListOf[UserPublic]:
    rows = [UserPublic.model_validate(u) for u in accounts.list_users(engine)]
    return ListOf(data=rows, count=len(rows))


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, principal: AdminOnly, engine: EngineDep) -> UserPublic:
    if body.role == accounts.Role.device:
        raise HTTPException(422, detail="devices use API keys: POST /v1/api-keys")
    with engine.begin() as conn:
        user = accounts.create_user(conn, body.username, body.password, body.role)
        audit.record(
            conn, principal.actor, "user.create", "user", user.username, {"role": user.role.value}
        )
    return UserPublic.model_validate(user)


@router.get("/api-keys")
def list_keys(_: AdminOnly, engine: EngineDep) -> ListOf[ApiKeyPublic]:
    keys = [ApiKeyPublic.model_validate(k) for k in accounts.list_api_keys(engine)]
    return ListOf(data=keys, count=len(keys))


@router.post("/api-keys", status_code=status.HTTP_201_CREATED)
def create_key(body: ApiKeyCreate, principal: AdminOnly, engine: EngineDep) -> ApiKeyCreated:
    """A device key (cameras, POS bridges, sensors): it may post events and nothing else."""
    with engine.begin() as conn:
        key, secret = accounts.create_api_key(
            conn, body.name, store_id=body.store_id, created_by=principal.name
        )
        audit.record(
            conn,
            principal.actor,
            "api_key.create",
            "api_key",
            key.prefix,
            {"name": key.name, "store_id": key.store_id},
        )
    return ApiKeyCreated(**ApiKeyPublic.model_validate(key).model_dump(), key=secret)


@router.delete("/api-keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: int, principal: AdminOnly, engine: EngineDep) -> None:
    with engine.begin() as conn:
        accounts.revoke_api_key(conn, key_id)
        audit.record(conn, principal.actor, "api_key.revoke", "api_key", str(key_id))


__all__ = ["Principal", "router"]
