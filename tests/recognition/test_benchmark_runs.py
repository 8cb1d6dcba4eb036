"""``benchmarks/recognition.py`` still announces the members it walks in.

From the approval gate (2026-12-07) until 2026-12-08 the benchmark enrolled its member
as staff, so the enrollment waited for an admin and every walk-in went unannounced: it
printed NaN latencies and no one noticed. This runs it small and checks the counts it
reports, not its timings (those belong to the benchmark, on a quiet machine)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "recognition.py"


@pytest.mark.timeout(600)
def test_every_walk_in_is_confirmed_and_reaches_the_staff_phone(tmp_path: Path) -> None:
    out = tmp_path / "recognition.json"
    args = ["--tracks", "2", "--faces", "1", "--members", "3", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=540
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert (result["tracks"], result["tracks_confirmed"]) == (2, 2)
    assert (result["notices_on_phone"], result["notices_given_up"]) == (2, 0)
