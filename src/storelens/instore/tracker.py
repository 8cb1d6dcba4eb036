"""The operations tracker: events in log order in, closed facts out.

It holds only what is still in flight (open orders, people inside zones, open
shifts), so its state is small, serialisable, and snapshotted together with the
log cursor; a restarted processor resumes exactly where the last commit left it.
Everything time-based runs on event time (the watermark is the latest event
timestamp seen), so the same events in the same order give the same facts and the
same alerts whether they arrive in one batch or a thousand.
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

__all__ = ["OpsEvent", "OpsTracker", "TrackerConfig"]

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
        self.watermark: datetime | None = None
        self._next_tick: datetime | None = None
        self._provisional = False  # the watermark comes from one event so far
        self._held: HeldEvent | None = None  # far ahead of the watermark, unconfirmed
        self._max_jump = timedelta(seconds=config.max_time_jump_s)
        self.alerts: list[AlertChange] = []  # raised/cleared since last drained
        self.skipped: list[HeldEvent] = []  # far-future events nothing confirmed; drained
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

    # -- feeding -----------------------------------------------------------------------

    def apply_all(self, events: Iterable[OpsEvent]) -> list[Fact]:
        out: list[Fact] = []
        jump = self._max_jump
        for ev in events:
            if ev.store_id is None:
                continue
            wm = self.watermark
            if self._held is not None or (wm is not None and ev.ts - wm > jump):
                self._far_ahead(ev, out)
            else:
                self._apply(ev, out)
        return out

    def _apply(self, ev: OpsEvent, out: list[Fact]) -> None:
        ts = ev.ts
        wm = self.watermark
        if wm is None:
            self.watermark, self._provisional = ts, True
            self._next_tick = floor_minute(ts) + MINUTE
        elif self._provisional and wm - ts > self._max_jump:
            # The very first event was far ahead of everything after it: start over
            # from this one (nothing has ticked yet, so no minute ran on bad time).
            self.watermark, self._provisional = ts, False
            self._next_tick = floor_minute(ts) + MINUTE
        elif ts > wm:
            self.watermark, self._provisional = ts, False
            assert self._next_tick is not None
            if ts >= self._next_tick:
                self._tick(ts, out)
        handler = self._handlers.get(ev.type)
        if handler is not None:
            handler(ev, out)
        # The event may have changed what a minute sees: the next one must run.
        nxt, wm = self._next_tick, self.watermark
        if nxt is not None and wm is not None and nxt - wm > MINUTE:
            self._next_tick = floor_minute(wm) + MINUTE

    def _far_ahead(self, ev: OpsEvent, out: list[Fact]) -> None:
        """Hold an event far ahead of the watermark until the next one confirms the jump."""
        held, self._held = self._held, None
        wm = self.watermark
        assert wm is not None
        far = ev.ts - wm > self._max_jump
        if held is not None:
            if far and abs(ev.ts - held.ts) <= self._max_jump:
                self._apply(held, out)  # two events agree: time did move on
                self._apply(ev, out)
                return
            self.skipped.append(held)
        if far:
            self._held = HeldEvent(ev.type, ev.ts, ev.store_id, ev.subject, ev.payload)
        else:
            self._apply(ev, out)

    def _tick(self, ts: datetime, out: list[Fact]) -> None:
        """Run every minute up to ``ts`` that can change something (see eventtime.py)."""
        assert self._next_tick is not None
        while self._next_tick <= ts:
            at = self._next_tick
            self.ticks += 1
            self._sweep(at, out)
            for snap in self._snapshots(at):
                rules = self.config.rules_for(snap.store_id)
                if rules:
                    self.alerts.extend(evaluate_rules(rules, [snap], self.firing))
            self._next_tick = self._after(at, ts)

    def _after(self, at: datetime, ts: datetime) -> datetime:
        """The next minute to run after ``at`` on the way to ``ts``: the following one
        while an alert streak counts, else the first with a deadline (or past ``ts``)."""
        nxt = at + MINUTE
        if nxt > ts or any(st.streak for st in self.firing.values()):
            return nxt
        due = next_deadline(self, at)
        return max(nxt, ceil_minute(due) if due is not None else floor_minute(ts) + MINUTE)

    def finish(self) -> list[Fact]:
        """Close everything still open (end of a batch report): visits time out, orders
        stay incomplete. The stream processor never calls this."""
        out: list[Fact] = []
        if self._held is not None:  # nothing confirmed the jump before the period ended
            self.skipped.append(self._held)
            self._held = None
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

    def _sweep(self, now: datetime, out: list[Fact]) -> None:
        visit_cut = now - timedelta(seconds=self.config.visit_timeout_s)
        stale_cut = now - timedelta(seconds=self.config.stale_inside_s)
        for key, tr in list(self.tracks.items()):
            if tr.last_seen < (stale_cut if tr.inside else visit_cut):
                self._close_track(key, tr, tr.last_seen, "timeout", out)
        order_cut = now - timedelta(seconds=self.config.order_timeout_s)
        for key, order in list(self.orders.items()):
            if (order.paid_at or order.seen_at or now) < order_cut:
                out.append(order.fact(None, None))
                del self.orders[key]
        recent_cut = now - timedelta(minutes=60)
        for store, items in self.recent.items():
            self.recent[store] = [x for x in items if x[0] >= recent_cut]

    # -- live view for alerts and dashboards --------------------------------------------

    def _snapshots(self, at: datetime) -> list[Snapshot]:
        stores = {k[0] for k in self.tracks} | {k[0] for k in self.shifts} | set(self.recent)
        snaps = []
        for store in sorted(stores):
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
            snaps.append(Snapshot(store, at, queue, list(self.recent.get(store, [])), idle))
        return snaps

    def live(self) -> list[Snapshot]:
        return self._snapshots(self.watermark) if self.watermark else []

    # -- state ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "v": 1,
            "watermark": _iso(self.watermark),
            "next_tick": _iso(self._next_tick),
            "provisional": self._provisional,
            "held": self._held.as_state() if self._held else None,
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
        tracker.watermark = _ts(state["watermark"])
        tracker._next_tick = _ts(state["next_tick"])
        tracker._provisional = bool(state.get("provisional", False))
        tracker._held = HeldEvent.from_state(state.get("held"))
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
        return tracker
