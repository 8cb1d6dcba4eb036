"""Refuse a NUL character anywhere in a request's path, query string or body.

PostgreSQL text cannot hold U+0000, so a ``%00`` in a search term or a filter reached
the database and came back as a 500 there, while SQLite quietly matched nothing: the
same request meant two things on two backends. No store id, product category, name or
search term has a use for it, so it is refused before any route runs (path and query)
or as the body streams in (a raw NUL, or JSON's ``\u0000`` escape), as the
documented 422. Event batches are the exception: ``core.events`` refuses such an
event on its own, so one bad event never sinks its batch.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storelens.api.bodylimit import first_header

__all__ = ["NulGuard", "nul_locations"]

_MESSAGE = "must not contain a NUL character (U+0000)"
_BODY_NUL = (b"\x00", b"\\u0000")
_FORM_NUL = (*_BODY_NUL, b"%00")  # a form body percent-encodes it (sign-in)
_FORM = "application/x-www-form-urlencoded"
PER_ITEM_PATHS = frozenset({"/v1/events"})
"""Bodies whose items are validated one by one, NUL checks included."""
PHOTO_UPLOADS = re.compile(r"^/v1/(customers|notices)/[^/]+/faces$")
"""Multipart photo uploads: image bytes hold NULs; the route refuses them in its text
fields itself (``api/routers/faces.py``)."""


class NulInBody(HTTPException):
    def __init__(self) -> None:
        super().__init__(422, detail=[{"loc": ["body"], "msg": _MESSAGE, "type": "string_nul"}])


def nul_locations(path: str, query: bytes) -> list[list[str]]:
    """``loc`` lists of the path and the query parameters that hold a NUL."""
    found: list[list[str]] = []
    if "\x00" in path:
        found.append(["path"])
    text = query.decode("latin-1")
    if "\x00" in unquote(text):
        pairs = parse_qsl(text, keep_blank_values=True)
        names = sorted({name for name, value in pairs if "\x00" in name + value})
        found.extend(["query", name.replace("\x00", "\\0")] for name in names or ["?"])
    return found


class NulGuard:
    """ASGI middleware: a 422 for a NUL in the path or query, before routing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            found = nul_locations(scope.get("path", ""), scope.get("query_string", b""))
            if found and scope["type"] == "http":
                detail = [{"loc": loc, "msg": _MESSAGE, "type": "string_nul"} for loc in found]
                await JSONResponse({"detail": detail}, status_code=422)(scope, receive, send)
                return
            if found:  # a WebSocket is refused before it is accepted
                await send({"type": "websocket.close", "code": 1008})
                return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        content_type = first_header(scope, b"content-type") or ""
        if scope.get("path") in PER_ITEM_PATHS or (
            content_type.startswith("multipart/form-data")
            and PHOTO_UPLOADS.match(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        tail = b""  # the end of the previous chunk: an escape may straddle two chunks
        patterns = _FORM_NUL if content_type.startswith(_FORM) else _BODY_NUL

        async def checked() -> Message:
            nonlocal tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = tail + message.get("body", b"")
                if any(pattern in chunk for pattern in patterns):
                    raise NulInBody
                tail = chunk[-5:]
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, checked, tracked)
        except NulInBody as exc:
            if started:
                raise
            await JSONResponse({"detail": exc.detail}, status_code=422)(scope, receive, send)
