"""Staff alert rules, evaluated once per event-time minute on a live snapshot.

An alert is raised when its condition has held for a few minutes and cleared when
it has been gone for a few more, so a long rush gives one alert, not one per event,
and a value hovering at the threshold does not make phones buzz every minute.
Rule state is part of the tracker's snapshot, which makes alerts exactly-once
across processor restarts.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from storelens.instore.facts import ShiftFact

__all__ = [
    "DEFAULT_RULES",
    "MISSED_CLOCK_OUT",
    "AlertChange",
    "AlertRule",
    "RuleState",
    "Snapshot",
    "evaluate_rules",
    "missed_clock_out",
    "missed_clock_out_cleared",
]

RuleKind = Literal["fulfillment_p90", "queue_length", "idle_barista"]


@dataclass(frozen=True, slots=True)
class AlertRule:
    """``fulfillment_p90``: p90 of in-store orders handed off in the last ``window_min`` minutes
    above ``threshold`` seconds (needs ``min_orders``); ``queue_length``: people in
    queue zones above ``threshold``; ``idle_barista``: a clocked-in barista idle for
    ``threshold`` seconds while at least ``queue_min`` people queue."""

    id: str
    kind: RuleKind
    threshold: float
    window_min: int = 15
    min_orders: int = 5
    queue_min: int = 4
    severity: Literal["info", "warning", "critical"] = "warning"
    raise_after_min: int = 2  # the condition must hold this many minutes in a row
    clear_after_min: int = 5  # … and be gone this long before the alert clears


DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule("slow-orders", "fulfillment_p90", threshold=360),
    AlertRule("long-queue", "queue_length", threshold=8),
    AlertRule("idle-barista", "idle_barista", threshold=120, queue_min=4, severity="info"),
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a store looks like at one moment of event time."""

    store_id: str
    at: datetime
    queue_length: int
    recent_fulfillment: Sequence[tuple[datetime, float]]  # (handed off at, seconds)
    idle_s: Mapping[str, float]  # clocked-in barista -> seconds since last order


@dataclass(frozen=True, slots=True)
class AlertChange:
    store_id: str
    rule_id: str
    state: Literal["raised", "cleared"]
    at: datetime
    severity: str
    message: str
    value: float


def _min_s(seconds: float) -> str:
    """ "6 min 01 s": minutes to one decimal read "6.0 min; limit 6.0 min" at 361 s."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60:02d} s"


def _over(seconds: float, limit: float) -> str:
    """A value over ``limit`` that rounds to it reads "just over 6 min 00 s": "take 6 min
    00 s; limit 6 min 00 s" looked like an alert raised within the limit (a new user's
    review)."""
    shown = _min_s(seconds)
    return f"just over {shown}" if seconds > limit and shown == _min_s(limit) else shown


def _p90(values: Sequence[float]) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def _measure(rule: AlertRule, snap: Snapshot) -> tuple[bool, float, str]:
    if rule.kind == "fulfillment_p90":
        since = snap.at - timedelta(minutes=rule.window_min)
        values = [s for t, s in snap.recent_fulfillment if t >= since]
        if len(values) < rule.min_orders:
            return False, 0.0, ""
        p90 = _p90(values)
        return (
            p90 > rule.threshold,
            p90,
            f"in-store orders take {_over(p90, rule.threshold)} (p90, last {rule.window_min} min, "
            f"{len(values)} orders); limit {_min_s(rule.threshold)}",
        )
    if rule.kind == "queue_length":
        n = snap.queue_length
        return n > rule.threshold, float(n), f"{n} people queueing (limit {rule.threshold:g})"
    idle = {b: s for b, s in snap.idle_s.items() if s >= rule.threshold}
    if snap.queue_length < rule.queue_min or not idle:
        return False, 0.0, ""
    who = ", ".join(sorted(idle))
    return (
        True,
        max(idle.values()),
        f"{who} idle while {snap.queue_length} people queue",
    )


@dataclass(slots=True)
class RuleState:
    firing: bool = False
    streak: int = 0  # consecutive minutes the condition disagreed with ``firing``


def evaluate_rules(
    rules: Sequence[AlertRule],
    snapshots: Sequence[Snapshot],
    states: MutableMapping[tuple[str, str], RuleState],
) -> list[AlertChange]:
    """Changes since the last evaluation; updates ``states`` in place."""
    changes = []
    for snap in snapshots:
        for rule in rules:
            on, value, message = _measure(rule, snap)
            key = (snap.store_id, rule.id)
            st = states.get(key) or RuleState()
            st.streak = st.streak + 1 if on != st.firing else 0
            if not st.firing and st.streak >= rule.raise_after_min:
                st.firing, st.streak = True, 0
                changes.append(
                    AlertChange(
                        snap.store_id,
                        rule.id,
                        "raised",
                        snap.at,
                        rule.severity,
                        message,
                        round(value, 3),
                    )
                )
            elif st.firing and st.streak >= rule.clear_after_min:
                st.firing, st.streak = False, 0
                changes.append(
                    AlertChange(
                        snap.store_id,
                        rule.id,
                        "cleared",
                        snap.at,
                        rule.severity,
                        f"{rule.id} back to normal",
                        0.0,
                    )
                )
            if st.firing or st.streak:
                states[key] = st
            else:
                states.pop(key, None)
    return changes


# -- a shift that never clocked out -----------------------------------------------------

MISSED_CLOCK_OUT = "missed-clock-out"


def missed_clock_out(fact: ShiftFact, at: datetime, bound_s: float) -> AlertChange:
    """Raised when the tracker ends a shift left open past ``bound_s`` (``fact`` is the
    shift as counted). Not a rule a store sets: it reports a record to correct, the
    hours a timesheet needs, so it comes whatever a store's rules are."""
    hours = fact.seconds / 3600
    return AlertChange(
        fact.store_id,
        MISSED_CLOCK_OUT,
        "raised",
        at,
        "info",
        f"{fact.staff_id} did not clock out within {bound_s / 3600:g} h of clocking in at "
        f"{fact.start.isoformat(timespec='minutes')}; the shift counts to the last activity "
        f"at {fact.end.isoformat(timespec='minutes')} ({hours:.1f} h)",
        round(hours, 3),
    )


def missed_clock_out_cleared(store_id: str, at: datetime, why: str) -> AlertChange:
    return AlertChange(
        store_id, MISSED_CLOCK_OUT, "cleared", at, "info", f"{MISSED_CLOCK_OUT}: {why}", 0.0
    )
