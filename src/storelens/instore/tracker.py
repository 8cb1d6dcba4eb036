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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from storelens.catalogue import DRINK_CATEGORIES
from storelens.instore.alerts import AlertChange, AlertRule, RuleState, Snapshot, evaluate_rules
from storelens.instore.eventtime import (
    MINUTE,
    RECENT_KEEP,
    HeldEvent,
    ceil_minute,
    floor_minute,
    next_deadline,
)
from storelens.instore.facts import (
    Fact,
    OrderFact,
    QueueWait,
    ShiftFact,
    VisitFact,
    ZoneVisit,
)

__all__ = ["OpsEvent", "OpsTracker", "StoreClock", "TrackerConfig", "store_time"]

ZoneKinds = Mapping[str, Mapping[str, str]]  # store id -> zone id -> kind


class OpsEvent(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def store_id(self) -> str | None: ...
    @property
    def subject(self) -> str | None: ...
    @property
    def payload(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class TrackerConfig:
    zone_kinds: ZoneKinds
    visit_timeout_s: float = 1800.0  # a track in no zone, silent this long, has left
    stale_inside_s: float = 4 * 3600.0  # a track "inside" a zone this long was lost
    order_timeout_s: float = 4 * 3600.0  # a paid order never handed off is incomplete
    alert_rules: tuple[AlertRule, ...] = ()  # for stores without rules of their own
    store_rules: Mapping[str, tuple[AlertRule, ...]] = field(default_factory=dict)
    # An event further ahead of the watermark than this moves time only when the next
    # event confirms the jump (see eventtime.py); one stray far-future event is skipped.
    max_time_jump_s: float = 24 * 3600.0
    # Server time (when the log received its events) after a store's last event when
    # the store counts as quiet: its clock runs on by as much (at least the longest
    # timeout) and, with nothing left in flight, it is forgotten.
    quiet_store_s: float = 24 * 3600.0

    def rules_for(self, store_id: str) -> tuple[AlertRule, ...]:
        return self.store_rules.get(store_id, self.alert_rules)


@dataclass
class _Order:
    store_id: str
    order_id: str
    channel: str = "in_store"
    register_id: str | None = None
    paid_at: datetime | None = None
    started_at: datetime | None = None
    ready_at: datetime | None = None
    barista: str | None = None
    drinks: int = 0
    items: int = 0
    seen_at: datetime | None = None

    def fact(self, handed_off_at: datetime | None, by: str | None) -> OrderFact:
        return OrderFact(
            store_id=self.store_id,
            order_id=self.order_id,
            channel=self.channel,
            register_id=self.register_id,
            paid_at=self.paid_at,
            started_at=self.started_at,
            ready_at=self.ready_at,
            handed_off_at=handed_off_at,
            barista=self.barista or by,
            drinks=self.drinks,
            items=self.items,
        )


@dataclass
class _Track:
    store_id: str
    track_id: str
    first_enter: datetime
    last_seen: datetime
    is_staff: bool
    inside: dict[str, datetime] = field(default_factory=dict)
    zones: int = 0
    been_inside: bool = False  # entered a zone other than the entrance
    queue_enter: datetime | None = None


@dataclass
class StoreClock:
    """One store's event time; only that store's events (and its quiet timer) move it.

    ``heard_at`` is the server's receive time of the store's latest event (``None``
    for events read from a file), which is what tells a quiet store from a live one."""

    watermark: datetime  # the store's latest event time
    next_tick: datetime  # the next of its minutes with work (see eventtime.py)
    provisional: bool = True  # the watermark comes from one event so far
    held: HeldEvent | None = None  # far ahead of the watermark, unconfirmed
    heard_at: datetime | None = None

    @classmethod
    def start(cls, ts: datetime) -> StoreClock:
        return cls(ts, floor_minute(ts) + MINUTE)

    def as_state(self) -> list[Any]:
        held = self.held.as_state() if self.held else None
        return [
            _iso(self.watermark),
            _iso(self.next_tick),
            self.provisional,
            held,
            _iso(self.heard_at),
        ]

    @classmethod
    def from_state(cls, raw: list[Any]) -> StoreClock:
        wm, nxt, provisional, held, heard = raw
        return cls(
            datetime.fromisoformat(wm),
            datetime.fromisoformat(nxt),
            bool(provisional),
            HeldEvent.from_state(held),
            _ts(heard),
        )


def _received(ev: OpsEvent) -> datetime | None:
    """When the server received ``ev`` (log events carry it; file events do not)."""
    value = getattr(ev, "received_at", None)
    return value if isinstance(value, datetime) else None


def store_time(state: Mapping[str, Any] | None, store_id: str) -> datetime | None:
    """A store's event time from a saved tracker state, without rebuilding the tracker
    (dashboards); ``None`` for a store the tracker has not seen or has forgotten."""
    if not state:
        return None
    clocks = state.get("clocks")
    if clocks is None:  # a v1 snapshot: one clock for every store
        return _ts(state.get("watermark"))
    raw = clocks.get(store_id)
    return datetime.fromisoformat(raw[0]) if raw else None


def _ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


class OpsTracker:
    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self.orders: dict[tuple[str, str], _Order] = {}
        self.tracks: dict[tuple[str, str], _Track] = {}
        self.shifts: dict[tuple[str, str], datetime] = {}
        self.free_since: dict[tuple[str, str], datetime] = {}  # barista idle since
        self.recent: dict[str, list[tuple[datetime, float]]] = {}  # handed off, seconds
        self.firing: dict[tuple[str, str], RuleState] = {}
        self.clocks: dict[str, StoreClock] = {}  # one per store; nothing is chain-wide
        self.heard: datetime | None = None  # latest server receive time seen
        self._quiet_check: datetime | None = None  # next server minute to look for quiet stores
        self._max_jump = timedelta(seconds=config.max_time_jump_s)
        self.alerts: list[AlertChange] = []  # raised/cleared since last drained
        self.skipped: list[HeldEvent] = []  # far-future events nothing confirmed; drained
        self.retired: list[str] = []  # stores forgotten after going quiet; drained
        self.ticks = 0  # minutes evaluated since this object was built (not persisted)
        self._handlers = {
            "pos.order_paid": self._paid,
            "order.started": self._started,
            "order.ready": self._ready,
            "order.handed_off": self._handed_off,
            "staff.clock_in": self._clock_in,
            "staff.clock_out": self._clock_out,
            "vision.zone_enter": self._enter,
            "vision.zone_exit": self._exit,
            "vision.track": self._seen,
        }

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
        if nxt > ts or any(st.streak for (s, _), st in self.firing.items() if s == store):
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
            RECENT_KEEP.total_seconds(),
        )
        return timedelta(seconds=longest) + MINUTE

    def _retire(self, store: str, clock: StoreClock, out: list[Fact]) -> None:
        """Run a quiet store's own clock on as its next event would have (its orders and
        tracks time out, its alerts clear on its own time), then forget it if nothing of
        it is left. An open shift keeps it: a shift ends by clocking out."""
        if clock.held is not None:  # nothing confirmed the jump before the store fell quiet
            self.skipped.append(clock.held)
            clock.held = None
        until = clock.watermark + self._horizon()
        clock.watermark, clock.provisional, clock.heard_at = until, False, None
        if until >= clock.next_tick:
            self._tick(store, clock, until, out)
        if not self.recent.get(store, True):
            del self.recent[store]
        held = (*self.orders, *self.tracks, *self.shifts, *self.free_since, *self.firing)
        busy = any(s == store for s, _ in held)
        if not busy and store not in self.recent:
            del self.clocks[store]
            self.retired.append(store)

    def finish(self) -> list[Fact]:
        """Close everything still open (end of a batch report): visits time out, orders
        stay incomplete. The stream processor never calls this."""
        out: list[Fact] = []
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

    # -- orders ------------------------------------------------------------------------

    def _order(self, ev: OpsEvent) -> _Order:
        key = (ev.store_id or "", ev.payload["order_id"])
        order = self.orders.get(key)
        if order is None:
            order = self.orders[key] = _Order(key[0], key[1], seen_at=ev.ts)
        return order

    def _paid(self, ev: OpsEvent, out: list[Fact]) -> None:
        p = ev.payload
        order = self._order(ev)
        if order.paid_at is not None:
            return  # the same order paid twice: keep the first payment
        order.paid_at = ev.ts
        order.channel = p.get("channel") or "in_store"
        order.register_id = p.get("register_id")
        drinks = items = 0
        for line in p["lines"]:
            items += line["qty"]
            if line.get("category") in DRINK_CATEGORIES:
                drinks += line["qty"]
        order.drinks, order.items = drinks, items

    def _started(self, ev: OpsEvent, out: list[Fact]) -> None:
        order = self._order(ev)
        order.started_at = order.started_at or ev.ts
        staff = ev.payload.get("staff_id")
        if staff:
            order.barista = staff
            self.free_since.pop((order.store_id, staff), None)

    def _ready(self, ev: OpsEvent, out: list[Fact]) -> None:
        order = self._order(ev)
        order.ready_at = order.ready_at or ev.ts
        staff = ev.payload.get("staff_id") or order.barista
        if staff:
            order.barista = order.barista or staff
            if (order.store_id, staff) in self.shifts:
                self.free_since[(order.store_id, staff)] = ev.ts

    def _handed_off(self, ev: OpsEvent, out: list[Fact]) -> None:
        key = (ev.store_id or "", ev.payload["order_id"])
        order = self.orders.pop(key, None) or _Order(key[0], key[1])
        fact = order.fact(ev.ts, ev.payload.get("staff_id"))
        out.append(fact)
        seconds = fact.fulfillment_s
        if seconds is not None:
            self.recent.setdefault(order.store_id, []).append((ev.ts, seconds))

    # -- staff -------------------------------------------------------------------------

    def _clock_in(self, ev: OpsEvent, out: list[Fact]) -> None:
        key = (ev.store_id or "", ev.payload["staff_id"])
        self.shifts.setdefault(key, ev.ts)
        self.free_since[key] = ev.ts

    def _clock_out(self, ev: OpsEvent, out: list[Fact]) -> None:
        key = (ev.store_id or "", ev.payload["staff_id"])
        start = self.shifts.pop(key, None)
        self.free_since.pop(key, None)
        if start is not None:
            out.append(ShiftFact(key[0], key[1], start, ev.ts))

    # -- people in zones -------------------------------------------------------------------

    def _kind(self, store_id: str, zone_id: str) -> str:
        return self.config.zone_kinds.get(store_id, {}).get(zone_id, "other")

    def _enter(self, ev: OpsEvent, out: list[Fact]) -> None:
        store = ev.store_id or ""
        p = ev.payload
        key = (store, p["track_id"])
        zone = p["zone_id"]
        kind = self._kind(store, zone)
        tr = self.tracks.get(key)
        if tr is None:
            # A track first seen in a staff-only zone is staff, whatever it does later.
            tr = self.tracks[key] = _Track(store, key[1], ev.ts, ev.ts, kind == "staff_only")
        tr.last_seen = ev.ts
        tr.inside[zone] = ev.ts
        tr.zones += 1
        if kind != "entrance":
            tr.been_inside = True
        if tr.is_staff:
            return
        if kind == "queue":
            tr.queue_enter = ev.ts
        elif kind == "counter" and tr.queue_enter is not None:
            out.append(QueueWait(store, key[1], tr.queue_enter, ev.ts))
            tr.queue_enter = None

    def _seen(self, ev: OpsEvent, out: list[Fact]) -> None:
        """A sampled position keeps a still person's track alive (seated, at the bar)."""
        tr = self.tracks.get((ev.store_id or "", ev.payload["track_id"]))
        if tr is not None:
            tr.last_seen = ev.ts

    def _exit(self, ev: OpsEvent, out: list[Fact]) -> None:
        store = ev.store_id or ""
        p = ev.payload
        key = (store, p["track_id"])
        tr = self.tracks.get(key)
        zone = p["zone_id"]
        if tr is None or zone not in tr.inside:
            return  # an exit without its enter (started before the log): nothing to measure
        enter = tr.inside.pop(zone)
        tr.last_seen = ev.ts
        out.append(ZoneVisit(store, key[1], zone, enter, ev.ts, tr.is_staff))
        # Leaving through the entrance ends a customer's visit. The queue entry is kept
        # until the counter is reached (queue exit and counter enter share a moment).
        # Staff tracks end by timeout: staff step out of the bar and come back.
        leaving = self._kind(store, zone) == "entrance"
        if leaving and not tr.inside and tr.been_inside and not tr.is_staff:
            self._close_track(key, tr, ev.ts, "left", out)

    def _close_track(
        self, key: tuple[str, str], tr: _Track, at: datetime, how: str, out: list[Fact]
    ) -> None:
        del self.tracks[key]
        for zone, enter in tr.inside.items():
            out.append(ZoneVisit(tr.store_id, tr.track_id, zone, enter, at, tr.is_staff))
        if not tr.is_staff:
            out.append(VisitFact(tr.store_id, tr.track_id, tr.first_enter, at, tr.zones, how))

    def _sweep(self, store: str, now: datetime, out: list[Fact]) -> None:
        """Close ``store``'s tracks and orders past their timeouts on its own clock."""
        visit_cut = now - timedelta(seconds=self.config.visit_timeout_s)
        stale_cut = now - timedelta(seconds=self.config.stale_inside_s)
        for key, tr in list(self.tracks.items()):
            if key[0] == store and tr.last_seen < (stale_cut if tr.inside else visit_cut):
                self._close_track(key, tr, tr.last_seen, "timeout", out)
        order_cut = now - timedelta(seconds=self.config.order_timeout_s)
        for key, order in list(self.orders.items()):
            if key[0] == store and (order.paid_at or order.seen_at or now) < order_cut:
                out.append(order.fact(None, None))
                del self.orders[key]
        items = self.recent.get(store)
        if items is not None:
            recent_cut = now - RECENT_KEEP
            self.recent[store] = [x for x in items if x[0] >= recent_cut]

    # -- live view for alerts and dashboards --------------------------------------------

    def _snapshot(self, store: str, at: datetime) -> Snapshot | None:
        """``store`` at ``at`` of its own clock; ``None`` while it has nothing to show.

        A store with an alert firing (or counting) gets one even when empty, so an
        alert raised on a queue that then timed out still clears."""
        held = (*self.tracks, *self.shifts, *self.firing)
        if store not in self.recent and not any(s == store for s, _ in held):
            return None
        queue = sum(
            1
            for (s, _), tr in self.tracks.items()
            if s == store
            and not tr.is_staff
            and any(self._kind(s, z) == "queue" for z in tr.inside)
        )
        idle = {
            staff: (at - since).total_seconds()
            for (s, staff), since in self.free_since.items()
            if s == store
        }
        return Snapshot(store, at, queue, list(self.recent.get(store, [])), idle)

    def live(self, store_id: str) -> Snapshot | None:
        """``store_id`` now, on its own clock (never another store's)."""
        clock = self.clocks.get(store_id)
        return self._snapshot(store_id, clock.watermark) if clock is not None else None

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "v": 2,
            "clocks": {store: c.as_state() for store, c in self.clocks.items()},
            "heard": _iso(self.heard),
            "quiet_check": _iso(self._quiet_check),
            "orders": [
                [
                    o.store_id,
                    o.order_id,
                    o.channel,
                    o.register_id,
                    _iso(o.paid_at),
                    _iso(o.started_at),
                    _iso(o.ready_at),
                    o.barista,
                    o.drinks,
                    o.items,
                    _iso(o.seen_at),
                ]
                for o in self.orders.values()
            ],
            "tracks": [
                [
                    t.store_id,
                    t.track_id,
                    _iso(t.first_enter),
                    _iso(t.last_seen),
                    t.is_staff,
                    {z: _iso(e) for z, e in t.inside.items()},
                    t.zones,
                    t.been_inside,
                    _iso(t.queue_enter),
                ]
                for t in self.tracks.values()
            ],
            "shifts": [[s, staff, _iso(start)] for (s, staff), start in self.shifts.items()],
            "free_since": [[s, staff, _iso(t)] for (s, staff), t in self.free_since.items()],
            "recent": {s: [[_iso(t), v] for t, v in items] for s, items in self.recent.items()},
            "firing": [[s, rule, st.firing, st.streak] for (s, rule), st in self.firing.items()],
        }

    @classmethod
    def from_state(cls, config: TrackerConfig, state: Mapping[str, Any] | None) -> OpsTracker:
        tracker = cls(config)
        if not state:
            return tracker
        tracker.heard = _ts(state.get("heard"))
        tracker._quiet_check = _ts(state.get("quiet_check"))
        for s, oid, ch, reg, paid, started, ready, barista, drinks, items, seen in state["orders"]:
            tracker.orders[(s, oid)] = _Order(
                s,
                oid,
                ch,
                reg,
                _ts(paid),
                _ts(started),
                _ts(ready),
                barista,
                drinks,
                items,
                _ts(seen),
            )
        for s, tid, first, last, staff, inside, zones, been, queue in state["tracks"]:
            first_ts, last_ts = _ts(first), _ts(last)
            assert first_ts is not None and last_ts is not None
            tracker.tracks[(s, tid)] = _Track(
                s,
                tid,
                first_ts,
                last_ts,
                staff,
                {z: e for z, e in ((z, _ts(v)) for z, v in inside.items()) if e is not None},
                zones,
                been,
                _ts(queue),
            )
        tracker.shifts = {(s, st): t for s, st, v in state["shifts"] if (t := _ts(v))}
        tracker.free_since = {(s, st): t for s, st, v in state["free_since"] if (t := _ts(v))}
        tracker.recent = {
            s: [(t, v) for ts_, v in items if (t := _ts(ts_))]
            for s, items in state["recent"].items()
        }
        tracker.firing = {(s, r): RuleState(on, streak) for s, r, on, streak in state["firing"]}
        if "clocks" in state:
            tracker.clocks = {s: StoreClock.from_state(c) for s, c in state["clocks"].items()}
        else:
            tracker._clocks_from_v1(state)
        return tracker

    def _clocks_from_v1(self, state: Mapping[str, Any]) -> None:
        """A snapshot from before clocks were per store: every store with something in
        flight starts from the chain's clock; any other store starts with its next
        event. (Replaying the log gives each store its own history.)

        The snapshot holds no receive times; the chain's clock stands in for when each
        store was last heard (it was the latest event's time). Without one a store that
        sends nothing after the upgrade never counts as quiet, and what it had in flight,
        which the chain's clock used to time out, stays open for good."""
        wm, nxt = _ts(state.get("watermark")), _ts(state.get("next_tick"))
        if wm is None or nxt is None:
            return
        provisional = bool(state.get("provisional", False))
        stores = {s for s, _ in (*self.orders, *self.tracks, *self.shifts, *self.firing)}
        stores |= set(self.recent)
        held = HeldEvent.from_state(state.get("held"))
        if held is not None and held.store_id is not None:
            stores.add(held.store_id)
        for store in stores:
            mine = held if held is not None and held.store_id == store else None
            self.clocks[store] = StoreClock(wm, nxt, provisional, mine, heard_at=wm)
