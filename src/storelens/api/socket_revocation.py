"""Live sockets end when their person or key is revoked, not only when their token expires.

An HTTP request re-reads the caller's user row (through :mod:`storelens.api.auth_cache`)
or API-key row on every call, so disabling someone, deleting them, resetting their
password, changing their role or revoking a device's key locks them out at once. A
WebSocket is authenticated once, when it opens, and may then stay open for the token's
whole life (up to an hour), or for as long as the device likes with a key (keys do not
expire): without a second look, a fired employee's phone, or a device whose key was
revoked, would keep receiving data. So each socket remembers what it was admitted
under (:func:`standing_of`) and an :class:`Admission` compares that with the current
row the way the HTTP check does:

* a person (:class:`Standing`): exists, active, same token version (a role change
  bumps the version too);
* a key (:class:`KeyStanding`): exists, not revoked, same id, role, store and event
  types (:func:`storelens.accounts.key_grant`).

The comparison runs before every message is sent, so nothing reaches a revoked
principal, and every ``RECHECK_S`` seconds on the app's clock, so an idle socket
closes too. Where the app has a users signal (SQLite's ``data_version``, the same one
the token cache trusts) an unchanged signal means no row in *any* table can have
changed, the ``api_keys`` table included, and the read is skipped; elsewhere
(PostgreSQL) each check is one read by a unique key.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable

from sqlalchemy import Connection, Engine
from starlette.requests import HTTPConnection

from storelens.accounts import Role, key_grant, token_version
from storelens.api.auth import Principal
from storelens.api.auth_cache import SignedInCache
from storelens.api.websocket_auth import Clock

__all__ = [
    "MAX_TRUST_S",
    "RECHECK_S",
    "Admission",
    "KeyStanding",
    "Standing",
    "revocation",
    "standing_of",
]

RECHECK_S = 15.0
MAX_TRUST_S = 30.0
"""How long an unchanged signal spares the row read, as for HTTP (the signed-in
cache's limit): news the signal missed costs at most this (an attacker review found a
socket trusting it without end)."""


class Admission:
    """The row a socket was admitted under, and whether it still holds.

    Subclasses say how the row is read and whether what was admitted could hold at
    all; the signal that spares the read is shared, since one ``data_version`` covers
    every table of the file."""

    def __init__(
        self,
        engine: Engine,
        admitted: object | None,
        cache: SignedInCache | None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine, self._admitted, self._cache = engine, admitted, cache
        self._seen: object | None = None  # the signal when the row last matched
        self._seen_at = -math.inf  # when (``monotonic``): trusted for MAX_TRUST_S only
        self._monotonic = monotonic
        self._lock = threading.Lock()

    def _read(self, conn: Connection) -> object | None:
        raise NotImplementedError

    def _admissible(self) -> bool:
        return self._admitted is not None

    def holds(self) -> bool:
        """True while the row still reads as it did on admission (blocking: call it
        off the event loop)."""
        if not self._admissible():
            return False
        mark = None if self._cache is None else self._cache.mark()  # before the row
        started = self._monotonic()
        with self._lock:
            fresh = started - self._seen_at <= MAX_TRUST_S
            if mark is not None and mark == self._seen and fresh:
                return True
        with self._engine.connect() as conn:
            now = self._read(conn)
        if now != self._admitted:
            return False
        with self._lock:
            self._seen, self._seen_at = mark, started
        return True


class Standing(Admission):
    """A person's user row: exists, active, same role and token version."""

    def __init__(
        self,
        engine: Engine,
        username: str,
        admitted: tuple[Role, bool, int] | None,
        cache: SignedInCache | None = None,
    ) -> None:
        super().__init__(engine, admitted, cache)
        self._username = username

    def _admissible(self) -> bool:
        admitted = self._admitted
        return isinstance(admitted, tuple) and bool(admitted[1])

    def _read(self, conn: Connection) -> object | None:
        return token_version(conn, self._username)


class KeyStanding(Admission):
    """A device's API-key row: exists, not revoked, same id, role, store and types."""

    def __init__(
        self,
        engine: Engine,
        prefix: str | None,
        admitted: object | None,
        cache: SignedInCache | None = None,
    ) -> None:
        super().__init__(engine, admitted, cache)
        self._prefix = prefix

    def _admissible(self) -> bool:
        return self._prefix is not None and self._admitted is not None

    def _read(self, conn: Connection) -> object | None:
        return None if self._prefix is None else key_grant(conn, self._prefix)


def standing_of(conn: HTTPConnection, principal: Principal) -> Admission:
    """The admission to watch for ``principal``, read now, right after the credential
    was checked. The row read here must still be the one the check saw (same role,
    token version, key grant): a revocation landing between the two reads would
    otherwise become the baseline and the socket would outlive it (attacker review).
    When it differs, the admission returned never holds, and :func:`admit` refuses."""
    engine: Engine = conn.app.state.engine
    cache: SignedInCache | None = getattr(conn.app.state, "signed_in", None)
    if principal.kind == "api_key":
        prefix = principal.key_prefix
        with engine.connect() as db:
            granted = None if prefix is None else key_grant(db, prefix)
        seen = (principal.role, principal.store_scope, principal.event_types)
        if granted is not None and granted[1:] != seen:
            granted = None
        return KeyStanding(engine, prefix, granted, cache)
    with engine.connect() as db:
        admitted = token_version(db, principal.name)
    if admitted is not None and (
        admitted[0] != principal.role
        or (principal.token_version is not None and admitted[2] != principal.token_version)
    ):
        admitted = None
    return Standing(engine, principal.name, admitted, cache)


async def revocation(standing: Admission | None, clock: Clock, every_s: float = RECHECK_S) -> None:
    """Return once ``standing`` no longer holds, looking every ``every_s`` seconds of
    ``clock``; never when there is nothing to watch (None: a socket not admitted by
    :func:`standing_of`)."""
    if standing is None:
        await asyncio.Event().wait()
        return
    while True:
        await clock.sleep(every_s)
        if not await asyncio.to_thread(standing.holds):
            return
