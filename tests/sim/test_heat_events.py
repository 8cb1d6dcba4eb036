"""The simulator's ``vision.heatmap`` grids hold exactly the time its track points stand for,
left blank in staff-only zones as the vision pipeline leaves them."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from storelens.core.events import event_adapter
from storelens.core.layout import load_layout
from storelens.instore.insights_heat import average_density, heat_sample
from storelens.sim import default_layout_path, run_simulation
from storelens.sim.config import SimConfig
from storelens.vision.heatmap import staff_cells


def test_heat_grids_sum_the_sampled_person_seconds(tmp_path: Path) -> None:
    config = SimConfig(heatmap_every_s=900, track_interval_s=15)
    summary = run_simulation(default_layout_path(), 1, 7, tmp_path, config=config)
    events = [json.loads(line) for line in summary.events_path.read_text().splitlines()]
    heat = [e for e in events if e["type"] == "vision.heatmap"]
    points = [e for e in events if e["type"] == "vision.track"]
    event_adapter.validate_python(heat[0])
    ends = [datetime.fromisoformat(e["ts"]).timestamp() for e in heat]
    assert all(b - a == 900 for a, b in pairwise(ends))  # no gaps
    assert all(end % 900 == 0 for end in ends)
    assert {(e["payload"]["rows"], e["payload"]["cols"]) for e in heat} == {(36, 56)}
    total = sum(sum(e["payload"]["values"]) for e in heat)
    staff = staff_cells(load_layout(default_layout_path()), 36, 56, 0.25).reshape(36, 56)
    seen = [p["payload"] for p in points]
    customers = [p for p in seen if not staff[int(p["y"] / 0.25), int(p["x"] / 0.25)]]
    assert 0 < len(customers) < len(seen)  # the baristas behind the bar are left out
    assert total == pytest.approx(15 * len(customers), abs=1e-6)
    grids = [heat_sample(datetime.fromisoformat(e["ts"]), e["payload"]) for e in heat]
    day = average_density(grids, timezone="Europe/Berlin", label="day")
    assert day is not None and day.hours == len(heat) / 4
    assert np.isclose(day.people_per_m2.sum() * 0.0625 * len(heat) * 900, total)


def test_no_heat_events_unless_asked(tmp_path: Path) -> None:
    summary = run_simulation(default_layout_path(), 1, 7, tmp_path)
    assert "vision.heatmap" not in summary.events_by_type
    with pytest.raises(ValueError, match="heatmap_every_s must be at least"):
        SimConfig(heatmap_every_s=5, track_interval_s=15)
    assert Counter(summary.events_by_type)["vision.track"] > 0
