"""Close a keep-alive connection after about N requests, so that long-lived connections
spread over the workers again.

With several workers, all of them accept from one listening socket, and the worker
that accepts a connection answers every request on it for as long as the client keeps
it open. A client that holds a few connections for long (a shop's backend with a
connection pool, nginx's upstream keepalive, a load tester) can leave one worker with
most of them while the other idles. ``benchmarks/serving.py`` saw it: with wrk's four
connections on two workers, the recommendation route ran at one worker's rate in two
or three rounds of five (``ss`` showed 4/0 and 3/1 splits), and such a round halves
the capacity the second worker was bought for.

nginx closes a client's keep-alive connection after 1,000 requests
(``keepalive_requests``) for the same reason; uvicorn has no such limit. This
middleware adds ``Connection: close`` to a response with chance 1/N (N =
``STORELENS_KEEPALIVE_MAX_REQUESTS``, 1,000 by default, 0 to keep connections open),
so a connection serves N requests on average; the client then opens a new one, which
the worker free to accept first takes, the busier one less often. uvicorn honours the
header: it closes the connection once that response is sent.

Only a request without a body is closed this way: a response sent before the client
has finished sending a large body (a 401 or 404 to an 8 MB POST), followed by the close,
was lost by the client in a review's probe; a request with a body keeps its connection,
and the next body-less request on it may draw the close instead.

Drawn, not counted: a count per connection needs the connection's identity, which the
ASGI scope gives only as the client's address (reused once a connection closes), and
state that outlives connections the client closed. A draw costs one random number per
request; the rare chosen response pays for wrapping ``send``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["KeepAliveLimit"]

_CLOSE = (b"connection", b"close")


def _closing(send: Send) -> Send:
    """``send`` with ``Connection: close`` added to the response's headers (unless the
    app set a connection header of its own)."""

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"connection" for name, _ in headers):
                headers.append(_CLOSE)
            message = {**message, "headers": headers}
        await send(message)

    return sender


class KeepAliveLimit:
    """ASGI middleware: ``Connection: close`` on about one HTTP response in
    ``max_requests``. ``draw`` (uniform on [0, 1)) is injectable for tests."""

    def __init__(
        self,
        app: ASGIApp,
        max_requests: int,
        draw: Callable[[], float] = random.random,
    ) -> None:
        if max_requests < 1:
            raise ValueError("max_requests must be at least 1 (leave the middleware out for 0)")
        self.app = app
        self._chance = 1.0 / max_requests
        self._draw = draw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._draw() < self._chance and not _has_body(scope):
            send = _closing(send)
        await self.app(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    """Whether the request says a body follows (read only for a drawn request)."""
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False
