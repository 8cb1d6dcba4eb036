"""The operations report: pure functions from facts to what a store manager reads.

Percentiles use linear interpolation between closest ranks (numpy's default), so
figures match what a data scientist gets from pandas on the same facts.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from storelens.core.dayparts import daypart_of_hour, daypart_order
from storelens.instore.facts import OpsFacts, OrderFact

__all__ = ["Day", "ops_report", "percentile", "tracked_days"]

T = TypeVar("T")


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 3)


def _stats(values: Sequence[float], prefix: str = "") -> dict[str, float | int | None]:
    return {
        f"{prefix}count": len(values),
        f"{prefix}p50_s": percentile(values, 0.5),
        f"{prefix}p90_s": percentile(values, 0.9),
        f"{prefix}max_s": round(max(values), 3) if values else None,
        f"{prefix}mean_s": round(statistics.fmean(values), 3) if values else None,
    }


def _grouped(
    orders: Iterable[OrderFact], key: Callable[[OrderFact], str | None]
) -> list[dict[str, Any]]:
    groups: dict[str, list[float]] = defaultdict(list)
    for o in orders:
        if o.fulfillment_s is not None:
            groups[key(o) or "none"].append(o.fulfillment_s)
    return [{"key": k, **_stats(v)} for k, v in sorted(groups.items())]


def _in(ts: datetime | None, since: datetime | None, until: datetime | None) -> bool:
    return ts is not None and (since is None or ts >= since) and (until is None or ts < until)


def _overlap(a: datetime, b: datetime, since: datetime | None, until: datetime | None) -> float:
    lo = max(a, since) if since else a
    hi = min(b, until) if until else b
    return max(0.0, (hi - lo).total_seconds())


Day = tuple[str, date]  # a store and a local day


def tracked_days(orders: Iterable[OrderFact], tz: ZoneInfo) -> set[Day]:
    """The (store, local day) pairs on which some order paid that day was handed off.

    A day with none did not track fulfillment (no order screens that day, or a till
    history imported without them): its paid orders are "untracked", not "incomplete".
    The demo's 26 weeks of till history read as 29,191 incomplete orders, which a
    manager takes for broken data (a new user's review). Taken over whole days, not the
    report's window: an hour without a hand-off on a normal day is still tracked (a
    second review), and an order handed off after midnight marks the day it was paid."""
    return {
        (o.store_id, (o.paid_at or o.handed_off_at).astimezone(tz).date())
        for o in orders
        if o.handed_off_at is not None
    }


def _fulfillment(
    orders: list[OrderFact], tz: ZoneInfo, detail: bool, tracked: set[Day]
) -> dict[str, Any]:
    complete = [o for o in orders if o.complete]
    values = [o.fulfillment_s for o in complete if o.fulfillment_s is not None]
    incomplete: list[OrderFact] = []
    untracked: list[OrderFact] = []
    for o in orders:
        if o.complete:
            continue
        day = None if o.paid_at is None else (o.store_id, o.paid_at.astimezone(tz).date())
        (incomplete if day is None or day in tracked else untracked).append(o)

    def local_hour(o: OrderFact) -> int:
        assert o.paid_at is not None
        return o.paid_at.astimezone(tz).hour

    out: dict[str, Any] = {
        "orders": len(orders),
        "complete": len(complete),
        "incomplete": len(incomplete),
        "untracked": len(untracked),
        **_stats(values),
        "by_hour": _grouped(complete, lambda o: f"{local_hour(o):02d}"),
        # The insights' dayparts, so an order at 05:30 is "night" here as on the Floor page.
        "by_daypart": sorted(
            _grouped(complete, lambda o: daypart_of_hour(local_hour(o))),
            key=lambda row: daypart_order(row["key"]),
        ),
        # An order with no till is named by its channel: "none" read as a broken till.
        "by_register": _grouped(complete, lambda o: o.register_id or f"{o.channel} (no till)"),
        "by_channel": _grouped(complete, lambda o: o.channel),
        "incomplete_orders": [
            {
                "order_id": o.order_id,
                "missing": [
                    n
                    for n, v in (("paid", o.paid_at), ("handed_off", o.handed_off_at))
                    if v is None
                ],
                "paid_at": o.paid_at.isoformat() if o.paid_at else None,
            }
            for o in incomplete[:200]
        ],
    }
    if detail:
        out["per_order"] = {o.order_id: o.fulfillment_s for o in complete}
    return out


def _baristas(
    facts: OpsFacts, orders: list[OrderFact], since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    on_shift: dict[str, float] = defaultdict(float)
    for s in facts.shifts:
        on_shift[s.staff_id] += _overlap(s.start, s.end, since, until)
    drinks: dict[str, int] = defaultdict(int)
    made: dict[str, int] = defaultdict(int)
    busy: dict[str, float] = defaultdict(float)
    for o in orders:
        if o.barista is None or o.ready_at is None or not _in(o.ready_at, since, until):
            continue
        drinks[o.barista] += o.drinks
        made[o.barista] += 1
        if o.started_at is not None:
            busy[o.barista] += (o.ready_at - o.started_at).total_seconds()
    rows = []
    for staff in sorted(set(on_shift) | set(made)):
        hours = on_shift[staff] / 3600
        rows.append(
            {
                "staff_id": staff,
                "on_shift_h": round(hours, 4),
                "orders": made[staff],
                "drinks": drinks[staff],
                "drinks_per_hour": round(drinks[staff] / hours, 3) if hours else None,
                "busy_h": round(busy[staff] / 3600, 4),
                "utilisation": round(busy[staff] / on_shift[staff], 4) if hours else None,
            }
        )
    return rows


def _bucket_start(ts: datetime, bucket: timedelta, tz: ZoneInfo) -> datetime:
    """The start of ``ts``'s bucket on the store's clock (buckets of up to a day start
    on the store's hour or quarter, not UTC's), as a UTC moment to count on from."""
    local = ts.astimezone(tz)
    step = max(1, int(bucket.total_seconds() // 60))
    minute_of_day = local.hour * 60 + local.minute
    hour, minute = divmod(minute_of_day - minute_of_day % step, 60)
    return local.replace(hour=hour, minute=minute, second=0, microsecond=0).astimezone(UTC)


def _queue_length(
    spans: list[tuple[datetime, datetime]], bucket: timedelta, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """Max and time-weighted mean of people queueing per bucket, from enter/exit spans.

    Buckets are counted in real time (a quarter hour is 15 minutes across a clock
    change) and stamped in the store's time: charts draw a stamp at the clock time it
    spells, whatever its offset, so a UTC stamp put a Berlin café's 07:00 rush at 06:00."""
    if not spans:
        return []
    changes = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
    t0 = _bucket_start(min(a for a, _ in spans), bucket, tz)
    buckets: dict[datetime, list[float]] = {}  # bucket -> [max, weighted sum]
    level, prev = 0, t0
    for t, delta in changes:
        cursor = prev
        while cursor < t:  # credit the level held from cursor to t to each bucket it spans
            b = t0 + ((cursor - t0) // bucket) * bucket
            upto = min(t, b + bucket)
            stats = buckets.setdefault(b, [0.0, 0.0])
            stats[0] = max(stats[0], level)
            stats[1] += level * (upto - cursor).total_seconds()
            cursor = upto
        level += delta
        b = t0 + ((t - t0) // bucket) * bucket
        stats = buckets.setdefault(b, [0.0, 0.0])
        stats[0] = max(stats[0], level)
        prev = t
    return [
        {
            "t": b.astimezone(tz).isoformat(),
            "max": int(m),
            "mean": round(w / bucket.total_seconds(), 3),
        }
        for b, (m, w) in sorted(buckets.items())
    ]


def ops_report(
    facts: OpsFacts,
    *,
    store_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    timezone: str = "UTC",
    queue_zones: Iterable[str] = ("queue",),
    bucket_minutes: int = 15,
    detail: bool = False,
    tracked: set[Day] | None = None,
) -> dict[str, Any]:
    """The report over ``[since, until)``; orders count by payment time (or hand-off
    time when the payment was never seen), people by the time they entered.

    ``tracked``: the days that tracked fulfillment (:func:`tracked_days`); by default
    read from all of ``facts``' orders, so pass whole days' facts or this set."""
    tz = ZoneInfo(timezone)

    def mine(items: Iterable[T], ts: Callable[[T], datetime | None]) -> list[T]:
        return [
            x
            for x in items
            if (store_id is None or getattr(x, "store_id", None) == store_id)
            and _in(ts(x), since, until)
        ]

    store_orders = [o for o in facts.orders if store_id is None or o.store_id == store_id]
    orders = mine(facts.orders, lambda o: o.paid_at or o.handed_off_at)
    waits = mine(facts.queue_waits, lambda q: q.queue_enter)
    seen = mine(facts.visits, lambda v: v.enter)
    visits = [v for v in seen if v.came_in]
    zone_visits = [z for z in mine(facts.zone_visits, lambda z: z.enter) if not z.is_staff]
    queue_set = set(queue_zones)
    by_zone: dict[str, list[float]] = defaultdict(list)
    for z in zone_visits:
        by_zone[z.zone_id].append(z.dwell_s)
    report: dict[str, Any] = {
        "store_id": store_id,
        "from": since.isoformat() if since else None,
        "to": until.isoformat() if until else None,
        "timezone": timezone,
        "fulfillment": _fulfillment(
            orders,
            tz,
            detail,
            tracked if tracked is not None else tracked_days(store_orders, tz),
        ),
        "baristas": _baristas(
            facts,
            store_orders,
            since,
            until,
        ),
        "queue": {
            **_stats([q.wait_s for q in waits], "wait_"),
            "length": _queue_length(
                [(z.enter, z.exit) for z in zone_visits if z.zone_id in queue_set],
                timedelta(minutes=bucket_minutes),
                tz,
            ),
        },
        "dwell": {
            **_stats([v.dwell_s for v in visits]),
            "walk_bys": len(seen) - len(visits),
            "by_zone": [{"zone_id": k, **_stats(v)} for k, v in sorted(by_zone.items())],
        },
    }
    if detail:
        report["queue"]["per_customer"] = {q.track_id: q.wait_s for q in waits}
        report["dwell"]["per_visit"] = {v.track_id: v.dwell_s for v in visits}
    return report
