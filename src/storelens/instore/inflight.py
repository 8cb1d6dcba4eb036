"""What the ops tracker holds in flight, and the snapshot it is saved as.

The tracker emits a fact only once something closes (an order handed off, a visit
ended), so between events it carries the open parts: orders paid but not handed off,
people inside zones, open shifts, idle baristas, recently handed-off orders, alert
streaks and each store's clock. The stream processor saves them as one JSON snapshot
with the log cursor and a restart resumes from it, so the snapshot's layout is a stored
format: it lives here, in one place, apart from the tracker's logic, and a change to
it is a change to what is on disk (version ``v``; v1 and v2 snapshots still load).
Dashboards read a store's time straight from a saved snapshot (:func:`store_time`)
without rebuilding a tracker, which is why that reader sits beside the writer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from storelens.instore.alerts import RuleState
from storelens.instore.by_store import ByStore
from storelens.instore.eventtime import HeldEvent, StoreClock, iso_or_none, ts_or_none
from storelens.instore.facts import OrderFact

__all__ = [
    "InFlight",
    "OpenOrder",
    "OpenShift",
    "OpenTrack",
    "read_state",
    "store_time",
    "write_state",
]


@dataclass
class OpenOrder:
    """An order seen but not yet handed off (or timed out)."""

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
class OpenTrack:
    """A person (or staff member) in the store whose visit has not ended yet."""

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
class OpenShift:
    """A clocked-in staff member not yet clocked out.

    ``last_active`` is the latest moment the till saw them at work in this shift
    (clocking in, starting, finishing or handing off an order): where a shift that
    never clocks out is counted to once it expires (``OpsTracker._expire_shift``)."""

    start: datetime
    last_active: datetime


@dataclass
class InFlight:
    """Everything a tracker snapshot holds, by the tracker's own keys ((store, id) pairs).

    ``quiet_check`` is the next server minute the tracker looks for quiet stores;
    ``missed`` holds the staff whose shift expired without a clock-out (when it was
    closed), until they clock in or out again."""

    clocks: dict[str, StoreClock] = field(default_factory=dict)
    heard: datetime | None = None
    quiet_check: datetime | None = None
    orders: ByStore[OpenOrder] = field(default_factory=ByStore)
    tracks: ByStore[OpenTrack] = field(default_factory=ByStore)
    shifts: ByStore[OpenShift] = field(default_factory=ByStore)
    free_since: ByStore[datetime] = field(default_factory=ByStore)
    recent: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)
    firing: ByStore[RuleState] = field(default_factory=ByStore)
    missed: ByStore[datetime] = field(default_factory=ByStore)


def write_state(held: InFlight) -> dict[str, Any]:
    """The v3 snapshot: plain JSON values, records as positional lists to keep it small.

    Its keys and their order are the stored format (snapshots are compared and saved
    as written), so they do not change without a new ``v``. v3 added each shift's last
    activity (its fourth field) and ``missed``, for shifts that expire unclosed."""
    return {
        "v": 3,
        "clocks": {store: c.as_state() for store, c in held.clocks.items()},
        "heard": iso_or_none(held.heard),
        "quiet_check": iso_or_none(held.quiet_check),
        "orders": [
            [
                o.store_id,
                o.order_id,
                o.channel,
                o.register_id,
                iso_or_none(o.paid_at),
                iso_or_none(o.started_at),
                iso_or_none(o.ready_at),
                o.barista,
                o.drinks,
                o.items,
                iso_or_none(o.seen_at),
            ]
            for o in held.orders.values()
        ],
        "tracks": [
            [
                t.store_id,
                t.track_id,
                iso_or_none(t.first_enter),
                iso_or_none(t.last_seen),
                t.is_staff,
                {z: iso_or_none(e) for z, e in t.inside.items()},
                t.zones,
                t.been_inside,
                iso_or_none(t.queue_enter),
            ]
            for t in held.tracks.values()
        ],
        "shifts": [
            [s, staff, iso_or_none(sh.start), iso_or_none(sh.last_active)]
            for (s, staff), sh in held.shifts.items()
        ],
        "free_since": [[s, staff, iso_or_none(t)] for (s, staff), t in held.free_since.items()],
        "recent": {s: [[iso_or_none(t), v] for t, v in items] for s, items in held.recent.items()},
        "firing": [[s, rule, st.firing, st.streak] for (s, rule), st in held.firing.items()],
        "missed": [[s, staff, iso_or_none(t)] for (s, staff), t in held.missed.items()],
    }


def read_state(state: Mapping[str, Any]) -> InFlight:
    """A snapshot written by :func:`write_state`, a v2 one (shifts without their last
    activity) or a v1 one (one clock for the chain)."""
    held = InFlight(
        heard=ts_or_none(state.get("heard")), quiet_check=ts_or_none(state.get("quiet_check"))
    )
    for s, oid, ch, reg, paid, started, ready, barista, drinks, items, seen in state["orders"]:
        held.orders[(s, oid)] = OpenOrder(
            s,
            oid,
            ch,
            reg,
            ts_or_none(paid),
            ts_or_none(started),
            ts_or_none(ready),
            barista,
            drinks,
            items,
            ts_or_none(seen),
        )
    for s, tid, first, last, staff, inside, zones, been, queue in state["tracks"]:
        first_ts, last_ts = ts_or_none(first), ts_or_none(last)
        assert first_ts is not None and last_ts is not None
        held.tracks[(s, tid)] = OpenTrack(
            s,
            tid,
            first_ts,
            last_ts,
            staff,
            {z: e for z, e in ((z, ts_or_none(v)) for z, v in inside.items()) if e is not None},
            zones,
            been,
            ts_or_none(queue),
        )
    held.free_since = ByStore(
        ((s, st), t) for s, st, v in state["free_since"] if (t := ts_or_none(v))
    )
    for s, st, start, *seen in state["shifts"]:
        if (begun := ts_or_none(start)) is not None:
            held.shifts[(s, st)] = OpenShift(begun, _last_active(held, (s, st), begun, seen))
    held.missed = ByStore(
        ((s, st), t) for s, st, v in state.get("missed", ()) if (t := ts_or_none(v))
    )
    held.recent = {
        s: [(t, v) for ts_, v in items if (t := ts_or_none(ts_))]
        for s, items in state["recent"].items()
    }
    held.firing = ByStore(((s, r), RuleState(on, streak)) for s, r, on, streak in state["firing"])
    if "clocks" in state:
        held.clocks = {s: StoreClock.from_state(c) for s, c in state["clocks"].items()}
    else:
        _clocks_from_v1(held, state)
    return held


def _last_active(
    held: InFlight, key: tuple[str, str], start: datetime, seen: list[Any]
) -> datetime:
    """A shift's last activity. A v1 or v2 snapshot did not keep it; the nearest it
    holds is when the barista last went idle and the orders they are still making.
    That can only under-count a shift that expires later, never stretch it past the
    work."""
    if seen and (last := ts_or_none(seen[0])) is not None:
        return last
    moments = [start, held.free_since.get(key)]
    for order in held.orders.values():
        if (order.store_id, order.barista) == key:
            moments += [order.started_at, order.ready_at]
    return max(m for m in moments if m is not None)


def _clocks_from_v1(held: InFlight, state: Mapping[str, Any]) -> None:
    """A snapshot from before clocks were per store: every store with something in
    flight starts from the chain's clock; any other store starts with its next
    event. (Replaying the log gives each store its own history.)

    The snapshot holds no receive times; the chain's clock stands in for when each
    store was last heard (it was the latest event's time). Without one a store that
    sends nothing after the upgrade never counts as quiet, and what it had in flight,
    which the chain's clock used to time out, stays open for good."""
    wm, nxt = ts_or_none(state.get("watermark")), ts_or_none(state.get("next_tick"))
    if wm is None or nxt is None:
        return
    provisional = bool(state.get("provisional", False))
    stores = {s for s, _ in (*held.orders, *held.tracks, *held.shifts, *held.firing)}
    stores |= set(held.recent)
    event = HeldEvent.from_state(state.get("held"))
    if event is not None and event.store_id is not None:
        stores.add(event.store_id)
    for store in stores:
        mine = event if event is not None and event.store_id == store else None
        held.clocks[store] = StoreClock(wm, nxt, provisional, mine, heard_at=wm)


def store_time(state: Mapping[str, Any] | None, store_id: str) -> datetime | None:
    """A store's event time from a saved tracker state, without rebuilding the tracker
    (dashboards); ``None`` for a store the tracker has not seen or has forgotten."""
    if not state:
        return None
    clocks = state.get("clocks")
    if clocks is None:  # a v1 snapshot: one clock for every store
        return ts_or_none(state.get("watermark"))
    raw = clocks.get(store_id)
    return datetime.fromisoformat(raw[0]) if raw else None
