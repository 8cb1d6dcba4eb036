"""People and devices that may use storelens: users with passwords, devices with API keys.

Passwords are hashed with Argon2 (pwdlib). Device keys are long random tokens, so a
fast SHA-256 of the key is safe to store and cheap to check on every event batch; the
key's short prefix is kept in clear to find the row without scanning.

A key carries the event types it may send. By default that is the store-level
operational types (orders, sensors, staff shifts, vision): a camera or a till has no
business rewriting customer records or consent, so chain-wide types must be granted
when the key is made, and consent only to a key made as a consent source.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from pwdlib import PasswordHash
from sqlalchemy import Connection, Engine, delete, select, update

from storelens.core.errors import AuthError, Conflict, FieldError, InvalidInput, NotFound
from storelens.core.events import EVENT_TYPES, STORE_BOUND_TYPES
from storelens.storage.tables import api_keys, stores, users

__all__ = [
    "CHAIN_WIDE_TYPES",
    "CONSENT_TYPE",
    "DEFAULT_KEY_TYPES",
    "ApiKey",
    "Role",
    "User",
    "authenticate",
    "create_api_key",
    "create_user",
    "delete_user",
    "find_api_key",
    "generate_password",
    "get_user",
    "key_event_types",
    "key_grant",
    "list_api_keys",
    "list_users",
    "revoke_api_key",
    "set_active",
    "set_password",
    "set_role",
    "token_version",
]

KEY_PREFIX = "slk"


def _recommended_hasher() -> PasswordHash:
    """Argon2id with pwdlib's recommended cost (64 MiB, 3 passes): about 0.1 s a hash."""
    return PasswordHash.recommended()


_hasher = _recommended_hasher()  # the test suite swaps in a cheap Argon2id (conftest)
# Verified against when the user does not exist, so a wrong username costs as much
# time as a wrong password and usernames cannot be probed by timing.
_DUMMY_HASH = _hasher.hash("storelens-timing-equaliser")


class Role(StrEnum):
    """What a principal may do; routes list the roles they allow."""

    admin = "admin"
    analyst = "analyst"
    staff = "staff"
    device = "device"


PERSON_ROLES = (Role.admin, Role.analyst, Role.staff)
DEFAULT_KEY_TYPES: frozenset[str] = STORE_BOUND_TYPES
CONSENT_TYPE = "consent.changed"
CHAIN_WIDE_TYPES: frozenset[str] = frozenset(EVENT_TYPES) - STORE_BOUND_TYPES
# Writing last_used_at on every batch would turn each read of a key into a write.
LAST_USED_EVERY = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    role: Role
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    token_version: int = 0


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: int
    name: str
    prefix: str
    role: Role
    store_id: str | None
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    event_types: frozenset[str] = DEFAULT_KEY_TYPES

    @property
    def consent_source(self) -> bool:
        return CONSENT_TYPE in self.event_types


def _user(row: object) -> User:
    m = row._mapping  # type: ignore[attr-defined]
    return User(
        id=m["id"],
        username=m["username"],
        role=Role(m["role"]),
        active=m["active"],
        created_at=m["created_at"],
        last_login_at=m["last_login_at"],
        token_version=m["token_version"],
    )


def _key(row: object) -> ApiKey:
    m = row._mapping  # type: ignore[attr-defined]
    return ApiKey(
        id=m["id"],
        name=m["name"],
        prefix=m["prefix"],
        role=Role(m["role"]),
        store_id=m["store_id"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
        event_types=(
            DEFAULT_KEY_TYPES if m["event_types"] is None else frozenset(m["event_types"])
        ),
    )


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def _check_password(password: str) -> None:
    if len(password) < 12:
        raise InvalidInput(
            "passwords must be at least 12 characters",
            [FieldError("password", "at least 12 characters", "too_short")],
        )


def create_user(conn: Connection, username: str, password: str, role: Role) -> User:
    if role not in PERSON_ROLES:
        raise InvalidInput(
            "devices use API keys, not user accounts",
            [FieldError("role", "devices use API keys, not user accounts", "role")],
        )
    _check_password(password)
    exists = conn.execute(select(users.c.id).where(users.c.username == username)).first()
    if exists:
        raise Conflict(f"user {username!r} already exists")
    conn.execute(
        users.insert(),
        {
            "username": username,
            "password_hash": _hasher.hash(password),
            "role": role.value,
            "active": True,
            "created_at": datetime.now(UTC),
            "token_version": _first_token_version(),
        },
    )
    return get_user(conn, username)


def _first_token_version() -> int:
    """A random starting version, so a deleted user's unexpired token never fits a new
    account made later under the same name (both would otherwise start at 0). Bumps add 1,
    so the 2**30 range leaves room under PostgreSQL's 32-bit integer."""
    return secrets.randbelow(2**30) + 1


def get_user(conn: Connection, username: str) -> User:
    row = conn.execute(select(users).where(users.c.username == username)).first()
    if row is None:
        raise NotFound(f"no user {username!r}")
    return _user(row)


def list_users(engine: Engine) -> list[User]:
    with engine.connect() as conn:
        return [_user(r) for r in conn.execute(select(users).order_by(users.c.id))]


def set_password(conn: Connection, username: str, password: str) -> None:
    _check_password(password)
    done = conn.execute(
        update(users)
        .where(users.c.username == username)
        .values(password_hash=_hasher.hash(password), token_version=users.c.token_version + 1)
    )
    if done.rowcount == 0:
        raise NotFound(f"no user {username!r}")


def _change_user(conn: Connection, username: str, **values: object) -> None:
    """Apply ``values`` and end the user's sessions (their tokens carry the old version)."""
    done = conn.execute(
        update(users)
        .where(users.c.username == username)
        .values(token_version=users.c.token_version + 1, **values)
    )
    if done.rowcount == 0:
        raise NotFound(f"no user {username!r}")


def _keep_an_admin(conn: Connection, username: str) -> None:
    """Refuse to disable, demote or delete the last active admin: nobody could then
    create users, keys or erasures except by editing the database (a new user deleted
    the demo's only admin with `users delete admin --yes`)."""
    row = conn.execute(
        select(users.c.role, users.c.active).where(users.c.username == username)
    ).first()
    if row is None or row.role != Role.admin.value or not row.active:
        return
    # The active admins' rows locked first (PostgreSQL; SQLite has one writer): two
    # admins demoting each other at once both saw the other and left none (a review).
    admins = conn.execute(
        select(users.c.username)
        .where(users.c.role == Role.admin.value, users.c.active.is_(True))
        .with_for_update()
    ).scalars()
    others = [a for a in admins if a != username]
    if not others:
        raise Conflict(
            f"{username!r} is the last active admin: make another user admin first "
            "(storelens users create NAME --role admin)"
        )


def set_active(conn: Connection, username: str, active: bool) -> None:
    if not active:
        _keep_an_admin(conn, username)
    _change_user(conn, username, active=active)


def set_role(conn: Connection, username: str, role: Role) -> None:
    if role not in PERSON_ROLES:
        message = "devices use API keys, not user accounts"
        raise InvalidInput(message, [FieldError("role", message, "role")])
    if role != Role.admin:
        _keep_an_admin(conn, username)
    _change_user(conn, username, role=role.value)


def delete_user(conn: Connection, username: str) -> None:
    """Remove the account; audit rows keep the name, the staff row loses its link."""
    _keep_an_admin(conn, username)
    done = conn.execute(delete(users).where(users.c.username == username))
    if done.rowcount == 0:
        raise NotFound(f"no user {username!r}")


def token_version(conn: Connection, username: str) -> tuple[Role, bool, int] | None:
    """Role, active flag and token version of a user, or None when there is no such user."""
    row = conn.execute(
        select(users.c.role, users.c.active, users.c.token_version).where(
            users.c.username == username
        )
    ).first()
    return None if row is None else (Role(row.role), bool(row.active), int(row.token_version))


def authenticate(engine: Engine, username: str, password: str) -> User:
    """The user for these credentials, or AuthError; same cost whether or not they exist."""
    with engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            _hasher.verify(password, _DUMMY_HASH)
            raise AuthError("incorrect username or password")
        valid, new_hash = _hasher.verify_and_update(password, row.password_hash)
        if not valid or not row.active:
            raise AuthError("incorrect username or password")
        values: dict[str, object] = {"last_login_at": datetime.now(UTC)}
        if new_hash:
            values["password_hash"] = new_hash
        conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return _user(row)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(
    conn: Connection,
    name: str,
    *,
    role: Role = Role.device,
    store_id: str | None = None,
    created_by: str | None = None,
    event_types: Iterable[str] | None = None,
    consent_source: bool = False,
) -> tuple[ApiKey, str]:
    """A new key; the secret is returned once and only its hash is stored.

    ``event_types`` defaults to :data:`DEFAULT_KEY_TYPES`; ``consent_source`` adds
    ``consent.changed``, which may not be granted any other way.
    """
    types = key_event_types(event_types, consent_source=consent_source)
    if (
        store_id is not None
        and not conn.execute(select(stores.c.id).where(stores.c.id == store_id)).first()
    ):
        raise NotFound(f"no store {store_id!r} to limit the key to")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    conn.execute(
        api_keys.insert(),
        {
            "name": name,
            "prefix": prefix,
            "key_hash": _digest(secret),
            "role": role.value,
            "store_id": store_id,
            "created_at": datetime.now(UTC),
            "created_by": created_by,
            "event_types": sorted(types),
        },
    )
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).one()
    return _key(row), secret


def key_event_types(
    event_types: Iterable[str] | None, *, consent_source: bool = False
) -> frozenset[str]:
    """The checked set of types a new key may send (ValueError on unknown or consent)."""
    types = DEFAULT_KEY_TYPES if event_types is None else frozenset(event_types)
    unknown = sorted(types - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types: {', '.join(unknown)}")
    if CONSENT_TYPE in types and not consent_source:
        raise ValueError(f"{CONSENT_TYPE} is granted only to a key made as a consent source")
    return types | {CONSENT_TYPE} if consent_source else types


def find_api_key(engine: Engine, secret: str, now: datetime | None = None) -> ApiKey:
    """The live key matching ``secret``, or AuthError; notes its use at most once a minute."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise AuthError("malformed API key")
    with engine.connect() as conn:
        row = conn.execute(select(api_keys).where(api_keys.c.prefix == parts[1])).first()
    if row is None or not hmac.compare_digest(row.key_hash, _digest(secret)):
        raise AuthError("unknown API key")
    if row.revoked_at is not None:
        raise AuthError("API key revoked")
    key = _key(row)
    now = now or datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        with engine.begin() as conn:
            conn.execute(update(api_keys).where(api_keys.c.id == key.id).values(last_used_at=now))
    return key


def list_api_keys(engine: Engine) -> list[ApiKey]:
    with engine.connect() as conn:
        return [_key(r) for r in conn.execute(select(api_keys).order_by(api_keys.c.id))]


def revoke_api_key(conn: Connection, key_id: int) -> None:
    done = conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if done.rowcount == 0:
        raise NotFound(f"no live API key {key_id}")


_KeyGrant = tuple[int, Role, str | None, frozenset[str]]


def key_grant(conn: Connection, prefix: str) -> _KeyGrant | None:
    """What the live key with ``prefix`` grants (id, role, store, event types), or None
    once it is revoked or gone: the key's counterpart of :func:`token_version`, for
    what was admitted under it to be compared with later (``last_used_at`` changes as
    the key is used, so it is left out)."""
    row = conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).first()
    if row is None or row.revoked_at is not None:
        return None
    key = _key(row)
    return key.id, key.role, key.store_id, key.event_types
