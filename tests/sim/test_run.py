from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from storelens.core.events import event_adapter
from storelens.sim import SimConfig, default_layout_path, run_simulation

if TYPE_CHECKING:
    from conftest import SimRun


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    first = run_simulation(default_layout_path(), days=2, seed=11, out_dir=tmp_path / "a")
    second = run_simulation(default_layout_path(), days=2, seed=11, out_dir=tmp_path / "b")
    assert first.events_path.read_bytes() == second.events_path.read_bytes()
    assert first.truth_path.read_bytes() == second.truth_path.read_bytes()
    assert first.events > 10_000


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    first = run_simulation(default_layout_path(), days=1, seed=1, out_dir=tmp_path / "a")
    second = run_simulation(default_layout_path(), days=1, seed=2, out_dir=tmp_path / "b")
    assert first.events_path.read_bytes() != second.events_path.read_bytes()
    assert first.truth_path.read_bytes() != second.truth_path.read_bytes()
    ids = {json.loads(line)["id"] for line in first.events_path.open()}
    assert ids.isdisjoint(json.loads(line)["id"] for line in second.events_path.open())


def test_more_days_keep_the_earlier_days(tmp_path: Path) -> None:
    """Per-day random streams: simulating a longer period does not rewrite day one."""
    one = run_simulation(default_layout_path(), days=1, seed=5, out_dir=tmp_path / "a")
    two = run_simulation(default_layout_path(), days=2, seed=5, out_dir=tmp_path / "b")
    day_one = one.events_path.read_bytes()
    assert two.events_path.read_bytes().startswith(day_one)


def test_every_event_validates_in_time_order_with_unique_ids(week: SimRun) -> None:
    stamps = []
    for line in week.lines:
        event = event_adapter.validate_json(line)
        assert event.model_dump_json() == line  # written from validated models, nothing lost
        assert uuid.UUID(str(event.id)).version == 4
        stamps.append(event.ts)
    assert stamps == sorted(stamps)
    assert len({e["id"] for e in week.events}) == len(week.events)
    assert week.truth["summary"]["events"] == len(week.lines) == week.summary.events


def test_summary_matches_files(week: SimRun) -> None:
    summary = week.summary
    assert summary.visits == len(week.truth["visits"]) == week.truth["summary"]["visits"]
    assert summary.orders == len(week.truth["orders"]) == len(week.of("pos.order_paid"))
    assert sum(summary.events_by_type.values()) == summary.events
    assert summary.positions_path is None
    assert 2_500 < summary.visits < 3_600  # ~450 a weekday, ~400 a weekend day


def test_seven_days_run_in_reasonable_time(week: SimRun) -> None:
    # The budget is 30 s; this is only a sanity bound, real timing lives in the benchmarks.
    assert week.summary.seconds < 120


def test_truth_header_and_time_format(week: SimRun) -> None:
    truth = week.truth
    assert (truth["seed"], truth["days"], truth["store_id"]) == (7, 7, "cafe-01")
    assert (truth["layout"], truth["start_date"]) == ("cafe.toml", "2026-11-02")
    order = truth["orders"][0]
    for key in ("paid_at", "started_at", "ready_at", "handed_off_at"):
        assert len(order[key]) == len("2026-11-02T06:07:02.311Z") and order[key].endswith("Z")
    assert order["paid_at"] >= "2026-11-02T06:00:00.000Z"  # 07:00 in Berlin


def test_config_rejects_a_profile_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="half-hour weights"):
        SimConfig(weekday_profile=(1.0, 2.0))
