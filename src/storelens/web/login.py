"""Signing in and out of the dashboard: the API's password check, a cookie instead of a header.

The form posts to ``/login`` with a CSRF token; the password check, its throttle and
its audit rows are the API's own (:func:`storelens.api.routers.auth.sign_in`), so a
person locked out of one is locked out of both. A wrong password or a throttled
address gets the form back with the reason and the API's status (401, 429).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from storelens.api.auth import public
from storelens.api.deps import EngineDep, SettingsDep
from storelens.api.routers.auth import PASSWORD_MAX, USERNAME_MAX, sign_in
from storelens.web.rendering import render
from storelens.web.session import (
    PagePerson,
    check_csrf,
    clear_session,
    safe_next,
    set_session,
)

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def login_form(
    request: Request, next_path: str, *, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    return render(
        request,
        "login.html",
        {"next": safe_next(next_path), "error": error, "user": None, "menu": []},
        status_code=status_code,
    )


@router.get("/login", response_class=HTMLResponse, dependencies=[public()])
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return login_form(request, safe_next(next))


@router.post("/login", response_class=HTMLResponse, dependencies=[public()])
def login_submit(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=USERNAME_MAX)] = "",
    password: Annotated[str, Form(max_length=PASSWORD_MAX)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> HTMLResponse:
    check_csrf(request, csrf)
    if not username or not password:
        return login_form(request, next, error="Enter your username and password.", status_code=422)
    try:
        token = sign_in(request, username, password, engine, settings)
    except HTTPException as exc:
        message = (
            "Wrong username or password, or the account is disabled."
            if exc.status_code == 401
            else str(exc.detail)
        )
        return login_form(request, next, error=message, status_code=exc.status_code)
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session(request, response, token.access_token, token.expires_in)
    return response  # type: ignore[return-value]


@router.post("/logout", response_class=HTMLResponse)
def logout(
    request: Request, _: PagePerson, csrf: Annotated[str, Form(max_length=200)] = ""
) -> HTMLResponse:
    """Forget the session cookie. The token itself lives out its (short) lifetime; a
    password reset or disabling the account revokes it at once, as for the API."""
    check_csrf(request, csrf)
    response = RedirectResponse("/login", status_code=303)
    clear_session(request, response)
    return response  # type: ignore[return-value]
