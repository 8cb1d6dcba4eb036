"""The users signal on PostgreSQL: news of every change to ``users`` and ``api_keys``.

The signed-in cache (:mod:`storelens.api.auth_cache`) reuses a verified token while a
*signal* stays unchanged, and the signal must change whenever the users table may have
changed, in any process, without the writers' help. SQLite's ``PRAGMA data_version``
is that, for free. PostgreSQL had nothing as cheap, so every request read the user row
on the event loop: about 1.0 ms of a warm recommendation answer's 1.2 ms in-process,
against 0.12 ms for the whole answer on SQLite.

Here triggers on ``users`` and ``api_keys`` (the tables a token's or a socket's
standing is read from; migration ``0016_users_notify``) notify :data:`CHANNEL` after
every statement that changes them, whoever runs it (the API, the CLI, an operator's
raw ``UPDATE``), and a listener thread per process counts the notifications by
LISTEN. The signal is (the listener's connection number, the count):

* a change committed after a token was checked moves the count as soon as its
  notification arrives (milliseconds: it is sent at the commit), and the remembered
  token no longer matches: unlike SQLite's, this signal lags a commit by that much;
* while the listener is not connected and listening (starting, PostgreSQL down, the
  connection lost, the trigger missing or disabled), the signal is unknown, so nothing
  is remembered or reused and every request reads the user row as before;
* each new connection is a new number, so nothing checked before a reconnect matches
  after it (notifications sent meanwhile were lost);
* every :data:`CHECK_S` the listener sends itself a notification and expects it back
  (a transaction-pooling PgBouncer accepts LISTEN and delivers nothing), and checks
  that both triggers are there and fire ALWAYS (in replica-role sessions too: logical
  replication, ``pg_restore``); a trigger altered since the last check (disabled and
  enabled again, ``pg_restore --disable-triggers``) starts a new count, since writes
  in between went unheard; TCP keepalives bound how long a connection that died
  without an error goes unnoticed (about :data:`DEAD_AFTER_S`, so news can lag by
  that much then), and every remembered check is bounded by 30 s.

Connect it directly or through session pooling: under transaction pooling the probe
fails and nothing is cached.

One listener (one connection) serves every app of a process on the same database
(:class:`UsersNews`): the news is the database's, and a test process makes hundreds of
apps, which would each have held a connection of their own.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

__all__ = ["CHANNEL", "CHECK_S", "DEAD_AFTER_S", "TABLES", "PostgresUsersNews", "UsersNews"]

log = logging.getLogger(__name__)

CHANNEL = "storelens_users_changed"
"""What the triggers notify (the name of their function too)."""
TABLES = ("users", "api_keys")
CHECK_S = 5.0
"""How often the listener checks its connection and the trigger."""
DEAD_AFTER_S = 10
"""About how long a silently dead connection goes unnoticed (TCP keepalives)."""
RETRY_S = 1.0

_TRIGGERS = """
SELECT t.tgrelid::regclass::text, t.tgenabled, t.xmin::text
FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
WHERE t.tgrelid IN (to_regclass('users'), to_regclass('api_keys')) AND p.proname = %s
ORDER BY 1
"""


class PostgresUsersNews:
    """A :class:`~storelens.api.auth_cache.UsersSignal` for a PostgreSQL database.

    ``conninfo`` is a libpq connection string (no SQLAlchemy driver name). The listener
    starts on the first :meth:`current`: a process that never checks a token (the CLI)
    never listens."""

    def __init__(self, conninfo: str, check_s: float = CHECK_S) -> None:
        self._conninfo, self._check_s = conninfo, check_s
        self._lock = threading.Lock()
        self._connection = 0  # which connection the count belongs to
        self._heard = 0
        self._listening = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._backend_pid: int | None = None
        self._warned = False

    def current(self) -> object | None:
        if self._thread is None:
            self._start()
        with self._lock:
            return (self._connection, self._heard) if self._listening else None

    @property
    def backend_pid(self) -> int | None:
        """The listener's PostgreSQL backend (tests end it to drop the connection)."""
        return self._backend_pid

    def close(self) -> None:
        """Unknown from now on; the thread and its connection end within ``check_s``
        (it may be waiting for notifications; not waited for)."""
        self._stop.set()
        self._set_listening(False)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stop.is_set():
                return
            self._thread = threading.Thread(target=self._run, name="users-news", daemon=True)
        self._thread.start()

    def _set_listening(self, on: bool) -> None:
        with self._lock:
            if on:
                self._connection += 1
                self._heard = 0
            self._listening = on and not self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # PostgreSQL down, the connection lost
                if not self._stop.is_set():  # not the database dropped after close()
                    self._warn(f"listener lost PostgreSQL ({type(exc).__name__})")
            finally:
                self._set_listening(False)
                self._backend_pid = None
            self._stop.wait(RETRY_S)

    def _listen(self) -> None:
        import psycopg

        with psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(int(self._check_s), 2),
            keepalives=1,
            keepalives_idle=max(DEAD_AFTER_S // 2, 1),
            keepalives_interval=max(DEAD_AFTER_S // 4, 1),
            keepalives_count=2,
            tcp_user_timeout=DEAD_AFTER_S * 1000,
        ) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._backend_pid = conn.info.backend_pid
            triggers = self._triggers(conn)
            if triggers is None:
                self._warn("a trigger is missing or not ALWAYS enabled; tokens are not cached")
                self._stop.wait(self._check_s)
                return
            self._set_listening(True)  # after LISTEN: a change from now on is heard
            self._warned = False
            probes = 0
            while not self._stop.is_set():
                # A probe of our own each round: a connection that takes LISTEN but
                # delivers nothing (a transaction-pooling PgBouncer) is not trusted.
                probes += 1
                probe = f"probe-{probes}"
                conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, probe))
                probed = False
                for note in conn.notifies(timeout=self._check_s):
                    if note.payload == probe:
                        probed = True
                    elif not note.payload.startswith("probe-"):
                        with self._lock:
                            self._heard += 1
                    if self._stop.is_set():
                        return
                if not probed:
                    self._warn("the listener's own notification never came back")
                    return
                now = self._triggers(conn)  # also: the connection still answers
                if now is None:
                    self._warn("a trigger is gone or not ALWAYS enabled; tokens are not cached")
                    return
                if now != triggers:  # disabled and enabled again meanwhile: news lost
                    triggers = now
                    self._set_listening(True)  # a new count: nothing from before matches

    def _warn(self, what: str) -> None:
        """Once per outage, not once per retry (a database down would log every second)."""
        if not self._warned:
            log.warning("users news: %s", what)
        self._warned = True

    @staticmethod
    def _triggers(conn: Any) -> tuple[tuple[str, str, str], ...] | None:
        """The triggers' (table, state, row version), or None unless both are there and
        fire ALWAYS (``'A'``: in replica-role sessions too, such as logical replication
        or ``pg_restore``). The row version changes with every ALTER of a trigger."""
        rows = tuple((str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(_TRIGGERS, (CHANNEL,)))
        if len({r[0] for r in rows}) != len(TABLES) or any(r[1] != "A" for r in rows):
            return None
        return rows


_SHARED: dict[str, tuple[PostgresUsersNews, int]] = {}  # conninfo -> (listener, users)
_SHARED_LOCK = threading.Lock()


def _release(conninfo: str) -> None:
    """One app lets go. Run by a finalizer, it may come during a garbage collection on
    a thread that holds the lock (inside :class:`UsersNews`): then on a thread of its
    own, which waits for the lock (an attacker review found the deadlock)."""
    if not _SHARED_LOCK.acquire(blocking=False):
        threading.Thread(target=_release_locked, args=(conninfo, True), daemon=True).start()
        return
    _release_locked(conninfo, False)


def _release_locked(conninfo: str, acquire: bool) -> None:
    if acquire:
        _SHARED_LOCK.acquire()
    try:
        listener, users = _SHARED[conninfo]
        if users > 1:
            _SHARED[conninfo] = (listener, users - 1)
            return
        del _SHARED[conninfo]
    finally:
        _SHARED_LOCK.release()
    listener.close()


class UsersNews:
    """One app's hold on its process's listener for a database: a users signal. Closing
    it (or dropping it) lets the listener go once no app holds it."""

    def __init__(self, conninfo: str) -> None:
        with _SHARED_LOCK:
            held = _SHARED.get(conninfo)
            self.listener = held[0] if held else PostgresUsersNews(conninfo)
            _SHARED[conninfo] = (self.listener, (held[1] if held else 0) + 1)
        self._release = weakref.finalize(self, _release, conninfo)

    def current(self) -> object | None:
        return self.listener.current()

    def close(self) -> None:
        self._release()  # once: a finalizer runs at most one time
