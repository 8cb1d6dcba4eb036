"""The staff app: one mobile page, its script, style, PWA manifest and service worker.

The files are public (a phone must load the page to show the sign-in form); what
they show comes from the API, which admits staff only. They are served with a strict
Content-Security-Policy (scripts and styles from this origin only, no inline code),
so a customer's name that somehow carried markup could never run as script.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from storelens.api.auth import public

__all__ = ["STAFF_APP_FILES", "router"]

router = APIRouter(tags=["staff app"], include_in_schema=False, dependencies=[public()])

STAFF_APP_FILES: dict[str, str] = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "manifest.webmanifest": "application/manifest+json",
    "sw.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; worker-src 'self'; manifest-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # the service worker keeps the offline copy
}


def _read(name: str) -> bytes:
    return files("storelens.staff").joinpath("app", name).read_bytes()


@router.get("/staff")
def staff_page() -> Response:
    """The app's one page (install it from the browser menu: it is a PWA)."""
    return Response(_read("index.html"), media_type="text/html; charset=utf-8", headers=_HEADERS)


@router.get("/staff/{name}")
def staff_asset(
    name: Literal["app.js", "app.css", "manifest.webmanifest", "sw.js", "icon.svg"],
) -> Response:
    headers = dict(_HEADERS)
    if name == "sw.js":
        headers["Service-Worker-Allowed"] = "/staff"
    return Response(_read(name), media_type=STAFF_APP_FILES[name], headers=headers)
