"""Keeps this process's in-memory candidate lists in step with what other processes did.

The projection owner applies paid orders and consent decisions to *its* candidate
store. With the store in memory, every other API worker (and every worker when a
separate ``storelens project`` runs the projections) holds its own copy that nothing
else touches, so a customer who withdrew personalization consent, or was erased
from the command line, kept getting personal answers from those workers until the
entry expired (``recommend_cache_ttl_s``, 10 minutes; found by a security review).

Each process with a memory store therefore follows the event log itself: every
``every_s`` it reads the paid orders and consent decisions written since it last
looked and applies them through the engine, exactly as the projection does (both are
idempotent: an entry keeps the order ids it counted, and a consent decision older
than the one held changes nothing). Erasures are not events; each one leaves a
``customer.erase`` audit row under a pseudonym, so on any new one the whole memory
store is dropped and rebuilt from the (now pseudonymised) tables on demand. Redis
needs none of this: there is one store, written by the projection.

Each step, with either store, also reloads the store data warm answers read (stock,
popularity, the catalogue) before it expires, so no request meets it expired
(:meth:`~storelens.recommend.shared_cache.SharedCache.refresh_due`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Protocol

from sqlalchemy import Connection, Engine, func, select

from storelens.privacy.audit import last_erasure
from storelens.privacy.subject import people_ids
from storelens.storage.eventlog import EventLog, StoredEvent
from storelens.storage.tables import identity_changes

__all__ = ["FOLLOWED_TYPES", "CandidateFollower"]

log = logging.getLogger(__name__)

FOLLOWED_TYPES = ("pos.order_paid", "consent.changed")
CHANGES_PER_STEP = 200
"""Identity changes handled per step: a full resolve can write thousands at once, and
each names people whose ids are looked up; the rest wait for the next steps."""


class _Engine(Protocol):
    def apply_events(self, conn: Connection, batch: list[StoredEvent]) -> None: ...

    def forget_everyone(self) -> int: ...

    def forget_people(self, customer_ids: Iterable[str]) -> int: ...

    def keep_shared_fresh(self, lead_s: float) -> int: ...


def _identity_changes(conn: Connection, after: int) -> tuple[int, set[str]]:
    """The newest identity change past ``after`` (merges, splits, unmerges) and every id
    of the people they touched, by the records' current links."""
    rows = conn.execute(
        select(
            identity_changes.c.id,
            identity_changes.c.customer_id,
            identity_changes.c.others,
            identity_changes.c.records,
        )
        .where(identity_changes.c.id > after)
        .order_by(identity_changes.c.id)
        .limit(CHANGES_PER_STEP)
    ).all()
    if not rows:
        return after, set()
    named: set[str] = set()
    for r in rows:
        named |= {r.customer_id, *(r.others or ()), *(r.records or ())}
    return int(rows[-1].id), people_ids(conn, named)


class CandidateFollower:
    """Applies new orders, consent decisions and erasures to one process's memory store."""

    def __init__(
        self,
        db: Engine,
        recommendations: _Engine,
        every_s: float = 0.5,
        batch: int = 1000,
        types: Sequence[str] = FOLLOWED_TYPES,
        *,
        follow_events: bool = True,
    ) -> None:
        self._db, self._reco = db, recommendations
        self._follow_events = follow_events  # False for Redis: the projection writes it
        self._log = EventLog(db)
        self._every, self._batch, self._types = every_s, batch, tuple(types)
        # Entries built from now on read the tables; only what comes later is news.
        self.position = self._log.head()
        with db.connect() as conn:
            self.erasures_seen = last_erasure(conn, after=0) or 0
            newest = conn.execute(select(func.max(identity_changes.c.id))).scalar()
            self.changes_seen = int(newest or 0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def step(self) -> int:
        """One look at the log and the audit trail; the events applied."""
        applied = 0
        # The store data warm answers read, reloaded before it expires (two steps
        # ahead): a burst after a quiet minute finds it fresh, not cold.
        self._reco.keep_shared_fresh(2 * self._every)
        with self._db.connect() as conn:
            erased = last_erasure(conn, after=self.erasures_seen)
            self.changes_seen, touched = _identity_changes(conn, self.changes_seen)
        if erased is not None:
            self.erasures_seen = erased
            dropped = self._reco.forget_everyone()
            log.info("an erasure elsewhere: %d cached candidate lists dropped", dropped)
        if touched:
            # A link can bring a decision made under another id (a withdrawal under the
            # web account now merged into the card): the lists rebuild from the tables.
            dropped = self._reco.forget_people(touched)
            log.info("identity changes: %d cached candidate lists dropped", dropped)
        if not self._follow_events:
            return applied
        while batch := self._log.read_after(self.position, self._batch, self._types):
            with self._db.connect() as conn:  # reads only: the lists live in memory
                self._reco.apply_events(conn, batch)
            self.position = batch[-1].seq
            applied += len(batch)
            if len(batch) < self._batch:
                break
        return applied

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="candidate-follower")
            self._thread.daemon = True
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.step()
            except Exception:  # a database hiccup must not end the following
                log.exception("following the event log for candidates failed; retrying")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
