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
from storelens.privacy.retention import purge_impressions, purge_raw_tracking
from storelens.storage.eventlog import EventLog, EventQuery
from storelens.storage.tables import audit_log, recommend_impressions

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


def _shown(engine: Engine, *ages_days: float, now: datetime = NOW) -> None:
    with engine.begin() as conn:
        conn.execute(recommend_impressions.insert(), [
            {"ts": now - timedelta(days=age), "customer_id": f"c{i}", "store_id": "cafe-01",
             "personalized": True, "actor": "web", "shown": [{"product_id": "tea", "rank": 1,
                                                             "confidence": 0.5}]}
            for i, age in enumerate(ages_days)
        ])  # fmt: skip


def _left(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        column = recommend_impressions.c.customer_id
        return list(conn.execute(select(column).order_by(column)).scalars())


def test_shown_lists_past_their_days_are_deleted_and_audited(engine: Engine) -> None:
    """What a named customer was shown is kept ``recommend_impressions_keep_days``, not
    forever; the purge says how many went and leaves the rest."""
    _shown(engine, 91, 90.01, 89.99, 1)
    assert purge_impressions(engine, 90, now=NOW, dry_run=True).deleted == 2
    assert _left(engine) == ["c0", "c1", "c2", "c3"]
    done = purge_impressions(engine, 90, now=NOW)
    assert done.deleted == 2 and done.cutoff == NOW - timedelta(days=90)
    assert _left(engine) == ["c2", "c3"]
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.action, audit_log.c.resource,
                                   audit_log.c.detail)).all()  # fmt: skip
    assert [(a, t, d["deleted"]) for a, t, d in rows] == [
        ("retention.purge", "recommend_impressions", 2)
    ]
    assert purge_impressions(engine, 90, now=NOW).deleted == 0  # nothing due: no audit row
    with pytest.raises(ValueError, match="at least one day"):
        purge_impressions(engine, 0)


def test_the_loop_purges_both_and_one_failure_spares_the_other(
    engine: Engine, raw_event: RawEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storelens import processors

    now = datetime.now(UTC)
    _seed(engine, raw_event, now=now)
    _shown(engine, 100, 10, now=now)
    loop = processors.ProjectionLoop(EventLog(engine), retention_days=30,
                                     impressions_keep_days=90)  # fmt: skip
    loop.purge()
    assert _left(engine) == ["c1"]
    assert sorted(e.type for e in EventLog(engine).query(EventQuery())) == [
        "pos.order_paid", "vision.track",
    ]  # fmt: skip

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk full")

    _shown(engine, 100, now=now)
    monkeypatch.setattr(processors, "purge_raw_tracking", broken)
    loop.purge()  # logged, not raised; the shown lists are still purged
    assert _left(engine) == ["c1"]
    assert not processors.ProjectionLoop(EventLog(engine)).impressions_keep_days


def test_retention_command_purges_shown_lists(db_url: str, engine: Engine) -> None:
    _shown(engine, 100, 10, now=datetime.now(UTC))
    runner = CliRunner()
    dry = runner.invoke(app, ["retention", "--database-url", db_url, "--dry-run"])
    assert dry.exit_code == 0 and "would delete 1 shown recommendation lists" in dry.output
    real = runner.invoke(app, ["retention", "--database-url", db_url, "--impression-days", "5"])
    assert real.exit_code == 0 and "deleted 2 shown recommendation lists" in real.output
    assert _left(engine) == []
    bad = runner.invoke(app, ["retention", "--database-url", db_url, "--impression-days", "0"])
    assert bad.exit_code == 2 and _left(engine) == []


def test_a_large_purge_goes_in_batches_each_audited(engine: Engine) -> None:
    """A first purge of a table kept forever must not hold SQLite's only write lock for
    its whole run: ``batch`` rows per transaction, each with its audit row."""
    _shown(engine, 100, 101, 102, 103, 104, 1)
    done = purge_impressions(engine, 90, now=NOW, batch=2)
    assert done.deleted == 5 and _left(engine) == ["c5"]
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.detail).order_by(audit_log.c.id)).scalars()
        assert [d["deleted"] for d in rows] == [2, 2, 1]
    assert purge_impressions(engine, 90, now=NOW, batch=2).deleted == 0
