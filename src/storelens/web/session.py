"""The dashboard's sign-in: the API's own token, carried in a cookie a script cannot read.

A browser cannot keep a bearer token safe from scripts, so the dashboard puts the same
JWT the API issues (same users, roles, lifetime and revocation) in an ``httpOnly``,
``SameSite=Strict`` cookie, ``Secure`` over https. Cookie authentication invites
cross-site request forgery, so:

* only the dashboard's own routes read the cookie; the ``/v1`` API still wants a bearer
  token or an API key, so a forged request cannot reach it with the cookie;
* the dashboard's only state-changing requests (sign in, sign out) are POST forms that
  carry a CSRF token equal to a second cookie (double submit), and a cross-origin
  ``Origin`` header is refused outright;
* every other dashboard route is a GET that changes nothing.

Gates are :class:`WebGate` instances, inspectable by tests like the API's ``RoleGate``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, status
from starlette.responses import Response

from storelens.accounts import Role
from storelens.api.auth import Principal, principal_from_credential, settings_of

__all__ = [
    "CSRF_COOKIE",
    "MANAGERS",
    "PEOPLE",
    "SESSION_COOKIE",
    "NeedsSignIn",
    "PageForbidden",
    "PageManager",
    "PagePerson",
    "WebGate",
    "WebManager",
    "WebPerson",
    "check_csrf",
    "clear_session",
    "csrf_token",
    "page_user",
    "safe_next",
    "set_csrf_cookie",
    "set_session",
    "web_user",
]

SESSION_COOKIE = "sl_session"
CSRF_COOKIE = "sl_csrf"
PEOPLE = (Role.admin, Role.analyst, Role.staff)
MANAGERS = (Role.admin, Role.analyst)  # customer-level pages: not for the shop floor


class NeedsSignIn(Exception):
    """A page was asked for without a valid session: the site answers with the login page."""

    def __init__(self, next_path: str, reason: str) -> None:
        super().__init__(reason)
        self.next_path, self.reason = next_path, reason


class PageForbidden(Exception):
    """A signed-in person asked for a page their role does not open."""

    def __init__(self, principal: Principal, roles: frozenset[Role]) -> None:
        super().__init__(f"role {principal.role.value!r} may not open this page")
        self.principal, self.roles = principal, roles


def _secure(request: Request) -> bool:
    forced = settings_of(request).web_cookie_secure
    return forced if forced is not None else request.url.scheme == "https"


def set_session(request: Request, response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )


def clear_session(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, secure=_secure(request), samesite="strict"
    )


def csrf_token(request: Request) -> str:
    """The browser's CSRF token (from its cookie), or a fresh one to set with the page."""
    current = request.cookies.get(CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(32)


def set_csrf_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        CSRF_COOKIE, token, path="/", httponly=True, secure=_secure(request), samesite="strict"
    )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # "null": a sandboxed or privacy-stripped cross-site form
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", request.url.netloc)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form that is not from our own page: 403, never a silent sign-in or out."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="cross-site form refused")
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="the form has expired or did not come from this site: reload and try again",
        )


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (never ``//evil.example``)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return value


def _session_principal(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = principal_from_credential(request, token)
    except HTTPException:
        return None
    return principal if principal.kind == "user" else None  # no API keys in a cookie


class WebGate:
    """Admits signed-in people of ``roles``. ``pages``: a page answers a missing session
    with the login form and a wrong role with a page saying so; a JSON route with
    401/403 like the API."""

    def __init__(self, roles: tuple[Role, ...], *, pages: bool) -> None:
        if not roles:
            raise ValueError("a dashboard route must allow at least one role")
        self.roles = frozenset(roles)
        self.pages = pages

    async def __call__(self, request: Request) -> Principal:
        principal = _session_principal(request)
        if principal is None:
            if self.pages:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                raise NeedsSignIn(target, "sign in to open the dashboard")
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, detail="not signed in (dashboard session cookie)"
            )
        if principal.role not in self.roles:
            if self.pages:
                raise PageForbidden(principal, self.roles)
            allowed = ", ".join(sorted(r.value for r in self.roles))
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role.value!r} may not do this (allowed: {allowed})",
            )
        if self.pages:
            # A bad query (``?page=0``) is refused after this gate has passed; the
            # refusal is then a page for this person, not the API's JSON (site.py).
            request.state.page_principal = principal
        return principal


def page_user(*roles: Role) -> Any:
    return Depends(WebGate(roles, pages=True))


def web_user(*roles: Role) -> Any:
    return Depends(WebGate(roles, pages=False))


PagePerson = Annotated[Principal, page_user(*PEOPLE)]
PageManager = Annotated[Principal, page_user(*MANAGERS)]
WebPerson = Annotated[Principal, web_user(*PEOPLE)]
WebManager = Annotated[Principal, web_user(*MANAGERS)]
