"""The projections fed from the event log, and the loop that keeps them current.

Each projection is an event-log consumer with its own cursor, so adding one later
(ops metrics, alerts, profiles) replays the log from the start for it alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from storelens.cdp.records import CUSTOMER_TYPES, project_customers
from storelens.instore.processor import AlertSink, OpsProcessor
from storelens.privacy.consent import CONSENT_TYPES, project_consent
from storelens.privacy.retention import purge_raw_tracking
from storelens.sales import ORDER_TYPES, project_orders
from storelens.storage.eventlog import EventLog, Handler

__all__ = [
    "Projection",
    "ProjectionLoop",
    "TableProjection",
    "default_projections",
    "run_projections",
]

log = logging.getLogger(__name__)
PURGE_EVERY_S = 3600.0


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


def default_projections(on_alerts: AlertSink | None = None) -> list[Projection]:
    """A fresh set per process: the ops processor keeps its in-flight state in memory."""
    return [
        TableProjection("orders", ORDER_TYPES, project_orders),
        TableProjection("consent", CONSENT_TYPES, project_consent),
        TableProjection("customer-records", CUSTOMER_TYPES, project_customers),
        OpsProcessor(on_alerts=on_alerts),
    ]


def run_projections(
    event_log: EventLog, projections: Sequence[Projection] | None = None, batch: int = 5000
) -> dict[str, int]:
    """Bring every projection up to the head of the log; returns events handled by each."""
    return {p.name: p.run(event_log, batch) for p in projections or default_projections()}


class ProjectionLoop:
    """Runs :func:`run_projections` every ``interval`` seconds on a daemon thread, and
    the raw-tracking retention purge once an hour (when ``retention_days`` is set)."""

    def __init__(
        self,
        event_log: EventLog,
        interval: float = 1.0,
        retention_days: int | None = None,
        projections: Sequence[Projection] | None = None,
        identity_every_s: float | None = None,
    ) -> None:
        self.event_log, self.interval = event_log, interval
        self.identity_every_s = identity_every_s
        self._last_identity = time.monotonic()
        self.projections = list(projections or default_projections())
        self.retention_days = retention_days
        self._last_purge = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="projections", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                run_projections(self.event_log, self.projections)
            except Exception:  # keep serving; the next tick retries from the cursor
                log.exception("projection update failed")
            if self.retention_days and time.monotonic() - self._last_purge > PURGE_EVERY_S:
                self._last_purge = time.monotonic()
                try:
                    purge_raw_tracking(self.event_log.engine, self.retention_days)
                except Exception:
                    log.exception("retention purge failed")
            if (
                self.identity_every_s
                and time.monotonic() - self._last_identity > self.identity_every_s
            ):
                self._last_identity = time.monotonic()
                self._link_new_customers()
            self._stop.wait(self.interval)

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
