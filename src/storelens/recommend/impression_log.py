"""Shown lists, written to the impressions table off the request path, in batches.

Writing one answer's rows inside the request cost an INSERT and a commit per call
(on SQLite a journal sync, and with several workers a wait for the write lock),
about a third of a warm answer. Requests now put their rows on a bounded queue and
return; one thread per process writes whatever has gathered in one statement.

Nothing is dropped: a full queue makes the request write its own rows (slower, not
lost), :meth:`ImpressionLog.close` writes what is left at shutdown (and an exit
handler does for a process that never called it). An access request reads queued
rows with the written ones (:func:`queued_for`); an erasure drops the queued rows of
its subjects and leaves a mark (:func:`forget_all`): a write that already held their
rows deletes them again once it has committed. Waiting for that write instead would
deadlock on SQLite, where the erasure's transaction holds the write lock the writer
needs, and the rows would land after the erasure's delete.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from collections import deque
from typing import Any

from sqlalchemy import Engine, delete

from storelens.storage.tables import recommend_impressions

__all__ = ["ImpressionLog", "flush_all", "forget_all", "queued_for"]

log = logging.getLogger(__name__)
_LIVE: weakref.WeakSet[ImpressionLog] = weakref.WeakSet()


class ImpressionLog:
    """A bounded queue of impression rows and the thread that writes them.

    ``every_s`` is how long rows may wait; ``max_rows`` bounds the queue (past it,
    :meth:`add` writes synchronously). The thread starts on the first :meth:`add`."""

    def __init__(self, engine: Engine, every_s: float = 0.2, max_rows: int = 50_000) -> None:
        self._engine, self._every, self._max = engine, every_s, max_rows
        self._rows: deque[dict[str, Any]] = deque()
        self._lock = threading.Lock()  # guards _rows and the thread's start
        self._write_lock = threading.Lock()  # one writer at a time: order kept
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._forgotten: set[str] = set()  # erased while a write held their rows
        _LIVE.add(self)

    def add(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        with self._lock:
            if self._stopped.is_set() or len(self._rows) + len(rows) > self._max:
                overflow = True
            else:
                overflow = False
                self._rows.extend(rows)
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._run, name="impression-log", daemon=True
                    )
                    self._thread.start()
        if overflow:  # back-pressure: the caller pays for its own write
            self.flush()
            with self._write_lock:
                self._write(rows)

    def full(self, rows: int) -> bool:
        """Whether adding ``rows`` rows now would write inline instead of queueing them."""
        with self._lock:
            return self._stopped.is_set() or len(self._rows) + rows > self._max

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def queued(self, customer_ids: set[str]) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rows if r["customer_id"] in customer_ids]

    def forget(self, customer_ids: set[str]) -> int:
        """Drop these customers' queued rows; a write under way deletes theirs after it."""
        with self._lock:
            keep = [r for r in self._rows if r["customer_id"] not in customer_ids]
            dropped = len(self._rows) - len(keep)
            self._rows = deque(keep)
            if self._write_lock.locked():
                self._forgotten |= customer_ids
        return dropped

    def _write(self, batch: list[dict[str, Any]]) -> None:
        """Insert ``batch`` (the caller holds the write lock), then delete the rows of
        anyone erased meanwhile: their erasure's delete may have run before this commit."""
        with self._engine.begin() as conn:
            conn.execute(recommend_impressions.insert(), batch)
        with self._lock:
            late = self._forgotten & {r["customer_id"] for r in batch}
            self._forgotten.clear()
        if late:
            column = recommend_impressions.c.customer_id
            with self._engine.begin() as conn:
                conn.execute(delete(recommend_impressions).where(column.in_(sorted(late))))

    def flush(self) -> int:
        """Write every queued row now; the number written."""
        with self._write_lock:
            with self._lock:
                batch = list(self._rows)
                self._rows.clear()
            if batch:
                try:
                    self._write(batch)
                except Exception:
                    with self._lock:  # put them back, oldest first, for the next try
                        gone, self._forgotten = self._forgotten, set()
                        back = [r for r in batch if r["customer_id"] not in gone]
                        self._rows.extendleft(reversed(back))
                    raise
            return len(batch)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self._every)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # a database hiccup: the rows stay queued, retried next tick
                log.exception("writing impressions failed; retrying")

    def close(self) -> None:
        """Stop the thread and write what is left (the server's shutdown calls this)."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        self._wake.set()
        if thread is not None:
            thread.join(timeout=10)
        self.flush()


def flush_all() -> None:
    """Write every queued row of every log in this process."""
    for impressions in list(_LIVE):
        try:
            impressions.flush()
        except Exception:  # at exit: say so, do not hide the other logs' rows
            log.exception("impressions left unwritten")


def queued_for(customer_ids: set[str]) -> list[dict[str, Any]]:
    """Rows of these customers not written yet, in every log of this process."""
    return [row for impressions in list(_LIVE) for row in impressions.queued(customer_ids)]


def forget_all(customer_ids: set[str]) -> int:
    return sum(impressions.forget(customer_ids) for impressions in list(_LIVE))


atexit.register(flush_all)
