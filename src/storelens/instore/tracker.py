"""The operations tracker: events in log order in, closed facts out.

It holds only what is still in flight (open orders, people inside zones, open
shifts), so its state is small, serialisable, and snapshotted together with the
log cursor; a restarted processor resumes exactly where the last commit left it.
Everything time-based runs on event time, and on each store's own: a store's clock
(:class:`StoreClock`, its watermark is the latest timestamp of that store's events)
moves only with that store's events. One clock for the chain let a device at one
store, up to five minutes ahead (the skew ingest accepts) or mis-set far ahead, run
every other store's minutes early: alerts fired before their time, open orders and
tracks were swept, dashboards showed another store's "now". The same events in the
same order give the same facts and the same alerts whether they arrive in one batch
or a thousand, and a store's facts and alerts are those it would have alone.

The one clock no device can set is the server's: the time the log received each
event. It decides when a store has gone quiet (nothing received from it for
``quiet_store_s``); such a store's own clock is then run on by that much (timeouts
close its orders and tracks as its next event would have) and, once nothing of it
is left in flight, forgotten, so a store that closes, or an id used once, does not
stay in memory and in every snapshot for good.

This module is the time-driven half. What each event does to the open records is
``shopfloor.py`` (which :class:`OpsTracker` builds on), the records themselves and
the snapshot's stored layout are ``inflight.py``, and each store's clock with the
deadlines it jumps between is ``eventtime.py``. ``StoreClock``, ``store_time`` and
``OpsEvent`` are still importable from here, where callers have always found them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from storelens.instore.alerts import (
    AlertChange,
    AlertRule,
    RuleState,
    Snapshot,
    evaluate_rules,
    missed_clock_out,
    missed_clock_out_cleared,
)
from storelens.instore.by_store import ByStore
from storelens.instore.eventtime import (
    MINUTE,
    RECENT_KEEP,
    HeldEvent,
    StoreClock,
    ceil_minute,
    floor_minute,
    next_deadline,
)
from storelens.instore.facts import Fact, ShiftFact
from storelens.instore.inflight import InFlight, OpenShift, read_state, store_time, write_state
from storelens.instore.shopfloor import STAFF_ZONE_S, OpsEvent, ShopFloor, ZoneKinds

__all__ = ["OpsEvent", "OpsTracker", "StoreClock", "TrackerConfig", "store_time"]


@dataclass(frozen=True)
class TrackerConfig:
    zone_kinds: ZoneKinds
    visit_timeout_s: float = 1800.0  # a track in no zone, silent this long, has left
    stale_inside_s: float = 4 * 3600.0  # a track "inside" a zone this long was lost
    order_timeout_s: float = 4 * 3600.0  # a paid order never handed off is incomplete
    # A shift open this long with no clock-out lost its clock-out (Settings.shift_max_hours,
    # the bound the staff notices use for who is on shift).
    shift_max_s: float = 16 * 3600.0
    alert_rules: tuple[AlertRule, ...] = ()  # for stores without rules of their own
    store_rules: Mapping[str, tuple[AlertRule, ...]] = field(default_factory=dict)
    # An event further ahead of the watermark than this moves time only when the next
    # event confirms the jump (see eventtime.py); one stray far-future event is skipped.
    max_time_jump_s: float = 24 * 3600.0
    # Server time (when the log received its events) after a store's last event when
    # the store counts as quiet: its clock runs on by as much (at least the longest
    # timeout) and, with nothing left in flight, it is forgotten.
    quiet_store_s: float = 24 * 3600.0
    # A customer track this long in a staff-only zone is staff (shopfloor.STAFF_ZONE_S).
    staff_zone_s: float = STAFF_ZONE_S

    def rules_for(self, store_id: str) -> tuple[AlertRule, ...]:
        return self.store_rules.get(store_id, self.alert_rules)


def _received(ev: OpsEvent) -> datetime | None:
    """When the server received ``ev`` (log events carry it; file events do not)."""
    value = getattr(ev, "received_at", None)
    return value if isinstance(value, datetime) else None


class OpsTracker(ShopFloor):
    """What events did on the floor (:class:`ShopFloor`), run on each store's own time:
    timeouts, alerts, quiet stores, and the snapshot a restart resumes from."""

    def __init__(self, config: TrackerConfig) -> None:
        super().__init__(config.zone_kinds, config.staff_zone_s)
        self.config = config
        self.firing: ByStore[RuleState] = ByStore()
        self.clocks: dict[str, StoreClock] = {}  # one per store; nothing is chain-wide
        self.heard: datetime | None = None  # latest server receive time seen
        self._quiet_check: datetime | None = None  # next server minute to look for quiet stores
        self._max_jump = timedelta(seconds=config.max_time_jump_s)
        self.alerts: list[AlertChange] = []  # raised/cleared since last drained
        self.missed: ByStore[datetime] = ByStore()  # shifts expired unclosed, by staff
        self.skipped: list[HeldEvent] = []  # far-future events nothing confirmed; drained
        self.retired: list[str] = []  # stores forgotten after going quiet; drained
        self.ticks = 0  # minutes evaluated since this object was built (not persisted)

    # -- clocks ------------------------------------------------------------------------

    def clock(self, store_id: str) -> datetime | None:
        """``store_id``'s event time: its latest event's (``None`` if unseen or forgotten)."""
        clock = self.clocks.get(store_id)
        return clock.watermark if clock is not None else None

    # -- feeding -----------------------------------------------------------------------

    def apply_all(self, events: Iterable[OpsEvent]) -> list[Fact]:
        out: list[Fact] = []
        jump = self._max_jump
        for ev in events:
            store = ev.store_id
            if store is None:
                continue
            received = _received(ev)
            if received is not None:
                self._hear(store, received, out)
            clock = self.clocks.get(store)
            if clock is not None and (clock.held is not None or ev.ts - clock.watermark > jump):
                self._far_ahead(clock, ev, out)
            else:
                self._apply(ev, out)
            if received is not None:
                clock = self.clocks[store]
                if clock.heard_at is None or received > clock.heard_at:
                    clock.heard_at = received
        return out

    def _apply(self, ev: OpsEvent, out: list[Fact]) -> None:
        ts, store = ev.ts, ev.store_id or ""
        clock = self.clocks.get(store)
        if clock is None:
            clock = self.clocks[store] = StoreClock.start(ts)
        elif clock.provisional and clock.watermark - ts > self._max_jump:
            # The store's very first event was far ahead of everything after it: start
            # over from this one (nothing has ticked yet, so no minute ran on bad time).
            clock.watermark, clock.next_tick, clock.provisional = (
                ts,
                floor_minute(ts) + MINUTE,
                False,
            )
        elif ts > clock.watermark:
            clock.watermark, clock.provisional = ts, False
            if ts >= clock.next_tick:
                self._tick(store, clock, ts, out)
        handler = self._handlers.get(ev.type)
        if handler is not None:
            handler(ev, out)
        # The event may have changed what a minute sees: the next one must run.
        if clock.next_tick - clock.watermark > MINUTE:
            clock.next_tick = floor_minute(clock.watermark) + MINUTE

    def _far_ahead(self, clock: StoreClock, ev: OpsEvent, out: list[Fact]) -> None:
        """Hold an event far ahead of its store's watermark until the store's next event
        confirms the jump."""
        held, clock.held = clock.held, None
        far = ev.ts - clock.watermark > self._max_jump
        if held is not None:
            if far and abs(ev.ts - held.ts) <= self._max_jump:
                self._apply(held, out)  # two events agree: the store's time did move on
                self._apply(ev, out)
                return
            self.skipped.append(held)
        if far:
            clock.held = HeldEvent(ev.type, ev.ts, ev.store_id, ev.subject, ev.payload)
        else:
            self._apply(ev, out)

    def _tick(self, store: str, clock: StoreClock, ts: datetime, out: list[Fact]) -> None:
        """Run every minute of ``store`` up to ``ts`` that can change something."""
        rules = self.config.rules_for(store)
        while clock.next_tick <= ts:
            at = clock.next_tick
            self.ticks += 1
            self._sweep(store, at, out)
            snap = self._snapshot(store, at)
            if snap is not None and rules:
                self.alerts.extend(evaluate_rules(rules, [snap], self.firing))
            clock.next_tick = self._after(store, at, ts)

    def _after(self, store: str, at: datetime, ts: datetime) -> datetime:
        """The next minute of ``store`` to run after ``at`` on the way to ``ts``: the
        following one while one of its alert streaks counts, else the first with a
        deadline (or past ``ts``)."""
        nxt = at + MINUTE
        if nxt > ts or any(st.streak for _, st in self.firing.of(store)):
            return nxt
        due = next_deadline(self, at, store)
        return max(nxt, ceil_minute(due) if due is not None else floor_minute(ts) + MINUTE)

    # -- quiet stores --------------------------------------------------------------------

    def _hear(self, store: str, received: datetime, out: list[Fact]) -> None:
        """Server time moved: once per server minute, retire the stores (other than
        ``store``, which just spoke) nothing was received from for ``quiet_store_s``."""
        if self.heard is None or received > self.heard:
            self.heard = received
        if self._quiet_check is not None and received < self._quiet_check:
            return
        self._quiet_check = floor_minute(received) + MINUTE
        cut = received - timedelta(seconds=self.config.quiet_store_s)
        for other, c in list(self.clocks.items()):
            if other != store and c.heard_at is not None and c.heard_at < cut:
                self._retire(other, c, out)

    def _horizon(self) -> timedelta:
        """How far a quiet store's clock is run on: past every timeout and window, so
        nothing it holds is still waiting for time."""
        cfg = self.config
        longest = max(
            cfg.quiet_store_s,
            cfg.visit_timeout_s,
            cfg.stale_inside_s,
            cfg.order_timeout_s,
            cfg.shift_max_s,
            RECENT_KEEP.total_seconds(),
        )
        return timedelta(seconds=longest) + MINUTE

    def _retire(self, store: str, clock: StoreClock, out: list[Fact]) -> None:
        """Run a quiet store's own clock on as its next event would have (its orders,
        tracks and shifts time out, its alerts clear on its own time), then forget it if
        nothing of it is left. A missed clock-out it still reports is cleared with it: a
        store that has gone quiet has nobody left to clock in again."""
        if clock.held is not None:  # nothing confirmed the jump before the store fell quiet
            self.skipped.append(clock.held)
            clock.held = None
        until = clock.watermark + self._horizon()
        clock.watermark, clock.provisional, clock.heard_at = until, False, None
        if until >= clock.next_tick:
            self._tick(store, clock, until, out)
        if not self.recent.get(store, True):
            del self.recent[store]
        if self.missed.holds(store):
            for key, _ in self.missed.of(store):
                del self.missed[key]
            self.alerts.append(missed_clock_out_cleared(store, until, "the store went quiet"))
        held = (self.orders, self.tracks, self.shifts, self.free_since, self.firing)
        busy = any(items.holds(store) for items in held)
        if not busy and store not in self.recent:
            del self.clocks[store]
            self.retired.append(store)

    def finish(self) -> list[Fact]:
        """Close everything still open (end of a batch report): visits time out, orders
        stay incomplete, and a shift still running counts up to its store's last event,
        as every report from the database counts it (``facts_from_db``): a file cut at
        noon has four hours of the barista who came at eight, not none, which would have
        left the day's drinks with no hours behind them. The stream processor never
        calls this."""
        out: list[Fact] = []
        for (store, staff), shift in self.shifts.items():
            end = self.clock(store)
            if end is not None and shift.start < end:
                out.append(ShiftFact(store, staff, shift.start, end))
        self.shifts.clear()
        self.free_since.clear()
        for clock in self.clocks.values():
            if clock.held is not None:  # nothing confirmed the jump before the period ended
                self.skipped.append(clock.held)
                clock.held = None
        for key, tr in list(self.tracks.items()):
            self._close_track(key, tr, tr.last_seen, "timeout", out)
        for order in self.orders.values():
            out.append(order.fact(None, None))
        self.orders.clear()
        return out

    # -- timeouts --------------------------------------------------------------------------

    def _sweep(self, store: str, now: datetime, out: list[Fact]) -> None:
        """Close ``store``'s tracks, orders and shifts past their timeouts on its own clock."""
        visit_cut = now - timedelta(seconds=self.config.visit_timeout_s)
        stale_cut = now - timedelta(seconds=self.config.stale_inside_s)
        for key, tr in self.tracks.of(store):
            if not tr.is_staff and any(
                self._works_there(store, z, since, now) for z, since in tr.inside.items()
            ):
                self._becomes_staff(tr)  # still behind the bar: staff before they step out
            if tr.last_seen < (stale_cut if tr.inside else visit_cut):
                self._close_track(key, tr, tr.last_seen, "timeout", out)
        order_cut = now - timedelta(seconds=self.config.order_timeout_s)
        for key, order in self.orders.of(store):
            if (order.paid_at or order.seen_at or now) < order_cut:
                out.append(order.fact(None, None))
                del self.orders[key]
        shift_cut = now - timedelta(seconds=self.config.shift_max_s)
        for key, shift in self.shifts.of(store):
            if shift.start < shift_cut:
                self._expire_shift(key, shift, now, out)
        items = self.recent.get(store)
        if items is not None:
            recent_cut = now - RECENT_KEEP
            self.recent[store] = [x for x in items if x[0] >= recent_cut]

    # -- shifts that never clock out ------------------------------------------------------

    def _expire_shift(
        self, key: tuple[str, str], shift: OpenShift, now: datetime, out: list[Fact]
    ) -> None:
        """End a shift older than ``shift_max_s`` that never clocked out (a till lost the
        clock-out: a power cut, a forgotten tap), and raise a missed clock-out.

        It ends at the staff member's last recorded activity, not at clock-in plus the
        bound. A store manager reads on-shift hours and drinks per barista-hour to staff
        the next week: the activity is the last moment the till shows them working, so
        the hours are never more than were worked (the bound would add up to 16 h of
        nobody to a day and halve drinks per hour). The shortfall, the tail of the shift
        after the last order, is what the alert asks the manager to correct."""
        del self.shifts[key]
        self.free_since.pop(key, None)  # gone: no longer idle behind the bar
        fact = ShiftFact(key[0], key[1], shift.start, shift.last_active)
        out.append(fact)
        self.missed[key] = now
        self.alerts.append(missed_clock_out(fact, now, self.config.shift_max_s))

    def _clock_in(self, ev: OpsEvent, out: list[Fact]) -> None:
        super()._clock_in(ev, out)
        self._clocked_again(ev)

    def _clock_out(self, ev: OpsEvent, out: list[Fact]) -> None:
        super()._clock_out(ev, out)
        self._clocked_again(ev)

    def _clocked_again(self, ev: OpsEvent) -> None:
        """A clock event of someone whose shift expired unclosed: the till records them
        again, so the store's missed clock-out clears once nobody is left unresolved."""
        store = ev.store_id or ""
        if self.missed.pop((store, ev.payload["staff_id"]), None) is None:
            return
        if not self.missed.holds(store):
            self.alerts.append(missed_clock_out_cleared(store, ev.ts, "clocked in or out again"))

    # -- live view for alerts and dashboards --------------------------------------------

    def _snapshot(self, store: str, at: datetime) -> Snapshot | None:
        """``store`` at ``at`` of its own clock; ``None`` while it has nothing to show.

        A store with an alert firing (or counting) gets one even when empty, so an
        alert raised on a queue that then timed out still clears."""
        held = (self.tracks, self.shifts, self.firing)
        if store not in self.recent and not any(items.holds(store) for items in held):
            return None
        queue = sum(
            1
            for _, tr in self.tracks.of(store)
            if not tr.is_staff and any(self._kind(store, z) == "queue" for z in tr.inside)
        )
        idle = {
            staff: (at - since).total_seconds() for (_, staff), since in self.free_since.of(store)
        }
        return Snapshot(store, at, queue, list(self.recent.get(store, [])), idle)

    def live(self, store_id: str) -> Snapshot | None:
        """``store_id`` now, on its own clock (never another store's)."""
        clock = self.clocks.get(store_id)
        return self._snapshot(store_id, clock.watermark) if clock is not None else None

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """What is in flight, as the snapshot saved with the log cursor (inflight.py)."""
        return write_state(
            InFlight(
                self.clocks,
                self.heard,
                self._quiet_check,
                self.orders,
                self.tracks,
                self.shifts,
                self.free_since,
                self.recent,
                self.firing,
                self.missed,
            )
        )

    @classmethod
    def from_state(cls, config: TrackerConfig, state: Mapping[str, Any] | None) -> OpsTracker:
        """A tracker resuming from :meth:`state` (or a v1 snapshot); fresh for ``None``."""
        tracker = cls(config)
        if not state:
            return tracker
        held = read_state(state)
        tracker.clocks, tracker.heard = held.clocks, held.heard
        tracker._quiet_check = held.quiet_check
        tracker.orders, tracker.tracks, tracker.shifts = held.orders, held.tracks, held.shifts
        tracker.free_since, tracker.recent, tracker.firing = (
            held.free_since,
            held.recent,
            held.firing,
        )
        tracker.missed = held.missed
        return tracker
