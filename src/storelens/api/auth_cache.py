"""Verified bearer tokens remembered between requests, forgotten the moment users change.

Checking a person's token used to cost a signature check and a read of their user row
on every request: the read is what makes disabling someone, deleting them, changing
their role or resetting their password take effect at once, in every worker. Here a
token that passed both is remembered with the users-table *signal* seen before the
row was read, and reused only while the signal is unchanged, the token has not
expired, and at most ``max_age_s`` has passed (a backstop, not the mechanism).

The signal must change whenever the users table may have changed, in this process or
any other, without the writers' help, so a raw ``UPDATE users`` (a test, an operator
with ``sqlite3``) counts as much as ``storelens users disable``:

* SQLite: ``PRAGMA data_version`` on a connection of our own. SQLite changes it when
  any *other* connection commits to the file, so one cheap statement (a few
  microseconds, no table read) sees every committed write by every worker and every
  CLI run. On the event loop one read serves a run of ready callbacks, which is still
  after every request that run serves was sent (see :meth:`SqliteDataVersion.current`).
  It changes on any write (impressions, events), not only to users; each change costs
  one row read per person on their next request.
* PostgreSQL: with ``signed_in_cache_postgres`` on, triggers on ``users`` and
  ``api_keys`` notify every change and a listener thread counts the notifications
  (:mod:`storelens.api.users_news`): no statement per request, but a change reaches
  the count milliseconds after its commit, not at once, so it is off by default and
  the row is read per request.

A signal that fails (the file is gone, the database locked past its timeout) means
"unknown", and an unknown signal never matches, so the row is read.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Engine

from storelens.accounts import Role

__all__ = ["SignedIn", "SignedInCache", "SqliteDataVersion", "UsersSignal", "users_signal"]

log = logging.getLogger(__name__)


class UsersSignal(Protocol):
    def current(self) -> object | None:
        """A value that differs after any committed write; None when it cannot be read."""

    def close(self) -> None: ...


class SqliteDataVersion:
    """``PRAGMA data_version`` of a SQLite file, on a connection that never writes.

    On an event loop the value is read once per run of the loop's ready callbacks, not
    once per request (:meth:`current`)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # ``data_version`` is per connection and starts afresh on a new one: a value read
        # on an earlier connection must never equal one read on a later connection, or a
        # mark taken before a reconnect would match after a write (attacker review).
        self._generation = 0
        self._held: tuple[asyncio.AbstractEventLoop, object] | None = None
        self.reads = 0  # statements run: how tests see what the hold saves

    def current(self) -> object | None:
        """The signal, as of a moment after every request this call can serve was sent.

        Off an event loop (the threadpool, the CLI) that is now: the statement runs.
        In a task on a loop, the value read by the first call in a run of ready
        callbacks serves every call until ``call_soon`` lets it go at the start of the
        loop's next run. What makes that safe is order, not time: a request's task is
        created when its bytes have been read and first runs from the ready queue, so
        if it was created after the value was read it is queued behind the release and
        reads afresh; if before, its bytes arrived before the value was read, so a
        commit the value misses ended after that request was sent: the two were
        concurrent, and either order is correct. Precondition for callers on a loop:
        check a credential in a task queued after its bytes arrived (uvicorn's task
        per request; a WebSocket's handshake), never from a protocol callback or a task
        that reads a credential from a buffer after it woke; those would see the value
        as of the run's first read. Protocol callbacks and eager task factories read
        afresh. Under wrk one run serves several requests, and the statement (with its
        hand-over of the GIL) was a tenth of a warm recommendation's cost."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._read()
        if asyncio.current_task(loop) is None or loop.get_task_factory() is not None:
            # Not in a task queued behind the release: a protocol callback, which
            # uvloop runs straight from the socket read, or a task factory that may run
            # a new task at once (eager tasks, Python 3.12+). A review found both.
            return self._read()
        held = self._held
        if held is not None and held[0] is loop:
            return held[1]
        value = self._read()
        if value is not None:
            self._held = (loop, value)
            loop.call_soon(self._let_go, loop)
        return value

    def _let_go(self, loop: asyncio.AbstractEventLoop) -> None:
        held = self._held
        if held is not None and held[0] is loop:
            self._held = None

    def _read(self) -> object | None:
        with self._lock:
            self.reads += 1
            try:
                if self._conn is None:
                    # Autocommit: the connection never holds a read transaction open.
                    # No busy wait: this runs on the event loop, and a busy file only
                    # means "unknown" (the user row is read instead).
                    self._conn = sqlite3.connect(
                        self._path, check_same_thread=False, isolation_level=None, timeout=0
                    )
                    self._generation += 1
                row = self._conn.execute("PRAGMA data_version").fetchone()
                generation = self._generation
            except sqlite3.OperationalError as exc:
                log.debug("users signal unreadable (%s): reading the user row", exc)
                return None
            except sqlite3.Error as exc:
                log.warning("users signal unreadable (%s): reading user rows", exc)
                self.close_locked()
                return None
        return None if row is None else (generation, int(row[0]))

    def close_locked(self) -> None:
        self._held = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


def users_signal(engine: Engine, *, postgres: bool = False) -> UsersSignal | None:
    """The signal for ``engine``'s database, or None where there is none (no caching):
    an in-memory SQLite that no second connection can see, PostgreSQL unless
    ``postgres`` (setting ``signed_in_cache_postgres``: news lags a commit by
    milliseconds), another database."""
    url = engine.url
    if url.get_backend_name() == "postgresql" and postgres:
        from storelens.api.users_news import UsersNews

        return UsersNews(url.set(drivername="postgresql").render_as_string(hide_password=False))
    if url.get_backend_name() != "sqlite":
        return None
    path = url.database or ""
    if not path or path == ":memory:" or path.startswith("file:") or "mode=memory" in path:
        return None
    return SqliteDataVersion(path)


@dataclass(frozen=True, slots=True)
class SignedIn:
    """What a verified token and a current user row established."""

    username: str
    role: Role
    expires_at: datetime
    exp: float  # the token's ``exp`` claim, Unix seconds
    version: int | None = None  # the user row's token version the token was checked against


class SignedInCache:
    """Token → :class:`SignedIn`, valid while the users signal stays the same.

    ``wall`` is the clock tokens expire by (Unix seconds), ``monotonic`` the one the
    backstop age is measured with; tests inject both."""

    def __init__(
        self,
        signal: UsersSignal | None,
        *,
        max_age_s: float = 30.0,
        max_entries: int = 4096,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.signal = signal
        self._max_age, self._max = max_age_s, max_entries
        self._wall, self._monotonic = wall, monotonic
        self._entries: dict[str, tuple[SignedIn, object, float]] = {}
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.signal is not None

    def mark(self) -> object | None:
        """The signal now: read it *before* the user row, and hand it to :meth:`put`, so a
        write committed in between changes the signal and the entry is never used."""
        return None if self.signal is None else self.signal.current()

    def get(self, token: str) -> SignedIn | None:
        """The remembered sign-in for ``token``, or None: unknown, expired, too old, or
        users may have changed since it was established."""
        if self.signal is None:
            return None
        with self._lock:
            hit = self._entries.get(token)
        if hit is None:
            return None
        signed_in, seen, at = hit
        if self._wall() >= signed_in.exp or self._monotonic() - at > self._max_age:
            self._drop(token)
            return None
        now = self.signal.current()
        if now is None or now != seen:
            self._drop(token)
            return None
        return signed_in

    def put(self, token: str, signed_in: SignedIn, mark: object | None) -> None:
        if self.signal is None or mark is None:
            return
        with self._lock:
            self._entries.pop(token, None)
            self._entries[token] = (signed_in, mark, self._monotonic())
            while len(self._entries) > self._max:
                del self._entries[next(iter(self._entries))]

    def close(self) -> None:
        """Forget everything and close the signal's connection (the server's shutdown)."""
        with self._lock:
            self._entries.clear()
        if self.signal is not None:
            self.signal.close()

    def _drop(self, token: str) -> None:
        with self._lock:
            self._entries.pop(token, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
