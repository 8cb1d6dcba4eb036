"""The projections fed from the event log, and the loop that keeps them current.

Each projection is an event-log consumer with its own cursor, so adding one later
(ops metrics, alerts, profiles) replays the log from the start for it alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from storelens.cdp.records import CUSTOMER_TYPES, project_customers
from storelens.privacy.consent import CONSENT_TYPES, project_consent
from storelens.sales import ORDER_TYPES, project_orders
from storelens.storage.eventlog import EventLog, Handler

__all__ = ["PROJECTIONS", "Projection", "ProjectionLoop", "run_projections"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Projection:
    name: str
    types: Sequence[str]
    handler: Handler


PROJECTIONS: tuple[Projection, ...] = (
    Projection("orders", ORDER_TYPES, project_orders),
    Projection("consent", CONSENT_TYPES, project_consent),
    Projection("customer-records", CUSTOMER_TYPES, project_customers),
)


def run_projections(
    event_log: EventLog, projections: Sequence[Projection] = PROJECTIONS, batch: int = 5000
) -> dict[str, int]:
    """Bring every projection up to the head of the log; returns events handled by each."""
    return {
        p.name: event_log.consume(p.name, p.handler, types=p.types, batch=batch)
        for p in projections
    }


class ProjectionLoop:
    """Runs :func:`run_projections` every ``interval`` seconds on a daemon thread."""

    def __init__(self, event_log: EventLog, interval: float = 1.0) -> None:
        self.event_log, self.interval = event_log, interval
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
                run_projections(self.event_log)
            except Exception:  # keep serving; the next tick retries from the cursor
                log.exception("projection update failed")
            self._stop.wait(self.interval)
