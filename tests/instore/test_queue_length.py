"""Queue length over the day, bucketed and stamped in the store's own time.

Charts draw a bucket at the clock time written in its stamp (plotly ignores the
offset), so a UTC stamp drew a Berlin café's 07:00 opening rush at 06:00."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from itertools import pairwise

from rich.console import Console

from storelens.instore.cli import print_report
from storelens.instore.facts import OpsFacts, ZoneVisit
from storelens.instore.report import ops_report


def queued(*spans: tuple[datetime, float]) -> OpsFacts:
    return OpsFacts(
        zone_visits=[
            ZoneVisit("s", f"t{i}", "queue", at, at + timedelta(seconds=secs), False)
            for i, (at, secs) in enumerate(spans)
        ]
    )


def buckets(facts: OpsFacts, timezone: str, minutes: int) -> list[tuple[str, int, float]]:
    report = ops_report(facts, store_id="s", timezone=timezone, bucket_minutes=minutes)
    return [(b["t"], b["max"], b["mean"]) for b in report["queue"]["length"]]


def test_buckets_carry_the_store_clock_time() -> None:
    """07:05 in Berlin is 06:05 UTC; the bucket reads 07:00+01:00 (it read 06:00+00:00)."""
    facts = queued((datetime(2026, 11, 2, 6, 5, tzinfo=UTC), 300))
    assert buckets(facts, "Europe/Berlin", 15) == [("2026-11-02T07:00:00+01:00", 1, 0.333)]


def test_hour_buckets_start_on_the_store_hour_in_a_half_hour_zone() -> None:
    """India is UTC+05:30: 09:10 local falls in the 09:00 hour (it fell in 08:30-09:30)."""
    facts = queued((datetime(2026, 11, 2, 3, 40, tzinfo=UTC), 600))
    assert buckets(facts, "Asia/Kolkata", 60) == [("2026-11-02T09:00:00+05:30", 1, 0.167)]


def test_buckets_stay_fifteen_real_minutes_apart_across_the_autumn_change() -> None:
    """Berlin's clocks go back at 03:00 CEST on 25 October 2026 (01:00 UTC)."""
    facts = queued((datetime(2026, 10, 25, 0, 50, tzinfo=UTC), 1800))
    stamps = [datetime.fromisoformat(t) for t, _, _ in buckets(facts, "Europe/Berlin", 15)]
    assert [t.isoformat() for t in stamps] == [
        "2026-10-25T02:45:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:15:00+01:00",
    ]
    assert [b - a for a, b in pairwise(stamps)] == [timedelta(minutes=15)] * 2


def test_the_terminal_report_prints_alerts_in_store_time() -> None:
    report = ops_report(OpsFacts(), store_id="s", timezone="Europe/Berlin")
    report["alerts"] = [
        {
            "rule_id": "slow-orders",
            "state": "raised",
            "at": "2026-11-02T06:23:00+00:00",
            "message": "orders take 6.1 min",
        }
    ]
    out = StringIO()
    print_report(report, Console(file=out, width=200))
    assert "alert raised 2026-11-02 07:23 (Europe/Berlin): slow-orders" in out.getvalue()
