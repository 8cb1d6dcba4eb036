"""The ops metrics against the simulator's ground truth, in batch and in the stream.

The issue's bar: over a simulated 7-day café run, fulfillment times and drinks per
barista-hour match truth exactly, queue waits within 1 s; the stream processor,
killed with SIGKILL at random points and restarted, ends with the batch numbers.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from storelens import stores
from storelens.core.layout import load_layout
from storelens.ingest.batch import ingest_numbered
from storelens.ingest.files import read_items
from storelens.instore.processor import OpsProcessor, report_from_db, report_from_file
from storelens.sim import default_layout_path, run_simulation
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import alerts


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("week")
    summary = run_simulation(default_layout_path(), 7, 7, out)
    return summary.events_path, json.loads(summary.truth_path.read_text())


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two_days")
    return run_simulation(default_layout_path(), 2, 11, out).events_path


def test_batch_report_matches_truth_over_a_week(week: tuple[Path, dict[str, Any]]) -> None:
    events, truth = week
    report = report_from_file(events, default_layout_path(), detail=True)
    f = report["fulfillment"]
    assert f["incomplete"] == 0
    assert f["per_order"] == {o["order_id"]: o["fulfillment_s"] for o in truth["orders"]}
    ours = {b["staff_id"]: b for b in report["baristas"]}
    for b in truth["baristas"]:
        assert ours[b["staff_id"]]["drinks_per_hour"] == b["drinks_per_hour"], b["staff_id"]
        assert ours[b["staff_id"]]["drinks"] == b["drinks"]
        assert ours[b["staff_id"]]["utilisation"] == b["utilisation"]
    waits = report["queue"]["per_customer"]
    assert set(waits) == {q["track_id"] for q in truth["queue"]}  # staff never counted
    assert max(abs(waits[q["track_id"]] - q["wait_s"]) for q in truth["queue"]) <= 1.0
    dwell = report["dwell"]["per_visit"]
    assert dwell == {v["track_id"]: v["dwell_s"] for v in truth["visits"]}


def _load(engine: Engine, events: Path) -> int:
    from storelens.storage import migrate

    migrate.upgrade(engine)
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    report = ingest_numbered(EventLog(engine), read_items(events), batch_size=5000)
    assert not report.rejected
    return report.accepted


def _comparable(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "orders": report["fulfillment"]["per_order"],
        "incomplete": report["fulfillment"]["incomplete"],
        "baristas": report["baristas"],
        "waits": report["queue"]["per_customer"],
        "dwell": report["dwell"]["per_visit"],
    }


def _stored_alerts(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(alerts.c.rule_id, alerts.c.state, alerts.c.at).order_by(alerts.c.id)
        ).all()
    return [(r, s, at.isoformat()) for r, s, at in rows]


def test_stream_in_small_batches_equals_batch(engine: Engine, two_days: Path) -> None:
    _load(engine, two_days)
    processor = OpsProcessor()
    processor.run(EventLog(engine), batch=777)
    layout = load_layout(default_layout_path())
    stream = report_from_db(engine, layout.store_id, timezone=layout.timezone, detail=True)
    batch = report_from_file(two_days, default_layout_path(), detail=True)
    assert _comparable(stream) == _comparable(batch)
    assert [(a["rule_id"], a["state"], a["at"]) for a in batch["alerts"]] == _stored_alerts(engine)


def test_sigkill_at_random_points_then_restart_equals_batch(
    engine: Engine, db_url: str, two_days: Path
) -> None:
    """A separate process is killed -9 mid-stream several times; nothing is lost or doubled."""
    n = _load(engine, two_days)
    log = EventLog(engine)
    head = log.head()
    rng = random.Random(2026)
    env = {**os.environ, "STORELENS_DATABASE_URL": db_url}
    cmd = [sys.executable, "-m", "storelens.cli", "ops", "process", "--once", "--batch", "300"]
    kills = 0
    for target in sorted(rng.uniform(0.05, 0.95) for _ in range(5)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if log.position("ops") >= target * head:  # somewhere mid-batch after this point
                time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        proc.wait()
    position = log.position("ops")
    assert kills >= 4, f"only {kills} kills landed mid-stream"
    assert position > 0, "no progress was committed between kills"
    assert position < head, "the kills left nothing to resume"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert EventLog(engine).position("ops") == EventLog(engine).head()
    layout = load_layout(default_layout_path())
    stream = report_from_db(engine, layout.store_id, timezone=layout.timezone, detail=True)
    batch = report_from_file(two_days, default_layout_path(), detail=True)
    assert _comparable(stream) == _comparable(batch)
    assert [(a["rule_id"], a["state"], a["at"]) for a in batch["alerts"]] == _stored_alerts(engine)
    assert n > 50_000
