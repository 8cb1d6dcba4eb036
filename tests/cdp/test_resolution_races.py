"""A full resolution against an unmerge or an erasure that commits while it writes.

A review found both on PostgreSQL: the run checked that nothing had changed, then took
the erasure lock, which an unmerge or an erasure holds for its whole transaction. One
committing in between was written over (the unmerge undone, the id it gave back left
pointing nowhere) or crashed the write (a KeyError, a 500). The run now takes the lock
before it looks. SQLite serialises writers, so there the run waits at its first write;
the tests run on both, and on PostgreSQL they check the run is waiting on the lock
before letting the other transaction commit (pg_locks).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text
from tests.cdp.identity_records import ids_of, merged_later, put

from storelens.cdp import resolution
from storelens.cdp import unmerge as unmerge_module
from storelens.cdp.resolution import resolve
from storelens.cdp.unmerge import unmerge
from storelens.core.errors import Conflict
from storelens.privacy import erasure
from storelens.privacy.audit import SYSTEM, Actor
from storelens.storage.dialects import ERASURE_LOCK_KEY

WAITING = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    f"AND objid = {ERASURE_LOCK_KEY & 0xFFFFFFFF}"
)


def _race(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    module: Any,
    other: Callable[[], object],
) -> object:
    """Run ``other`` (whose transaction pauses at its audit row, holding the erasure
    lock) against a full resolve that reaches its write meanwhile; the run's outcome."""
    inside, gate, computed = threading.Event(), threading.Event(), threading.Event()
    real_record, real_assign = module.audit.record, resolution.assign_ids

    def paused(*args: Any, **kwargs: Any) -> Any:
        inside.set()
        assert gate.wait(60)
        return real_record(*args, **kwargs)

    def assign(*args: Any, **kwargs: Any) -> Any:
        out = real_assign(*args, **kwargs)
        computed.set()
        return out

    monkeypatch.setattr(module.audit, "record", paused)
    monkeypatch.setattr(resolution, "assign_ids", assign)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["run"] = resolve(engine, "full")
        except Exception as exc:  # the outcome under test
            outcome["run"] = exc

    first = threading.Thread(target=other)
    first.start()
    assert inside.wait(60)
    second = threading.Thread(target=run)
    second.start()
    assert computed.wait(60)  # read and computed after the other began: it must lose
    if engine.dialect.name == "postgresql":
        with engine.connect() as probe:
            for _ in range(6000):
                if probe.execute(WAITING).scalar_one():
                    break
                inside.wait(0.01)
            assert probe.execute(WAITING).scalar_one() == 1  # the run waits on the lock
    gate.set()
    first.join(60)
    second.join(60)
    return outcome["run"]


def test_a_run_does_not_write_over_an_unmerge_committing_during_its_write(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = merged_later(engine, "crm:1", "web:1", "ada@example.org", "+4930111111")
    merged = ids_of(engine)["crm:1"]
    moving = next(k for k, cid in before.items() if cid != merged)
    analyst = Actor("ana", "user", "analyst")
    outcome = _race(
        engine, monkeypatch, unmerge_module, lambda: unmerge(engine, merged, [moving], analyst)
    )
    assert isinstance(outcome, Conflict)
    assert ids_of(engine) == before  # the unmerge stands


def test_a_run_gives_way_to_an_erasure_committing_during_its_write(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(engine, "crm:1", email="ada@example.org")
    put(engine, "web:2", email="bob@example.org", first_name="Bob")
    resolve(engine, "full")
    bob = ids_of(engine)["web:2"]
    outcome = _race(
        engine, monkeypatch, erasure, lambda: erasure.erase_customer(engine, bob, SYSTEM, "r")
    )
    assert isinstance(outcome, Conflict)  # not a KeyError (a 500)
    assert set(ids_of(engine)) == {"crm:1"}
