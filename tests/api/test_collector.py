"""The API process's garbage collector: startup heap frozen, thresholds from settings.

Each case runs in a fresh interpreter: the freeze and the thresholds are set once per
process, and the test process has started many apps already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storelens.config import Settings

_PROBE = """
import gc, json
from fastapi.testclient import TestClient
from sqlalchemy import create_engine
from storelens.api.app import create_app
from storelens.config import Settings
from storelens.storage.migrate import upgrade
upgrade(create_engine("sqlite:///{db}"))
before = gc.get_threshold()
app = create_app(Settings(database_url="sqlite:///{db}", run_projections=False,
                          identity_resolve_every_s=0))
with TestClient(app):
    print(json.dumps({{"before": before, "after": gc.get_threshold(),
                      "frozen": gc.get_freeze_count()}}))
"""


def _probe(tmp_path: Path, env: dict[str, str]) -> dict[str, list[int] | int]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(db=tmp_path / "gc.db")],
        env={**os.environ, "PYTHONPATH": src, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, list[int] | int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_the_app_raises_the_thresholds_and_freezes_the_startup_heap(tmp_path: Path) -> None:
    seen = _probe(tmp_path, {})
    assert seen["before"] == [700, 10, 10]  # CPython's own
    assert seen["after"] == [10_000, 50, 100]
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000


def test_the_thresholds_come_from_the_environment(tmp_path: Path) -> None:
    seen = _probe(tmp_path, {"STORELENS_API_GC_THRESHOLDS": "[700,10,10]"})
    assert seen["after"] == [700, 10, 10]


@pytest.mark.parametrize("bad", [[-1, 10, 10], [700, 10], "lots"])
def test_bad_thresholds_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="api_gc_thresholds"):
        Settings(api_gc_thresholds=bad)
