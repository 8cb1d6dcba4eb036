"""Event time for the ops tracker: when the next minute with work is, and which jumps to trust.

Time-driven work (sweeps of stale tracks and orders, alert evaluation) used to run
once per event-time minute, so one event dated 2099 made the processor step through
millions of empty minutes inside one write transaction. Between two events nothing
changes but time, and what time alone can change is known in advance: a track or
order reaching its timeout, a shift left open for ``shift_max_s``, a handed-off order
leaving an alert window, a barista becoming idle for a rule's threshold, an alert
streak still counting. So after a minute has run, the tracker jumps straight to the
earliest of those deadlines; the minutes in between would have done nothing, which
keeps the facts and alerts exactly those of minute-by-minute stepping while the work
grows with events, not with minutes.

All of this is per store: each store has its own clock (:class:`StoreClock`, here
beside the deadlines it runs on), moved by its own events, and its minutes run on its
own deadlines.

A jump of a store's event time further ahead than ``TrackerConfig.max_time_jump_s``
waits for a second event of that store to confirm it (a store closed for a week
reopens with many events); an event far in the future that nothing confirms is
skipped, so it can neither sweep every open order away nor leave the store's
watermark stuck in 2099.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from storelens.instore.by_store import ByStore

__all__ = [
    "MINUTE",
    "RECENT_KEEP",
    "HeldEvent",
    "StoreClock",
    "ceil_minute",
    "floor_minute",
    "iso_or_none",
    "next_deadline",
    "ts_or_none",
]

MINUTE = timedelta(minutes=1)


class TrackerView(Protocol):
    """What the deadlines read of the tracker; a protocol, so this module stays below
    ``tracker.py`` in the import graph (the tracker imports the deadlines)."""

    @property
    def config(self) -> Any: ...  # TrackerConfig
    @property
    def free_since(self) -> ByStore[datetime]: ...
    @property
    def tracks(self) -> ByStore[Any]: ...
    @property
    def orders(self) -> ByStore[Any]: ...
    @property
    def shifts(self) -> ByStore[Any]: ...
    @property
    def recent(self) -> Mapping[str, list[tuple[datetime, float]]]: ...


RECENT_KEEP = timedelta(minutes=60)  # handed-off orders kept for the fulfillment alerts


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """An event far ahead of the watermark, waiting for a second one to confirm the jump."""

    type: str
    ts: datetime
    store_id: str | None
    subject: str | None
    payload: dict[str, Any]

    def as_state(self) -> list[Any]:
        return [self.type, self.ts.isoformat(), self.store_id, self.subject, self.payload]

    @classmethod
    def from_state(cls, raw: Iterable[Any] | None) -> HeldEvent | None:
        if not raw:
            return None
        type_, ts, store_id, subject, payload = raw
        return cls(type_, datetime.fromisoformat(ts), store_id, subject, payload)


@dataclass
class StoreClock:
    """One store's event time; only that store's events (and its quiet timer) move it.

    ``heard_at`` is the server's receive time of the store's latest event (``None``
    for events read from a file), which is what tells a quiet store from a live one."""

    watermark: datetime  # the store's latest event time
    next_tick: datetime  # the next of its minutes with work (see next_deadline)
    provisional: bool = True  # the watermark comes from one event so far
    held: HeldEvent | None = None  # far ahead of the watermark, unconfirmed
    heard_at: datetime | None = None

    @classmethod
    def start(cls, ts: datetime) -> StoreClock:
        return cls(ts, floor_minute(ts) + MINUTE)

    def as_state(self) -> list[Any]:
        held = self.held.as_state() if self.held else None
        return [
            iso_or_none(self.watermark),
            iso_or_none(self.next_tick),
            self.provisional,
            held,
            iso_or_none(self.heard_at),
        ]

    @classmethod
    def from_state(cls, raw: list[Any]) -> StoreClock:
        wm, nxt, provisional, held, heard = raw
        return cls(
            datetime.fromisoformat(wm),
            datetime.fromisoformat(nxt),
            bool(provisional),
            HeldEvent.from_state(held),
            ts_or_none(heard),
        )


def ts_or_none(value: str | None) -> datetime | None:
    """A snapshot's optional moment: absent (or empty) stays ``None``."""
    return datetime.fromisoformat(value) if value else None


def iso_or_none(value: datetime | None) -> str | None:
    """The snapshot form of an optional moment, the inverse of :func:`ts_or_none`."""
    return value.isoformat() if value else None


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def ceil_minute(ts: datetime) -> datetime:
    floor = floor_minute(ts)
    return floor if floor == ts else floor + MINUTE


def _earliest(candidates: Iterable[datetime], at: datetime, *, strictly: bool) -> datetime | None:
    """The first candidate still ahead of ``at`` (deadlines behind it are spent)."""
    best: datetime | None = None
    for d in candidates:
        if (d > at if strictly else d >= at) and (best is None or d < best):
            best = d
    return best


def _rule_deadlines(tracker: TrackerView, store: str) -> Iterable[datetime]:
    items = tracker.recent.get(store, [])
    for rule in tracker.config.rules_for(store):
        if rule.kind == "fulfillment_p90":
            window = timedelta(minutes=rule.window_min)
            yield from (t + window for t, _ in items)  # leaves the alert window
    yield from (t + RECENT_KEEP for t, _ in items)  # trimmed by the sweep


def _idle_deadlines(tracker: TrackerView, store: str) -> Iterable[datetime]:
    thresholds = [
        timedelta(seconds=rule.threshold)
        for rule in tracker.config.rules_for(store)
        if rule.kind == "idle_barista"
    ]
    for _, since in tracker.free_since.of(store):
        yield from (since + t for t in thresholds)


def next_deadline(tracker: TrackerView, at: datetime, store: str) -> datetime | None:
    """The earliest moment after the minute ``at`` of ``store``'s clock when time alone
    changes something in that store (each store has its own clock, so only its own
    deadlines count).

    ``None`` when nothing is pending: no later minute differs from ``at`` until an
    event arrives. A sweep closes what is strictly past its timeout, so a deadline
    equal to ``at`` still counts (it closes one minute later)."""
    config = tracker.config
    visit = timedelta(seconds=config.visit_timeout_s)
    stale = timedelta(seconds=config.stale_inside_s)
    order_timeout = timedelta(seconds=config.order_timeout_s)
    sweeps = [tr.last_seen + (stale if tr.inside else visit) for _, tr in tracker.tracks.of(store)]
    sweeps.extend(
        start + order_timeout
        for _, o in tracker.orders.of(store)
        if (start := o.paid_at or o.seen_at) is not None
    )
    shift_max = timedelta(seconds=config.shift_max_s)
    sweeps.extend(sh.start + shift_max for _, sh in tracker.shifts.of(store))
    sweeps.extend(_rule_deadlines(tracker, store))
    due = _earliest(sweeps, at, strictly=False)
    idle = _earliest(_idle_deadlines(tracker, store), at, strictly=True)
    if idle is not None and (due is None or idle < due):
        return idle
    return due
