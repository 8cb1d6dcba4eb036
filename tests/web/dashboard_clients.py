"""The dashboard in-process, for the tests that need no browser: the app over the sample
layout with users named after their roles, and signing in through its login form."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import Engine

from storelens import accounts, stores
from storelens.config import Settings
from storelens.samples import sample_layout_path
from storelens.web.site import create_site

PASSWORD = "correct horse battery staple"


def in_process_site(settings: Settings, engine: Engine) -> TestClient:
    """The dashboard app over the sample layout, with users admin, analyst and staff."""
    with engine.begin() as conn:
        stores.load_layout_file(conn, sample_layout_path())
        for role in ("admin", "analyst", "staff"):
            accounts.create_user(conn, role, PASSWORD, accounts.Role(role))
    return TestClient(create_site(settings, engine=engine, run_projections=False))


def csrf_of(client: TestClient) -> str:
    """The login form's CSRF token, which also sets the client's CSRF cookie."""
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert found is not None
    return found.group(1)


def sign_in_client(client: TestClient, role: str, **extra: str) -> Response:
    """Through the login form as the role's user; the response (303 on success)."""
    form = {"username": role, "password": PASSWORD, "csrf": csrf_of(client), "next": "/", **extra}
    return client.post("/login", data=form, follow_redirects=False)
