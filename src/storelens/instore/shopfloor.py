"""What each ops event does on the shop floor, before time is taken into account.

Orders move from paid to handed off, baristas clock in and out and go idle, people
enter and leave zones: each event changes the records the tracker holds in flight
(see inflight.py) and may close a fact. None of this reads a clock beyond the event's
own timestamp, so it is kept apart from :class:`~storelens.instore.tracker.OpsTracker`,
which builds on it and owns time: each store's clock, the sweeps that time open
records out, alerts and quiet stores. The tracker's sweeps close tracks through
:meth:`ShopFloor._close_track` so a visit ends the same way whichever way it ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from storelens.catalogue import DRINK_CATEGORIES
from storelens.instore.by_store import ByStore
from storelens.instore.facts import WALK_BY, Fact, QueueWait, ShiftFact, VisitFact, ZoneVisit
from storelens.instore.inflight import OpenOrder, OpenShift, OpenTrack

__all__ = ["STAFF_ZONE_S", "TILL_KINDS", "WALK_BY_MAX_S", "OpsEvent", "ShopFloor", "ZoneKinds"]

ZoneKinds = Mapping[str, Mapping[str, str]]  # store id -> zone id -> kind

TILL_KINDS = frozenset({"counter", "checkout"})
"""Where a queue ends: a café's order counter, a shop's checkout."""

WALK_BY_MAX_S = 60.0
"""The longest a track seen only in the entrance zone may last and still be a walk-by."""

STAFF_ZONE_S = 60.0
"""How long a track must stay in a staff-only zone to count as staff from then on.

A barista who comes in through the front door starts as a customer track; once behind
the bar for this long it is staff (before, it stayed a customer all shift: one more
"in the store" all day, an eight-hour visit, queue counts when they crossed the
line). A minute, not a moment: a customer at the pickup counter whose track strays over
the bar's edge, or swaps ids with a barista for a frame, must not vanish from visits."""


class OpsEvent(Protocol):
    """What the tracker reads of an event: log events and file events both fit."""

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


class ShopFloor:
    """Open orders, people in zones and shifts, changed event by event (no timeouts)."""

    def __init__(self, zone_kinds: ZoneKinds, staff_zone_s: float = STAFF_ZONE_S) -> None:
        self._zone_kinds = zone_kinds
        self._staff_zone_s = staff_zone_s
        self.orders: ByStore[OpenOrder] = ByStore()
        self.tracks: ByStore[OpenTrack] = ByStore()
        self.shifts: ByStore[OpenShift] = ByStore()
        self.free_since: ByStore[datetime] = ByStore()  # barista idle since
        self.recent: dict[str, list[tuple[datetime, float]]] = {}  # handed off, seconds
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

    # -- orders ------------------------------------------------------------------------

    def _order(self, ev: OpsEvent) -> OpenOrder:
        key = (ev.store_id or "", ev.payload["order_id"])
        order = self.orders.get(key)
        if order is None:
            order = self.orders[key] = OpenOrder(key[0], key[1], seen_at=ev.ts)
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
            self._active(order.store_id, staff, ev.ts)

    def _ready(self, ev: OpsEvent, out: list[Fact]) -> None:
        order = self._order(ev)
        order.ready_at = order.ready_at or ev.ts
        staff = ev.payload.get("staff_id") or order.barista
        if staff:
            order.barista = order.barista or staff
            if (order.store_id, staff) in self.shifts:
                self.free_since[(order.store_id, staff)] = ev.ts
            self._active(order.store_id, staff, ev.ts)

    def _handed_off(self, ev: OpsEvent, out: list[Fact]) -> None:
        key = (ev.store_id or "", ev.payload["order_id"])
        order = self.orders.pop(key, None) or OpenOrder(key[0], key[1])
        by = ev.payload.get("staff_id")
        fact = order.fact(ev.ts, by)
        out.append(fact)
        if by:
            self._active(order.store_id, by, ev.ts)
        seconds = fact.fulfillment_s
        # The slow-orders alert is about customers waiting at the counter. An app or web
        # order is handed off when its customer turns up, so its payment-to-hand-off
        # time says when they came, not how fast the bar is (in the demo its p90 was 9.5
        # min against 5.5 in store, and the alert fired twelve times a day).
        if seconds is not None and order.channel == "in_store":
            self.recent.setdefault(order.store_id, []).append((ev.ts, seconds))

    # -- staff -------------------------------------------------------------------------

    def _active(self, store: str, staff: str, at: datetime) -> None:
        """``staff`` was seen at work: where their shift counts to if it never clocks out."""
        shift = self.shifts.get((store, staff))
        if shift is not None and at > shift.last_active:
            shift.last_active = at

    def _clock_in(self, ev: OpsEvent, out: list[Fact]) -> None:
        key = (ev.store_id or "", ev.payload["staff_id"])
        if key in self.shifts:  # clocked in twice: the shift began with the first
            self._active(key[0], key[1], ev.ts)
        else:
            self.shifts[key] = OpenShift(ev.ts, ev.ts)
        self.free_since[key] = ev.ts

    def _clock_out(self, ev: OpsEvent, out: list[Fact]) -> None:
        key = (ev.store_id or "", ev.payload["staff_id"])
        shift = self.shifts.pop(key, None)
        self.free_since.pop(key, None)
        if shift is not None:
            out.append(ShiftFact(key[0], key[1], shift.start, ev.ts))

    # -- people in zones -------------------------------------------------------------------

    def _kind(self, store_id: str, zone_id: str) -> str:
        return self._zone_kinds.get(store_id, {}).get(zone_id, "other")

    def _enter(self, ev: OpsEvent, out: list[Fact]) -> None:
        store = ev.store_id or ""
        p = ev.payload
        key = (store, p["track_id"])
        zone = p["zone_id"]
        kind = self._kind(store, zone)
        tr = self.tracks.get(key)
        if tr is None:
            # A track first seen in a staff-only zone is staff, whatever it does later.
            tr = self.tracks[key] = OpenTrack(store, key[1], ev.ts, ev.ts, kind == "staff_only")
        tr.last_seen = ev.ts
        tr.inside[zone] = ev.ts
        tr.zones += 1
        if kind != "entrance":
            tr.been_inside = True
        if tr.is_staff:
            return
        if kind == "queue":
            tr.queue_enter = ev.ts
        elif kind in TILL_KINDS:
            if tr.queue_enter is not None:
                out.append(QueueWait(store, key[1], tr.queue_enter, ev.ts))
                tr.queue_enter = None
        elif not any(self._kind(store, z) == "queue" for z in tr.inside):
            # Somewhere else, out of the line: a seat, the pickup, the door. Whoever walks
            # through the queue zone to a table and orders later did not queue meanwhile.
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
        if self._works_there(store, zone, enter, ev.ts):
            self._becomes_staff(tr)
        out.append(ZoneVisit(store, key[1], zone, enter, ev.ts, tr.is_staff))
        # Leaving through the entrance ends a customer's visit. The queue entry is kept
        # past the queue's exit: leaving the line and reaching the till share a moment,
        # and only entering some other zone first (see _enter) gives the place up.
        # Staff tracks end by timeout: staff step out of the bar and come back.
        leaving = self._kind(store, zone) == "entrance"
        if leaving and not tr.inside and tr.been_inside and not tr.is_staff:
            self._close_track(key, tr, ev.ts, "left", out)

    def _works_there(self, store: str, zone: str, since: datetime, now: datetime) -> bool:
        """Whether being in ``zone`` from ``since`` to ``now`` makes a track staff."""
        staff_only = self._kind(store, zone) == "staff_only"
        return staff_only and (now - since).total_seconds() >= self._staff_zone_s

    def _becomes_staff(self, tr: OpenTrack) -> None:
        """From now on the track is staff: no visit, no queue, not in the store's count.
        Zone visits it already closed as a customer (the walk in from the door) stay."""
        tr.is_staff = True
        tr.queue_enter = None

    def _close_track(
        self, key: tuple[str, str], tr: OpenTrack, at: datetime, how: str, out: list[Fact]
    ) -> None:
        del self.tracks[key]
        for zone, enter in tr.inside.items():
            out.append(ZoneVisit(tr.store_id, tr.track_id, zone, enter, at, tr.is_staff))
        if not tr.is_staff:
            # Never past the entrance and gone within a minute: a look through the door, a
            # passer-by clipping the zone. Not a visit; kept apart so the store's dwell is
            # the dwell of visits. Longer is a visit: where zones do not cover the floor,
            # 20 minutes in the store can show only the entrance.
            brief = (at - tr.first_enter).total_seconds() < WALK_BY_MAX_S
            how = WALK_BY if not tr.been_inside and brief else how
            out.append(VisitFact(tr.store_id, tr.track_id, tr.first_enter, at, tr.zones, how))
