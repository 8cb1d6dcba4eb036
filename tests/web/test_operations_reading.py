"""How the Operations page puts its figures: alerts summed up per rule before the history
(a demo week's 84 raises, before the slow-orders fix, were one list 8,000 pixels long),
and one unit per column of durations."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storelens.core.durations import duration_in, duration_unit
from storelens.web.operations import alert_summary
from storelens.web.schemas import AlertRow

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def row(rule: str, state: str, minutes: int, severity: str = "warning") -> AlertRow:
    at = T0 + timedelta(minutes=minutes)
    return AlertRow(rule_id=rule, state=state, at=at, severity=severity, message="m", value=1.0)


def test_raises_are_counted_per_rule_most_first_with_the_latest() -> None:
    history = [  # newest first, as the page has them
        row("slow-orders", "cleared", 90),
        row("slow-orders", "raised", 80),
        row("idle-barista", "raised", 70, "info"),
        row("slow-orders", "cleared", 40),
        row("slow-orders", "raised", 30),
    ]
    summary = alert_summary(history)
    assert [(s.rule_id, s.severity, s.raised) for s in summary] == [
        ("slow-orders", "warning", 2),
        ("idle-barista", "info", 1),
    ]
    assert summary[0].last_raised_at == T0 + timedelta(minutes=80)


def test_clears_alone_or_nothing_sum_to_nothing() -> None:
    assert alert_summary([]) == []
    assert alert_summary([row("long-queue", "cleared", 5)]) == []  # raised before the period


def test_a_column_of_durations_has_one_unit() -> None:
    """ "88 s" above "1.6 min" in the hourly table made a reader compare unlike figures."""
    column = [88.0, None, 96.0]
    unit = duration_unit(column)
    assert [duration_in(v, unit) for v in column] == ["1.5 min", "–", "1.6 min"]
    quick = [12.0, 45.0]
    assert [duration_in(v, duration_unit(quick)) for v in quick] == ["12 s", "45 s"]
