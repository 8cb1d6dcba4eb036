"""Raw tracking data older than the window is deleted; everything else stays."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.events import event_adapter
from storelens.privacy.retention import purge_raw_tracking
from storelens.storage.eventlog import EventLog, EventQuery
from storelens.storage.tables import audit_log

RawEvent = Callable[..., dict[str, Any]]
NOW = datetime(2026, 12, 31, 12, tzinfo=UTC)


def _seed(engine: Engine, raw_event: RawEvent, now: datetime = NOW) -> None:
    old, fresh = now - timedelta(days=31), now - timedelta(days=29)
    items = [
        raw_event("vision.track", ts=old.isoformat()),
        raw_event("vision.zone_enter", ts=old.isoformat()),
        raw_event("vision.zone_exit", ts=old.isoformat()),
        raw_event("vision.track", ts=fresh.isoformat()),
        raw_event("pos.order_paid", ts=old.isoformat()),  # sales are not raw tracking
    ]
    EventLog(engine).append([event_adapter.validate_python(i) for i in items])


def test_purge_deletes_only_old_raw_tracking(engine: Engine, raw_event: RawEvent) -> None:
    _seed(engine, raw_event)
    dry = purge_raw_tracking(engine, 30, now=NOW, dry_run=True)
    assert dry.deleted == 3
    assert len(EventLog(engine).query(EventQuery())) == 5
    done = purge_raw_tracking(engine, 30, now=NOW)
    assert done.deleted == 3
    left = sorted(e.type for e in EventLog(engine).query(EventQuery()))
    assert left == ["pos.order_paid", "vision.track"]
    with engine.connect() as conn:
        actions = conn.execute(select(audit_log.c.action, audit_log.c.detail)).all()
    assert [a for a, _ in actions] == ["retention.purge"]
    assert actions[0][1]["deleted"] == 3
    assert purge_raw_tracking(engine, 30, now=NOW).deleted == 0


def test_purge_refuses_zero_days(engine: Engine) -> None:
    with pytest.raises(ValueError, match="at least one day"):
        purge_raw_tracking(engine, 0)


def test_retention_command(db_url: str, engine: Engine, raw_event: RawEvent) -> None:
    _seed(engine, raw_event, now=datetime.now(UTC))
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "--database-url", db_url, "--dry-run"])
    assert dry.exit_code == 0 and "would delete 3" in dry.output
    real = runner.invoke(app, ["retention", "--database-url", db_url, "--days", "30"])
    assert real.exit_code == 0 and "deleted 3" in real.output
    keep_less = runner.invoke(app, ["retention", "--database-url", db_url, "--days", "28"])
    assert "deleted 1" in keep_less.output
