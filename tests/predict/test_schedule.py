"""The server's scheduled re-scoring: off by default, due once its interval has passed."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine

from storelens.config import Settings
from storelens.processors import ProjectionLoop
from storelens.storage.eventlog import EventLog


def test_off_by_default() -> None:
    assert Settings.model_fields["predict_rescore_every_s"].default == 0.0


def test_due_after_its_interval_and_failures_are_logged(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []
    off = ProjectionLoop(EventLog(engine), rescore=lambda: calls.append(1))
    assert not off.rescore_due()  # no interval: never

    def broken() -> None:
        calls.append(2)
        raise RuntimeError("boom")

    loop = ProjectionLoop(EventLog(engine), rescore_every_s=3600.0, rescore=broken)
    assert not loop.rescore_due()  # the first run waits one interval after start
    loop._last_rescore -= 3601.0
    assert loop.rescore_due()
    with caplog.at_level(logging.ERROR):
        loop._rescore_customers()  # a failing run is logged, never raised into the loop
    assert calls == [2]
    assert "scheduled customer scoring failed" in caplog.text
