"""The projections fed from the event log, and the loop that keeps them current.

Each projection is an event-log consumer with its own cursor, so adding one later
(ops metrics, alerts, profiles) replays the log from the start for it alone.

One owner per process: inside the API server the :class:`ProjectionLoop` runs every
projection, and a request that needs fresh read models (a customer import) wakes it
and waits (:meth:`ProjectionLoop.catch_up`) instead of building processors of its
own. A CLI in another process may still call :func:`run_projections`: the consumer
lock serialises batches across processes, and the ops processor reloads its snapshot
whenever the stored cursor is not the one it committed last.

Each projection fails alone: the failure is logged with its log position, retried
after a capped exponential backoff, and the others carry on; ``/health`` and
``/metrics`` show each one's lag and last error (:func:`projection_health`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from storelens.cdp.records import CUSTOMER_TYPES, project_customers
from storelens.core.retry import backoff_ceiling
from storelens.instore.processor import AlertSink, OpsProcessor
from storelens.predict.forgetting import forget_withdrawn
from storelens.privacy.consent import CONSENT_TYPES, project_consent
from storelens.privacy.retention import purge_impressions, purge_raw_tracking
from storelens.recommend.blend_scores import forget_withdrawn as forget_withdrawn_blend
from storelens.recommend.engine import RecommendationEngine
from storelens.sales import ORDER_TYPES, project_orders
from storelens.storage.consumers import consumer_lag
from storelens.storage.eventlog import EventLog, Handler

__all__ = [
    "CATCH_UP_TIMEOUT_S",
    "RECOMMEND_PROJECTION",
    "PassListener",
    "Projection",
    "ProjectionHealth",
    "ProjectionLoop",
    "ProjectionStatus",
    "TableProjection",
    "catch_up",
    "default_projections",
    "projection_health",
    "retry_delay",
    "run_projections",
]

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0
CATCH_UP_TIMEOUT_S = 30.0  # how long a request waits for the loop before answering anyway
RECOMMEND_PROJECTION = "recommend-candidates"
RETRY_BASE_S = 1.0
RETRY_CAP_S = 300.0
Clock = Callable[[], datetime]
PassListener = Callable[[Mapping[str, int]], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Projection(Protocol):
    """Something that keeps a read model current from the log under its own cursor."""

    @property
    def name(self) -> str: ...

    def run(self, event_log: EventLog, batch: int = 5000) -> int: ...


@dataclass(frozen=True, slots=True)
class TableProjection:
    """A stateless projection: a handler that writes rows for each batch of events."""

    name: str
    types: Sequence[str]
    handler: Handler

    def run(self, event_log: EventLog, batch: int = 5000) -> int:
        return event_log.consume(self.name, self.handler, types=self.types, batch=batch)


def default_projections(
    on_alerts: AlertSink | None = None,
    recommendations: RecommendationEngine | None = None,
    shift_max_hours: float | None = None,
) -> list[Projection]:
    """A fresh set per process: the ops processor keeps its in-flight state in memory.

    ``recommendations`` (the API server's engine) adds the projection that applies each
    paid order and consent decision to its customer's candidates; only the server runs
    it, because the candidates it updates live in the server's memory or Redis.
    ``shift_max_hours`` is the server's own ``Settings`` value, so its ops processor
    closes forgotten shifts at the bound its staff notices use (None: the process's)."""
    projections: list[Projection] = [
        TableProjection("orders", ORDER_TYPES, project_orders),
        TableProjection("consent", CONSENT_TYPES, project_consent),
        TableProjection("customer-records", CUSTOMER_TYPES, project_customers),
        TableProjection("predict-withdrawals", CONSENT_TYPES, forget_withdrawn),
        TableProjection("recommend-withdrawals", CONSENT_TYPES, forget_withdrawn_blend),
        OpsProcessor(on_alerts=on_alerts, shift_max_hours=shift_max_hours),
    ]
    if recommendations is not None:
        projections.append(
            TableProjection(
                RECOMMEND_PROJECTION, (*ORDER_TYPES, *CONSENT_TYPES), recommendations.apply_events
            )
        )
    return projections


def retry_delay(failures: int, base: float = RETRY_BASE_S, cap: float = RETRY_CAP_S) -> float:
    """Seconds to wait after ``failures`` failures in a row: doubling, capped, and safe
    from float overflow however long a projection keeps failing. No jitter: one loop
    in one process retries, so there is no crowd to spread."""
    return backoff_ceiling(failures - 1, base, 2.0, cap)


def _where(event_log: EventLog, name: str) -> tuple[int, str]:
    """The cursor of ``name`` and a description of the event after it, for a log line."""
    try:
        position = event_log.position(name)
        nxt = event_log.read_after(position, 1)
    except Exception:  # the database itself may be what failed
        return -1, "position unknown"
    if not nxt:
        return position, f"log position {position}"
    ev = nxt[0]
    return position, f"log position {position} (next event seq {ev.seq}, id {ev.id}, {ev.type})"


def run_projections(
    event_log: EventLog, projections: Sequence[Projection] | None = None, batch: int = 5000
) -> dict[str, int]:
    """Bring every projection up to the head of the log; returns events handled by each.

    One failing projection does not stop the others: each failure is logged with its
    position, and the first is raised once all have had their turn."""
    counts: dict[str, int] = {}
    failure: Exception | None = None
    for p in projections or default_projections():
        try:
            counts[p.name] = p.run(event_log, batch)
        except Exception as exc:
            _, where = _where(event_log, p.name)
            log.exception("projection %s failed at %s", p.name, where)
            failure = failure or exc
    if failure is not None:
        raise failure
    return counts


@dataclass(frozen=True, slots=True)
class ProjectionStatus:
    """What the loop knows about one projection (in this process, since it started)."""

    name: str
    failures: int = 0  # in a row; 0 once it runs cleanly again
    errors_total: int = 0
    last_error: str | None = None  # exception type and message, never event payloads
    last_error_at: datetime | None = None
    last_error_position: int | None = None
    retry_at: datetime | None = None

    @property
    def failing(self) -> bool:
        return self.failures > 0


@dataclass(frozen=True, slots=True)
class ProjectionHealth:
    name: str
    position: int
    lag_events: int
    lag_seconds: float
    status: ProjectionStatus


def _error_kind(exc: Exception) -> str:
    """What ``/health`` says a projection failed with: the exception's class, and the
    driver's for a database error. Not its text: ``/health`` is public, and an error's
    text quotes values ("invalid input syntax …: \"ada@…\"", PostgreSQL's DETAIL
    line), which a review read there. The server log has the rest."""
    orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
    kind = type(exc).__name__
    return kind if orig is None else f"{kind} ({type(orig).__name__})"


class ProjectionLoop:
    """Runs every projection every ``interval`` seconds on a daemon thread (sooner when
    woken), and the retention purges once an hour: raw tracking when ``retention_days``
    is set, shown lists when ``impressions_keep_days`` is. ``now`` is the wall clock for
    backoff and error times (injectable)."""

    def __init__(
        self,
        event_log: EventLog,
        interval: float = 1.0,
        retention_days: int | None = None,
        projections: Sequence[Projection] | None = None,
        identity_every_s: float | None = None,
        rescore_every_s: float | None = None,
        rescore: Callable[[], None] | None = None,
        *,
        impressions_keep_days: int | None = None,
        batch: int = 5000,
        now: Clock = _utcnow,
        retry_base_s: float = RETRY_BASE_S,
        retry_cap_s: float = RETRY_CAP_S,
    ) -> None:
        self.event_log, self.interval, self.batch = event_log, interval, batch
        self.identity_every_s = identity_every_s
        self._last_identity = time.monotonic()
        self.rescore_every_s, self._rescore = rescore_every_s, rescore
        self._last_rescore = time.monotonic()
        self.projections = list(projections or default_projections())
        self.retention_days, self.impressions_keep_days = retention_days, impressions_keep_days
        self.now = now
        self.retry_base_s, self.retry_cap_s = retry_base_s, retry_cap_s
        self._status = {p.name: ProjectionStatus(p.name) for p in self.projections}
        self._last_purge = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pass_lock = threading.Lock()  # one pass at a time, whoever runs it
        self._passes = threading.Condition()
        self._started = self._finished = 0  # passes begun / completed
        self._thread: threading.Thread | None = None
        self._listeners: list[PassListener] = []

    def add_listener(self, listener: PassListener) -> None:
        """Call ``listener`` with the events each projection handled after every pass
        that handled any, on the loop's thread: live pages wake on new facts instead of
        polling the database. A listener must be quick and must not raise."""
        self._listeners.append(listener)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    def statuses(self) -> list[ProjectionStatus]:
        with self._passes:
            return [self._status[p.name] for p in self.projections]

    def wake(self) -> None:
        """Start the next pass now instead of at the end of the interval."""
        self._wake.set()

    def catch_up(self, timeout: float = CATCH_UP_TIMEOUT_S) -> bool:
        """Wake the loop and wait for a pass that began after this call; True when every
        projection then stood at the head as of this call. A failing projection ends
        the wait with False at the end of that pass, not at the timeout."""
        head = self.event_log.head()
        if not self.running:  # no thread (e.g. lifespan not run): do the pass here
            self.run_once()
        else:
            with self._passes:
                wanted = self._started + 1
                self._wake.set()
                self._passes.wait_for(lambda: self._finished >= wanted, timeout)
        return all(self.event_log.position(p.name) >= head for p in self.projections)

    def run_once(self) -> dict[str, int]:
        """One pass: each projection not waiting out a backoff runs up to the head."""
        counts: dict[str, int] = {}
        with self._pass_lock:
            with self._passes:
                self._started += 1
            try:
                for p in self.projections:
                    status = self._status[p.name]
                    if status.retry_at is not None and self.now() < status.retry_at:
                        continue
                    try:
                        counts[p.name] = p.run(self.event_log, self.batch)
                    except Exception as exc:
                        self._failed(p.name, exc)
                    else:
                        if status.failures:
                            log.info("projection %s recovered", p.name)
                        self._set(replace(status, failures=0, retry_at=None))
            finally:
                with self._passes:
                    self._finished += 1
                    self._passes.notify_all()
        if any(counts.values()):
            for listener in list(self._listeners):
                try:
                    listener(counts)
                except Exception:  # a listener's fault never stops the projections
                    log.exception("projection pass listener failed")
        return counts

    def _set(self, status: ProjectionStatus) -> None:
        with self._passes:
            self._status[status.name] = status

    def _failed(self, name: str, exc: Exception) -> None:
        status = self._status[name]
        failures = status.failures + 1
        delay = retry_delay(failures, self.retry_base_s, self.retry_cap_s)
        position, where = _where(self.event_log, name)
        at = self.now()
        log.error(
            "projection %s failed at %s (%d in a row); retrying in %.0f s",
            name,
            where,
            failures,
            delay,
            exc_info=exc,
        )
        self._set(
            replace(
                status,
                failures=failures,
                errors_total=status.errors_total + 1,
                last_error=_error_kind(exc),
                last_error_at=at,
                last_error_position=position,
                retry_at=at + timedelta(seconds=delay),
            )
        )

    def purge(self) -> None:
        """The retention purges (raw tracking, then shown lists), each where its days
        are set; one that fails is logged and does not keep the other from running."""
        engine = self.event_log.engine
        for what, days, purge in (
            ("raw tracking", self.retention_days, purge_raw_tracking),
            ("shown lists", self.impressions_keep_days, purge_impressions),
        ):
            if days:
                try:
                    purge(engine, days)
                except Exception:
                    log.exception("retention purge of %s failed", what)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.run_once()
            except Exception:  # only the bookkeeping can land here: keep serving
                log.exception("projection pass failed")
            due = self.retention_days or self.impressions_keep_days
            if due and time.monotonic() - self._last_purge > PURGE_EVERY_S:
                self._last_purge = time.monotonic()
                self.purge()
            if (
                self.identity_every_s
                and time.monotonic() - self._last_identity > self.identity_every_s
            ):
                self._last_identity = time.monotonic()
                self._link_new_customers()
            if self.rescore_due():
                self._last_rescore = time.monotonic()
                self._rescore_customers()
            self._wake.wait(self.interval)

    def rescore_due(self) -> bool:
        """Whether the scheduled scoring run (predictive analytics) is due; off when unset."""
        return bool(
            self.rescore_every_s
            and self._rescore is not None
            and time.monotonic() - self._last_rescore > self.rescore_every_s
        )

    def _rescore_customers(self) -> None:
        if self._rescore is None:
            return
        try:
            self._rescore()
        except ImportError:  # the predict extra is not installed: nothing to score with
            log.info("scoring skipped: the 'predict' extra is not installed")
        except Exception:
            log.exception("scheduled customer scoring failed")

    def _link_new_customers(self) -> None:
        """Incremental identity resolution when new records wait and a model is trained."""
        from storelens.cdp.resolution import has_model, resolve, unresolved_count

        engine = self.event_log.engine
        try:
            with engine.connect() as conn:
                if not unresolved_count(conn) or not has_model(conn):
                    return
            resolve(engine, "incremental", actor="server")
        except ImportError:  # the cdp extra is not installed: nothing to link with
            log.info("identity resolution skipped: the 'cdp' extra is not installed")
        except Exception:
            log.exception("incremental identity resolution failed")


def catch_up(
    event_log: EventLog, loop: ProjectionLoop | None, timeout: float = CATCH_UP_TIMEOUT_S
) -> bool:
    """Fresh read models for a caller: the owning loop's when this process has one,
    else a run of the projections right here (safe across processes, see above)."""
    if loop is not None:
        return loop.catch_up(timeout)
    try:
        run_projections(event_log)
    except Exception:  # logged with its position; the caller's own work is done
        return False
    return True


def projection_health(
    event_log: EventLog, loop: ProjectionLoop | None, now: datetime | None = None
) -> list[ProjectionHealth]:
    """Lag (events and seconds behind the head) and the last error of each projection.

    Errors are known only to the process whose loop runs them; without a loop the
    lag of the default projections is still read from the database."""
    statuses = (
        loop.statuses()
        if loop is not None
        else [ProjectionStatus(p.name) for p in default_projections()]
    )
    with event_log.engine.connect() as conn:
        lags = consumer_lag(conn, [s.name for s in statuses], now or _utcnow())
    return [
        ProjectionHealth(s.name, lag.position, lag.events, lag.seconds, s)
        for s, lag in zip(statuses, lags, strict=True)
    ]
