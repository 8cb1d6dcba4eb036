"""The operations processor: the tracker fed from the event log (stream) or a file (batch).

Stream: each batch's facts, alerts, tracker state and log position commit in one
transaction, so a processor killed at any point resumes from the last commit with
the same state, and never counts an event twice. Batch: the same tracker over an
ordered list of events. Both produce the same facts for the same events.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection, Engine

from storelens.config import get_settings
from storelens.core.dayparts import day_bounds
from storelens.core.errors import FieldError, UnreadableRecords
from storelens.core.layout import StoreLayout, load_layout
from storelens.instore.alerts import DEFAULT_RULES, AlertChange, AlertRule
from storelens.instore.facts import OpsFacts, OrderFact, ShiftFact
from storelens.instore.report import ops_report, tracked_days
from storelens.instore.store import (
    cursor_position,
    load_facts,
    load_state,
    save_state,
    store_rules,
    write_alerts,
    write_facts,
    zone_kinds,
)
from storelens.instore.tracker import OpsTracker, TrackerConfig
from storelens.storage.eventlog import EventLog, StoredEvent

__all__ = [
    "FileEvent",
    "OpsProcessor",
    "batch_facts",
    "facts_from_db",
    "read_event_file",
    "report_from_db",
    "report_from_file",
]

log = logging.getLogger(__name__)

NAME = "ops"
AlertSink = Callable[[list[dict[str, Any]]], None]


class OpsProcessor:
    """An event-log consumer named ``ops``; ``on_alerts`` is told after each commit.

    Its tracker lives in memory between batches, which is only right while nobody
    else moves the ``ops`` cursor. Each batch therefore compares the stored cursor,
    read under the consumer lock in the batch's own transaction, with the position
    this object last committed; when another process (a CLI, a second worker) has
    moved it, the tracker is rebuilt from the snapshot committed with that cursor
    instead of carrying on from stale state and counting orders twice.

    ``shift_max_hours`` bounds a shift that never clocks out; by default the process's
    settings (``Settings.shift_max_hours``, which the staff notices read too), so the
    server's loop and a CLI run over the same log close the same shifts."""

    name = NAME
    types: tuple[str, ...] = ()  # every event moves event time forward, not only ops events

    def __init__(
        self,
        rules: Sequence[AlertRule] = DEFAULT_RULES,
        on_alerts: AlertSink | None = None,
        shift_max_hours: float | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.on_alerts = on_alerts
        self.shift_max_hours = shift_max_hours
        self.tracker: OpsTracker | None = None
        self.reloads = 0  # snapshots loaded from the database (first load included)
        self._committed: int | None = None  # the cursor this object last committed
        self._pending_position: int | None = None
        self._pending: list[dict[str, Any]] = []
        self._reload_config = True

    def handle(self, conn: Connection, batch: list[StoredEvent]) -> None:
        stored = cursor_position(conn, self.name)
        if self.tracker is None or stored != self._committed:
            self.tracker = None  # someone else moved the cursor: our state is stale
            self._reload_config = True
        if self.tracker is None or self._reload_config:
            if self.shift_max_hours is None:
                self.shift_max_hours = get_settings().shift_max_hours
            config = TrackerConfig(
                zone_kinds=zone_kinds(conn),
                alert_rules=self.rules,
                store_rules=store_rules(conn),
                shift_max_s=self.shift_max_hours * 3600,
            )
            if self.tracker is None:
                self.tracker = OpsTracker.from_state(config, load_state(conn, NAME))
                self.reloads += 1
            self.tracker.config = config  # layouts and rules edited since the last pass
            self._reload_config = False
        tracker = self.tracker
        write_facts(conn, tracker.apply_all(batch))
        changes, tracker.alerts = tracker.alerts, []
        self._pending.extend(write_alerts(conn, changes))
        for held in tracker.skipped:
            now = tracker.clock(held.store_id) if held.store_id is not None else None
            log.warning(
                "ops: skipped a %s event dated %s for store %s: far ahead of the store's "
                "event time (%s) and no later event of the store confirmed the jump",
                held.type,
                held.ts.isoformat(),
                held.store_id,
                now.isoformat() if now else "none",
            )
        tracker.skipped.clear()
        if tracker.retired:
            log.info("ops: quiet stores closed out and forgotten: %s", tracker.retired)
            tracker.retired.clear()
        save_state(conn, NAME, tracker.state())
        # ``types`` is empty, so the batch ends at the position consume() commits.
        self._pending_position = batch[-1].seq

    def reset(self) -> None:
        """The transaction rolled back: forget in-memory state, reload on the next batch."""
        self.tracker = None
        self._committed = self._pending_position = None
        self._pending.clear()

    def committed(self) -> None:
        if self._pending_position is not None:
            self._committed, self._pending_position = self._pending_position, None
        if self._pending and self.on_alerts is not None:
            self.on_alerts(list(self._pending))
        self._pending.clear()

    def run(self, event_log: EventLog, batch: int = 5000, max_batches: int | None = None) -> int:
        """Consume until the log is exhausted (or ``max_batches``); returns events handled."""
        handled = done = 0
        self._reload_config = True
        while max_batches is None or done < max_batches:
            before = event_log.position(self.name)
            try:
                handled += event_log.consume(
                    self.name, self.handle, types=self.types, batch=batch, max_batches=1
                )
            except Exception:
                self.reset()
                raise
            self.committed()
            done += 1
            if event_log.position(self.name) == before:
                break
        return handled


# -- batch --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileEvent:
    type: str
    ts: datetime
    store_id: str | None
    subject: str | None
    payload: dict[str, Any]
    received_at: datetime | None = None  # a file has none: no store counts as quiet


_BAD_LINES_SHOWN = 10


def read_event_file(path: Path) -> list[FileEvent]:
    """Store events of a JSON Lines file, in file order (the order a log would hold them).

    Events of every type are kept, like the stream processor sees them: any event
    moves event time forward, which drives timeouts and alert evaluation. Each line is
    validated as the API would: a line that is not an event fails the whole file,
    naming the lines (a new user's report crashed on one with a KeyError)."""
    from pydantic import ValidationError

    from storelens.core.events import event_adapter

    out, bad = [], []
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                raw = orjson.loads(line)
                event = event_adapter.validate_python(raw)
            except orjson.JSONDecodeError as exc:
                bad.append(FieldError(f"line {number}", str(exc)[:300], "invalid_json"))
                continue
            except ValidationError as exc:
                reason = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                )
                bad.append(FieldError(f"line {number}", reason[:300], "invalid_event"))
                continue
            if event.store_id is None:
                continue
            # The payload as written (the validated model would turn its prices into
            # decimals the facts do not expect); the validation only vouches for it.
            out.append(FileEvent(event.type, event.ts, event.store_id, event.subject,
                                 raw["payload"]))  # fmt: skip
    if bad:
        shown = "; ".join(f"{e.loc}: {e.msg}" for e in bad[:_BAD_LINES_SHOWN])
        more = f" (and {len(bad) - _BAD_LINES_SHOWN} more)" if len(bad) > _BAD_LINES_SHOWN else ""
        raise UnreadableRecords(
            f"{path.name}: {len(bad)} line(s) are not events: {shown}{more}", bad
        )
    return out


def _kinds(layouts: Iterable[StoreLayout]) -> dict[str, dict[str, str]]:
    return {lay.store_id: {z.id: z.kind for z in lay.zones} for lay in layouts}


def batch_facts(
    events: Iterable[Any],
    layouts: Iterable[StoreLayout],
    rules: Sequence[AlertRule] = DEFAULT_RULES,
) -> tuple[OpsFacts, list[AlertChange]]:
    """All facts of a finished period, open things closed as incomplete or timed out."""
    tracker = OpsTracker(TrackerConfig(zone_kinds=_kinds(layouts), alert_rules=tuple(rules)))
    facts = OpsFacts()
    facts.add(tracker.apply_all(events))
    facts.add(tracker.finish())
    return facts, tracker.alerts


def _queue_zones(layout: StoreLayout | None) -> list[str]:
    return [z.id for z in layout.zones_of_kind("queue")] if layout else ["queue"]


def report_from_file(
    path: Path,
    layout_path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    detail: bool = False,
) -> dict[str, Any]:
    layout = load_layout(layout_path)
    facts, changes = batch_facts(read_event_file(path), [layout])
    report = ops_report(
        facts,
        store_id=layout.store_id,
        since=since,
        until=until,
        timezone=layout.timezone,
        queue_zones=_queue_zones(layout),
        detail=detail,
    )
    report["alerts"] = [
        {"rule_id": c.rule_id, "state": c.state, "at": c.at.isoformat(), "message": c.message}
        for c in changes
        if c.store_id == layout.store_id
        and (since is None or c.at >= since)
        and (until is None or c.at < until)
    ]
    return report


def facts_from_db(
    engine: Engine,
    store_id: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> OpsFacts:
    """Stored facts plus what is still open in the processor: orders (as incomplete
    orders) and shifts, counted up to the store's own latest event time (never another
    store's, which may run ahead). A period that reaches today then means "so far" on
    every page: the API's report, the Operations page and Today agree, and a barista
    still on shift has hours behind their drinks (without them the period's drinks per
    barista-hour counted their drinks over everyone else's hours). A batch report
    (``batch_facts``) counts a file's open shifts the same way."""
    facts = load_facts(engine, store_id, since, until)
    with engine.connect() as conn:
        state = load_state(conn, NAME)
    if state:
        tracker = OpsTracker.from_state(TrackerConfig(zone_kinds={}), state)
        facts.orders.extend(
            OrderFact(
                o.store_id,
                o.order_id,
                o.channel,
                o.register_id,
                o.paid_at,
                o.started_at,
                o.ready_at,
                None,
                o.barista,
                o.drinks,
                o.items,
            )
            for o in tracker.orders.values()
            if o.store_id == store_id
        )
        now = tracker.clock(store_id)
        if now is not None and (since is None or now > since):
            facts.shifts.extend(  # only shifts the period overlaps: not in last week's report
                ShiftFact(s, staff, shift.start, now)
                for (s, staff), shift in tracker.shifts.of(store_id)
                if shift.start < now and (until is None or shift.start < until)
            )
    return facts


def report_from_db(
    engine: Engine,
    store_id: str,
    *,
    timezone: str = "UTC",
    queue_zones: Sequence[str] = ("queue",),
    since: datetime | None = None,
    until: datetime | None = None,
    detail: bool = False,
) -> dict[str, Any]:
    """The report from :func:`facts_from_db` over ``[since, until)``."""
    facts = facts_from_db(engine, store_id, since, until)
    # Which days tracked fulfillment is a property of whole local days: a window that
    # cuts a day reads that day's orders once more, whole (a review saw a walk-out in
    # an hour's window counted as untracked).
    tz = ZoneInfo(timezone)
    lo, hi = _whole_days(since, tz), _whole_days(until, tz, end=True)
    whole = facts if (lo, hi) == (since, until) else facts_from_db(engine, store_id, lo, hi)
    return ops_report(
        facts,
        store_id=store_id,
        since=since,
        until=until,
        timezone=timezone,
        queue_zones=queue_zones,
        detail=detail,
        tracked=tracked_days(whole.orders, tz),
    )


def _whole_days(moment: datetime | None, tz: ZoneInfo, *, end: bool = False) -> datetime | None:
    """The local midnight at or before ``moment`` (``end``: at or after it)."""
    if moment is None:
        return None
    start, next_day = day_bounds(moment.astimezone(tz).date(), tz)
    return (next_day if end and start != moment else start).astimezone(UTC)
