"""One simulated week, run once per session and shared by the sim tests (it takes seconds)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from storelens.sim import SimSummary, default_layout_path, run_simulation


def ms(stamp: str) -> int:
    """An ISO timestamp (events' or truth's format) as integer milliseconds since the epoch."""
    moment = datetime.fromisoformat(stamp)
    return round(moment.timestamp() * 1000)


@dataclass
class SimRun:
    summary: SimSummary
    lines: list[str]
    events: list[dict[str, Any]]
    truth: dict[str, Any]
    by_type: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for event in self.events:
            event["ms"] = ms(event["ts"])
            grouped[event["type"]].append(event)
        self.by_type = dict(grouped)

    def of(self, type_: str) -> list[dict[str, Any]]:
        return self.by_type.get(type_, [])

    @staticmethod
    def ms(stamp: str) -> int:
        return ms(stamp)


def load_run(summary: SimSummary) -> SimRun:
    lines = summary.events_path.read_text(encoding="utf-8").splitlines()
    truth = json.loads(summary.truth_path.read_text(encoding="utf-8"))
    return SimRun(summary, lines, [json.loads(line) for line in lines], truth)


@pytest.fixture(scope="session")
def week(tmp_path_factory: pytest.TempPathFactory) -> SimRun:
    out: Path = tmp_path_factory.mktemp("sim-week")
    return load_run(run_simulation(default_layout_path(), days=7, seed=7, out_dir=out))
