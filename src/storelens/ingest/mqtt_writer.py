"""The MQTT bridge's writer thread: received messages into the event log in micro-batches.

Each batch (N messages or T ms) is one transaction holding its valid events and its
dead letters; only then are its messages handed back to be acked. Failures that
waiting can fix (the database away or busy) keep the whole batch and retry it.

Every committed batch also leaves its audit rows, one per publishing device
(:mod:`storelens.ingest.mqtt_audit`), in the same transaction.

Bad input is data: anything that cannot become an event goes to ``dead_letters``
with the reason and is acked; one bad item in an array does not hold back its good
neighbours, and a message the database refuses is isolated instead of blocking
every batch after it. An event whose id already names a different event is a dead
letter too (its body kept, so it can be sent again under a new id), not a duplicate.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import exc as sa_exc

from storelens.core.errors import ID_CONFLICT_ERROR, FieldError
from storelens.core.events import Event
from storelens.core.retry import Backoff
from storelens.ingest.batch import Permit, RejectedItem, validate_indexed
from storelens.ingest.deadletters import record_dead_letter
from storelens.ingest.floor_plans import and_floor_plans
from storelens.ingest.mqtt_audit import CHANNEL, WriteAudit
from storelens.ingest.mqtt_messages import (
    DEFAULT_CLIENT_ID,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MQTT_TYPES,
    BridgeConfig,
    ParsedItem,
    ReceivedMessage,
    parse_message,
)
from storelens.storage.eventlog import EventLog

__all__ = ["CHANNEL", "BatchWriter", "StoreOutcome", "rejection_reason", "store_messages"]

log = logging.getLogger(__name__)

_IDLE_S = 0.1  # how often an idle writer looks up to see whether it should stop
_MAX_ERRORS_IN_REASON = 20
_TRANSIENT_NAMES = frozenset({"OperationalError", "InterfaceError"})


class BatchWriter:
    """The writer thread: takes messages from ``inbox``, commits them, puts acks on ``acks``.

    The network thread is the only other party: it fills ``inbox`` and sends the
    acks, so a slow database never stalls it. ``count`` adds to the bridge's stats.
    """

    def __init__(
        self, config: BridgeConfig, event_log: EventLog, count: Callable[..., None]
    ) -> None:
        self.config = config
        self.event_log = event_log
        self.inbox: queue.Queue[ReceivedMessage] = queue.Queue()
        self.acks: queue.SimpleQueue[list[ReceivedMessage]] = queue.SimpleQueue()
        self._count = count
        self._draining = threading.Event()
        self._abandon = threading.Event()
        self._thread = threading.Thread(
            target=self._write_loop, name="storelens-mqtt-writer", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Commit what is in the inbox, then end; if the database stays unreachable
        for ``timeout`` seconds, give up and leave the rest unacked."""
        self._draining.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("MQTT bridge: gave up committing after %.0fs; left unacked", timeout)
            self._abandon.set()
            self._thread.join(5)

    def _write_loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch:
                self._commit(batch)
            elif self._draining.is_set():
                return

    def _next_batch(self) -> list[ReceivedMessage]:
        try:
            batch = [self.inbox.get(timeout=_IDLE_S)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.config.flush_ms / 1000
        while len(batch) < self.config.batch_size:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or self._draining.is_set():
                    batch.append(self.inbox.get_nowait())
                else:
                    batch.append(self.inbox.get(timeout=remaining))
            except queue.Empty:
                break
        return batch

    def _commit(self, batch: list[ReceivedMessage]) -> None:
        """Store the batch, retrying while the database is away; then hand back acks."""
        backoff = Backoff(0.5, 30.0, jitter="equal")
        while True:
            try:
                outcome = store_messages(
                    self.event_log,
                    self.config.topic_prefix,
                    batch,
                    event_types=self.config.event_types,
                    max_items=self.config.max_items,
                    bridge=self.config.client_id,
                )
                break
            except Exception:
                self._count(store_failures=1)
                if self._abandon.is_set():
                    return
                log.exception("MQTT bridge: storing %d messages failed; retrying", len(batch))
                self._abandon.wait(backoff.next())
        self._count(
            appended=outcome.appended,
            duplicates=outcome.duplicates,
            dead_lettered=outcome.dead_lettered,
            conflicts=outcome.conflicts,
        )
        unstored = {id(m) for m in outcome.unstored}
        self.acks.put([m for m in batch if id(m) not in unstored])


# -- storing a batch -------------------------------------------------------------------


@dataclass(slots=True)
class StoreOutcome:
    """What storing a batch did; only ``unstored`` messages must be left unacked."""

    appended: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    conflicts: int = 0  # of the dead-lettered: an id that names a different stored event
    unstored: list[ReceivedMessage] = field(default_factory=list)  # not stored, not dead-lettered


def rejection_reason(item: ParsedItem, rejected: RejectedItem) -> str:
    """A dead letter's reason for an envelope that failed validation (errors capped)."""
    errors = rejected.errors
    shown = "; ".join(f"{e.loc}: {e.msg}" for e in errors[:_MAX_ERRORS_IN_REASON])
    if len(errors) > _MAX_ERRORS_IN_REASON:
        shown += f"; … and {len(errors) - _MAX_ERRORS_IN_REASON} more"
    name = f" {rejected.id}" if rejected.id else ""
    return f"{item.label}invalid event{name}: {shown}"


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying the whole batch (database away or busy), as opposed to a message
    the database will never accept. Raw driver errors count too: the PostgreSQL
    append path talks COPY to psycopg directly."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    # PEP 249 names these the same in every driver, and SQLAlchemy mirrors the names.
    return any(cls.__name__ in _TRANSIENT_NAMES for cls in type(exc).__mro__)


def _type_permit(event_types: frozenset[str]) -> Permit:
    """Refuses the types the bridge was not configured for, per item (a dead letter)."""

    def permit(event: Event) -> FieldError | None:
        if event.type in event_types:
            return None
        return FieldError(
            "type",
            f"the MQTT bridge does not take {event.type} events "
            "(STORELENS_MQTT_EVENT_TYPES); send them with an API key made for them",
            "forbidden",
        )

    return permit


def store_messages(
    event_log: EventLog,
    prefix: str,
    batch: Sequence[ReceivedMessage],
    *,
    event_types: frozenset[str] = DEFAULT_MQTT_TYPES,
    max_items: int = DEFAULT_MAX_ITEMS,
    bridge: str = DEFAULT_CLIENT_ID,
) -> StoreOutcome:
    """Store the batch in one transaction or, if the database refuses it, one by one.

    Events of a type outside ``event_types`` are dead-lettered, and so are heat grids
    that do not fit their store's floor plan and a message holding more than
    ``max_items`` events. Each transaction leaves one audit row per
    publishing device; ``bridge`` (the bridge's client id) is named in them. Raises on
    a transient failure: then nothing of the batch counts as stored.
    """
    permit = and_floor_plans(event_log.engine, _type_permit(event_types))
    try:
        return _store(event_log, prefix, batch, permit, max_items, bridge)
    except Exception as exc:
        if _is_transient(exc):
            raise
        log.warning("MQTT bridge: a batch was refused (%s); storing one by one", exc)
    total = StoreOutcome()
    for m in batch:
        try:
            one = _store(event_log, prefix, [m], permit, max_items, bridge)
        except Exception as exc:
            if _is_transient(exc):
                raise
            one = _dead_letter_refused(event_log, m, exc)
        total.appended += one.appended
        total.duplicates += one.duplicates
        total.dead_lettered += one.dead_lettered
        total.conflicts += one.conflicts
        total.unstored.extend(one.unstored)
    return total


def _dead_letter_refused(event_log: EventLog, m: ReceivedMessage, exc: Exception) -> StoreOutcome:
    reason = f"could not be stored: {type(exc).__name__}: {exc}".splitlines()[0][:2000]
    try:
        with event_log.engine.begin() as conn:
            record_dead_letter(conn, CHANNEL, m.topic, reason, m.payload)
    except Exception as again:
        if _is_transient(again):
            raise
        # Left unacked: the broker keeps it, and it shows up again after a restart.
        log.exception("MQTT bridge: cannot store or dead-letter a message on %s", m.topic)
        return StoreOutcome(unstored=[m])
    log.warning("MQTT dead letter on %s: %s", m.topic, reason)
    return StoreOutcome(dead_lettered=1)


def _store(
    event_log: EventLog,
    prefix: str,
    batch: Sequence[ReceivedMessage],
    permit: Permit,
    max_items: int,
    bridge: str,
) -> StoreOutcome:
    """One transaction: the batch's valid events, its dead letters and its audit rows
    (:mod:`storelens.ingest.mqtt_audit`), or nothing."""
    tally = WriteAudit(prefix, bridge)
    items: list[tuple[str, ParsedItem]] = []
    dead: list[tuple[str, str, bytes]] = []
    for m in batch:
        found, bad = parse_message(prefix, m.topic, m.payload, max_items)
        items.extend((m.topic, item) for item in found)
        dead.extend((m.topic, d.reason, d.body) for d in bad)
    for topic, _, _ in dead:
        tally.refused(topic)
    valid, rejected = validate_indexed([item.envelope for _, item in items], permit=permit)
    for r in rejected:
        topic, item = items[r.index]
        dead.append((topic, rejection_reason(item, r), item.body))
        tally.refused(topic, forbidden=any(e.type == "forbidden" for e in r.errors))
    outcome = StoreOutcome()
    with event_log.engine.begin() as conn:
        if valid:
            senders = [tally.device_name(items[i][0]) for i, _ in valid]
            result = event_log.append_in(conn, [e for _, e in valid], senders)
            outcome.appended = len(result.accepted)
            outcome.duplicates = len(result.duplicates)
            outcome.conflicts = len(result.conflicts)
            conflicted = {c.position for c in result.conflicts}
            for c in result.conflicts:  # dead letters in the same transaction as the append
                topic, item = items[valid[c.position][0]]
                conflict = RejectedItem(c.position, [ID_CONFLICT_ERROR], str(c.id))
                dead.append((topic, rejection_reason(item, conflict), item.body))
                tally.refused(topic)
            new = set(result.accepted)
            for position, (index, event) in enumerate(valid):
                if position in conflicted:
                    continue
                topic, item = items[index]
                if event.id in new:
                    new.discard(event.id)  # a second copy in the same batch is a duplicate
                    tally.stored(topic, item.envelope)
                else:
                    tally.duplicate(topic)
        outcome.dead_lettered = len(dead)
        for topic, reason, body in dead:
            record_dead_letter(conn, CHANNEL, topic, reason, body)
        tally.record(conn)
    for topic, reason, _ in dead:
        log.warning("MQTT dead letter on %s: %s", topic, reason[:500])
    return outcome
