"""Every route x every role x every bad credential, against an explicit table.

The table is written out by hand rather than read from the routes' gates, so a gate
loosened by mistake fails here. A route missing from the table fails too: a new route
must say who may call it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens import accounts, stores
from storelens.config import Settings

ADMIN, ANALYST, STAFF, DEVICE = "admin", "analyst", "staff", "device"
PEOPLE = frozenset({ADMIN, ANALYST, STAFF})
ANALYSTS = frozenset({ADMIN, ANALYST})
ADMINS = frozenset({ADMIN})
STAFF_ONLY = frozenset({STAFF})
PUBLIC = frozenset({"*"})

# (method, path) -> roles allowed. "*" is open to anyone, credentials or not.
ALLOWED: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/v1/auth/token"): PUBLIC,
    ("GET", "/v1/auth/me"): PEOPLE,
    ("POST", "/v1/ws-ticket"): PEOPLE,
    ("GET", "/v1/users"): ADMINS,
    ("POST", "/v1/users"): ADMINS,
    ("GET", "/v1/api-keys"): ADMINS,
    ("POST", "/v1/api-keys"): ADMINS,
    ("DELETE", "/v1/api-keys/{key_id}"): ADMINS,
    ("POST", "/v1/events"): frozenset({ADMIN, DEVICE}),
    ("GET", "/v1/events"): ANALYSTS,
    ("GET", "/v1/stores"): PEOPLE,
    ("POST", "/v1/stores"): ADMINS,
    ("GET", "/v1/stores/{store_id}"): PEOPLE,
    ("PATCH", "/v1/stores/{store_id}"): ADMINS,
    ("DELETE", "/v1/stores/{store_id}"): ADMINS,
    ("GET", "/v1/stores/{store_id}/layout"): PEOPLE,
    ("PUT", "/v1/stores/{store_id}/layout"): ADMINS,
    ("GET", "/v1/stores/{store_id}/ops"): PEOPLE,
    ("GET", "/v1/stores/{store_id}/alerts"): PEOPLE,
    ("GET", "/v1/stores/{store_id}/alert-rules"): PEOPLE,
    ("PUT", "/v1/stores/{store_id}/alert-rules"): ADMINS,
    ("DELETE", "/v1/stores/{store_id}/alert-rules"): ADMINS,
    ("GET", "/v1/stores/{store_id}/exports/{table}"): PEOPLE,
    ("PUT", "/v1/stores/{store_id}/recognition"): ADMINS,
    ("GET", "/v1/products"): PEOPLE,
    ("POST", "/v1/products/import"): ANALYSTS,
    ("POST", "/v1/customers/import"): ANALYSTS,
    ("GET", "/v1/customers"): ANALYSTS,
    ("GET", "/v1/customers/{customer_id}"): ANALYSTS,
    ("POST", "/v1/customers/{customer_id}/unmerge"): ANALYSTS,
    ("GET", "/v1/customers/{customer_id}/export"): ADMINS,
    ("DELETE", "/v1/customers/{customer_id}"): ADMINS,
    ("POST", "/v1/customers/{customer_id}/faces"): ADMINS,  # staff: by notice
    ("GET", "/v1/customers/{customer_id}/faces"): ADMINS,
    ("DELETE", "/v1/customers/{customer_id}/faces"): ADMINS,
    ("POST", "/v1/faces/{consent_id}/approval"): ADMINS,
    ("GET", "/v1/faces/pending"): ADMINS,
    ("GET", "/v1/faces/consent-texts"): PEOPLE,  # the staff app shows the text in force
    ("POST", "/v1/faces/consent-texts"): ADMINS,
    ("POST", "/v1/faces/consent-texts/{version}/retirement"): ADMINS,
    ("GET", "/v1/segments"): ANALYSTS,
    ("GET", "/v1/segments/{segment_id}/members"): ANALYSTS,
    ("GET", "/v1/customers/{customer_id}/recommendations"): ANALYSTS,
    ("POST", "/v1/customers/{customer_id}/declined-items"): ANALYSTS,  # staff: by notice
    ("POST", "/v1/personalize"): ANALYSTS,
    ("PUT", "/v1/stores/{store_id}/stock"): ANALYSTS,
    ("GET", "/v1/audit"): ADMINS,
    ("GET", "/v1/audit/{audit_id}/customers"): ADMINS,
    ("GET", "/v1/dead-letters"): ADMINS,
    ("POST", "/v1/notices"): frozenset({ADMIN, DEVICE}),  # staff could then claim anyone
    ("POST", "/v1/notices/{notice_id}/claim"): STAFF_ONLY,
    ("POST", "/v1/notices/{notice_id}/release"): STAFF_ONLY,
    ("POST", "/v1/notices/{notice_id}/outcome"): STAFF_ONLY,
    ("GET", "/v1/notices/{notice_id}/customer"): STAFF_ONLY,
    ("POST", "/v1/notices/{notice_id}/declined-items"): STAFF_ONLY,
    ("POST", "/v1/notices/{notice_id}/faces"): STAFF_ONLY,
    ("DELETE", "/v1/notices/{notice_id}/faces"): STAFF_ONLY,
}

PATH_VALUES = {
    "store_id": "cafe-01",
    "key_id": "999999",
    "customer_id": "C-nobody",
    "table": "zones",
    "notice_id": "n-nobody",
    "segment_id": "rfm:champions",
    "audit_id": "999999",
    "consent_id": "999999",
    "version": "v-nobody",
}
BAD_CREDENTIALS = ("none", "forged", "expired", "other-store-key")
ROLES = (ADMIN, ANALYST, STAFF, DEVICE)


def _routes(client: TestClient) -> set[tuple[str, str]]:
    """Every operation the API publishes, read from its OpenAPI document."""
    paths = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def test_every_route_is_in_the_table(client: TestClient) -> None:
    routes = _routes(client)
    assert routes - set(ALLOWED) == set(), "routes with no row in ALLOWED"
    assert set(ALLOWED) - routes == set(), "rows in ALLOWED for routes that are gone"


def _token(settings: Settings, username: str, *, secret: str | None = None, age_h: int = 0) -> str:
    now = datetime.now(UTC) - timedelta(hours=age_h)
    claims = {
        "sub": username,
        "role": "admin",
        "iat": now,
        "exp": now + timedelta(minutes=30),
        "iss": "storelens",
    }
    key = secret or settings.secret_key.get_secret_value()
    return jwt.encode(claims, key, algorithm=settings.jwt_algorithm)


@pytest.fixture
def credentials(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    login: Callable[[str], dict[str, str]],
) -> dict[str, dict[str, str]]:
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
        stores.create_store(conn, "cafe-02", "Other café")
        _, own_key = accounts.create_api_key(conn, "till", store_id="cafe-01")
        _, other_key = accounts.create_api_key(conn, "other-till", store_id="cafe-02")
    admin = login(ADMIN)
    admin_name = client.get("/v1/auth/me", headers=admin).json()["name"]
    return {
        ADMIN: admin,
        ANALYST: login(ANALYST),
        STAFF: login(STAFF),
        DEVICE: {"X-API-Key": own_key},
        "none": {},
        "forged": {"Authorization": f"Bearer {_token(settings, admin_name, secret='x' * 48)}"},
        "expired": {"Authorization": f"Bearer {_token(settings, admin_name, age_h=2)}"},
        "other-store-key": {"X-API-Key": other_key},
    }


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    url = path.format(**{k: v for k, v in PATH_VALUES.items() if "{" + k + "}" in path})
    body: Any = None
    if method in {"POST", "PUT", "PATCH"}:
        body = [] if path.endswith(("/events", "/alert-rules")) else {}
    response = client.request(
        method, url, headers={**headers, "X-Request-Id": uuid.uuid4().hex}, json=body
    )
    return int(response.status_code)


@pytest.mark.parametrize("credential", ROLES + BAD_CREDENTIALS)
def test_route_gates(
    client: TestClient, credentials: dict[str, dict[str, str]], credential: str
) -> None:
    wrong: list[str] = []
    for (method, path), allowed in sorted(ALLOWED.items()):
        if path == "/v1/auth/token":
            continue  # its credentials are the form body, tested in test_auth.py
        status = _call(client, method, path, credentials[credential])
        if "*" in allowed or credential in allowed:
            ok = status not in (401, 403)
        elif credential in ("none", "forged", "expired"):
            ok = status == 401
        elif credential == "other-store-key":
            ok = status in (401, 403) if DEVICE not in allowed else status not in (401, 500)
        else:
            ok = status == 403
        if not ok:
            wrong.append(f"{method} {path} as {credential}: {status}")
    assert wrong == []
