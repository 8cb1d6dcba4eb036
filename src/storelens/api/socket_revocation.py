"""Live sockets end when their person is revoked, not only when their token expires.

An HTTP request re-reads the caller's user row (through :mod:`storelens.api.auth_cache`)
on every call, so disabling someone, deleting them, resetting their password or
changing their role locks them out at once. A WebSocket is authenticated once, when it
opens, and may then stay open for the token's whole life (up to an hour): without a
second look, a fired employee's phone would keep receiving arrivals. So each socket
remembers the user row it was admitted under (:func:`standing_of`) and
:class:`Standing` compares it with the current row the way the HTTP check does
(exists, active, same token version; a role change bumps the version too):

* before every message is sent, so nothing reaches a revoked person;
* every ``RECHECK_S`` seconds on the app's clock, so an idle socket closes too.

Where the app has a users signal (SQLite's ``data_version``, the same one the token
cache trusts) an unchanged signal means no user row can have changed and the read is
skipped; elsewhere (PostgreSQL) each check is one primary-key read.

API keys have no user row; revoking a key is checked when the socket opens only.
"""

from __future__ import annotations

import asyncio
import threading

from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from storelens.accounts import Role, token_version
from storelens.api.auth import Principal
from storelens.api.auth_cache import SignedInCache
from storelens.api.websocket_auth import Clock

__all__ = ["RECHECK_S", "Standing", "revocation", "standing_of"]

RECHECK_S = 15.0


class Standing:
    """The user row a socket was admitted under, and whether it still holds."""

    def __init__(
        self,
        engine: Engine,
        username: str,
        admitted: tuple[Role, bool, int] | None,
        cache: SignedInCache | None = None,
    ) -> None:
        self._engine, self._username, self._admitted = engine, username, admitted
        self._cache = cache
        self._seen: object | None = None  # the users signal when the row last matched
        self._lock = threading.Lock()

    def holds(self) -> bool:
        """True while the person exists, is active and has the version and role they
        were admitted with (blocking: call it off the event loop)."""
        if self._admitted is None or not self._admitted[1]:
            return False
        mark = None if self._cache is None else self._cache.mark()  # before the row
        with self._lock:
            if mark is not None and mark == self._seen:
                return True
        with self._engine.connect() as conn:
            now = token_version(conn, self._username)
        if now != self._admitted:
            return False
        with self._lock:
            self._seen = mark
        return True


def standing_of(conn: HTTPConnection, principal: Principal) -> Standing | None:
    """The standing to watch for ``principal`` (None for API keys), read now: call it
    right after the credential was checked, so the row is the one it was checked against."""
    if principal.kind != "user":
        return None
    engine: Engine = conn.app.state.engine
    with engine.connect() as db:
        admitted = token_version(db, principal.name)
    cache: SignedInCache | None = getattr(conn.app.state, "signed_in", None)
    return Standing(engine, principal.name, admitted, cache)


async def revocation(standing: Standing | None, clock: Clock, every_s: float = RECHECK_S) -> None:
    """Return once ``standing`` no longer holds, looking every ``every_s`` seconds of
    ``clock``; never for API keys (None)."""
    if standing is None:
        await asyncio.Event().wait()
        return
    while True:
        await clock.sleep(every_s)
        if not await asyncio.to_thread(standing.holds):
            return
