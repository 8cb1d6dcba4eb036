"""Queue wait, as a manager means it: from joining the line to reaching the till.

Hand-made walks for the definition's edges, and the simulated fashion store against
its truth (a retail store pays at a ``checkout``, a café orders at a ``counter``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

from storelens.instore.facts import OpsFacts
from storelens.instore.processor import FileEvent, report_from_file
from storelens.instore.tracker import OpsTracker, TrackerConfig
from storelens.sim import run_simulation

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CAFE = {"entrance": "entrance", "queue": "queue", "counter": "counter", "seating": "seating"}
SHOP = {"entrance": "entrance", "rails": "aisle", "queue": "queue", "till": "checkout"}
APPAREL = Path(str(files("storelens.samples").joinpath("layouts", "apparel.toml")))


def walk(track: str, path: list[tuple[str, float, float]]) -> list[FileEvent]:
    """Zone enters and exits; an exit sorts before an enter at the same moment."""
    out = []
    for zone, enter, exit_ in path:
        for kind, sec in (("vision.zone_enter", enter), ("vision.zone_exit", exit_)):
            payload: dict[str, Any] = {"zone_id": zone, "track_id": track}
            out.append(FileEvent(kind, T0 + timedelta(seconds=sec), "s", None, payload))
    return sorted(out, key=lambda e: (e.ts, e.type == "vision.zone_enter"))


def waits(kinds: dict[str, str], events: list[FileEvent]) -> list[tuple[str, float]]:
    tracker = OpsTracker(TrackerConfig(zone_kinds={"s": kinds}))
    facts = OpsFacts()
    facts.add(tracker.apply_all(events))
    facts.add(tracker.finish())
    return [(q.track_id, q.wait_s) for q in facts.queue_waits]


def test_a_retail_queue_ends_at_the_checkout() -> None:
    path = [("entrance", 0, 5), ("rails", 5, 300), ("queue", 300, 390), ("till", 390, 450)]
    shopper = walk("c1", [*path, ("entrance", 450, 455)])
    assert waits(SHOP, shopper) == [("c1", 90.0)]


def test_a_queue_left_for_a_seat_is_no_wait() -> None:
    """Through the queue zone to a table, and up to the counter 40 minutes later: the
    40 minutes were spent sitting, not queueing (the old figure was 2,395 s)."""
    sitter = walk(
        "c1",
        [("entrance", 0, 5), ("queue", 5, 9), ("seating", 9, 2400), ("counter", 2400, 2460)],
    )
    queued = walk("c2", [("entrance", 0, 5), ("queue", 5, 125), ("counter", 125, 185)])
    assert waits(CAFE, sitter + queued) == [("c2", 120.0)]


def test_rejoining_the_queue_measures_from_the_second_time() -> None:
    back = walk(
        "c1",
        [
            ("entrance", 0, 5),
            ("queue", 5, 60),
            ("seating", 60, 600),
            ("queue", 600, 660),
            ("counter", 660, 700),
        ],
    )
    assert waits(CAFE, back) == [("c1", 60.0)]


def test_fashion_store_queue_waits_match_truth(tmp_path: Path) -> None:
    summary = run_simulation(APPAREL, 1, 7, tmp_path)
    truth = json.loads(summary.truth_path.read_text())
    report = report_from_file(summary.events_path, APPAREL, detail=True)
    ours = report["queue"]["per_customer"]
    assert len(truth["queue"]) > 100
    assert set(ours) == {q["track_id"] for q in truth["queue"]}
    assert max(abs(ours[q["track_id"]] - q["wait_s"]) for q in truth["queue"]) <= 1.0
    assert report["queue"]["wait_count"] == len(truth["queue"])
