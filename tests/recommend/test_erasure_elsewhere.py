"""An erasure in another process reaches the rows this process has yet to write.

Impression rows wait in a per-process queue. An erasure run from the command line or
by another API worker cannot reach that queue, and its ids are unknown here, so rows
of an answer computed before it (from a cached list, or a request in flight) were
written under the erased id afterwards (a review, R4). The writer now looks for an
erasure newer than its last write inside its own transaction, after taking the
erasure lock, and drops the batch and then every row for a short hold.

Runs on SQLite and PostgreSQL. "Another process" is a second impression log left out
of this process's registry of logs, which an erasure here walks: the same code, with
nothing shared but the database.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select, text

from storelens.config import Settings
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer
from storelens.recommend import impression_log
from storelens.recommend.impression_log import ERASED_ELSEWHERE_HOLD_S, ImpressionLog
from storelens.storage.dialects import ERASURE_LOCK_KEY, dialect_for
from storelens.storage.tables import (
    audit_log,
    customers,
    recommend_declines,
    recommend_impressions,
)

AT = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
Login = Callable[[str], dict[str, str]]
# Who waits on the erasure lock in this test's database: other test workers share the
# PostgreSQL server and its pg_locks. A bigint key's low 32 bits are the lock's objid.
WAITING = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    f"AND objid = {ERASURE_LOCK_KEY & 0xFFFFFFFF}"
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _row(customer: str, product: str = "flat-white") -> tuple[object, ...]:
    return (AT, customer, "cafe-01", True, "till-1", ((product, 0.5),))


def _written(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        column = recommend_impressions.c.customer_id
        rows = conn.execute(select(column, func.count()).group_by(column)).all()
    return {c: n for c, n in rows}


def _elsewhere(engine: Engine, clock: Clock) -> ImpressionLog:
    log = ImpressionLog(engine, every_s=3600, clock=clock)
    impression_log._LIVE.discard(log)  # another process's: no erasure here walks it
    return log


@pytest.fixture
def people(engine: Engine) -> Engine:
    with engine.begin() as conn:
        conn.execute(insert(customers), [
            {"source_system": "crm", "source_record_id": "1", "customer_id": "ada"},
            {"source_system": "crm", "source_record_id": "2", "customer_id": "bob"},
        ])  # fmt: skip
    return engine


def test_rows_queued_elsewhere_before_an_erasure_are_not_written(people: Engine) -> None:
    clock = Clock()
    other = _elsewhere(people, clock)
    other.add([_row("ada"), _row("bob")])  # answered from lists cached before
    erase_customer(people, "ada", audit.SYSTEM, "request 42")
    assert other.flush() == 2
    assert _written(people) == {}  # Bob's rows went with the batch: ids unknown here
    other.add([_row("ada"), _row("bob", "latte")])  # within the hold: its cache may lag
    other.flush()
    assert _written(people) == {}
    clock.now += ERASED_ELSEWHERE_HOLD_S + 1
    other.add([_row("bob", "scone")])
    other.flush()
    assert _written(people) == {"bob": 1}  # the hold ends; the next erasure starts one
    other.close()


def test_a_write_racing_an_erasure_waits_for_it_and_then_sees_it(people: Engine) -> None:
    """The erasure holds its lock while the writer tries: the writer either commits
    first (the erasure's delete then finds its rows) or waits and sees the audit row;
    here it waits. Without the lock and the look after the insert, the rows landed
    after the erasure's delete."""
    clock = Clock()
    other = _elsewhere(people, clock)
    other.add([_row("ada")])
    done = threading.Event()
    with people.begin() as conn:  # an erasure's transaction, paused after its start
        dialect_for(conn).lock_erasures(conn, shared=False)
        conn.execute(insert(audit_log), {"actor": "storelens", "actor_kind": "system",
                     "action": audit.ERASE_ACTION, "resource": "customer",
                     "resource_id": "erased-x", "detail": {}})  # fmt: skip
        conn.execute(text("DELETE FROM recommend_impressions"))
        writer = threading.Thread(target=lambda: (other.flush(), done.set()))
        writer.start()
        if people.dialect.name == "postgresql":  # the writer is waiting on the lock
            with people.connect() as probe:
                for _ in range(3000):
                    if probe.execute(WAITING).scalar_one():
                        break
                    done.wait(0.01)
                assert probe.execute(WAITING).scalar_one() == 1
        assert not done.is_set()
    writer.join(timeout=30)
    assert done.is_set()
    assert _written(people) == {}
    other.close()


def test_a_decline_posted_during_an_erasure_waits_and_then_finds_nobody(
    people: Engine, client: TestClient, login: Login
) -> None:
    """A decline checked that Ada is a customer before the erasure committed and wrote
    its row afterwards, past the erasure's own clean-up when posted to another worker.
    It now takes the erasure lock first: it waits, then finds nobody (404)."""
    staff = login("analyst")
    answer: dict[str, int] = {}

    def decline() -> None:
        url = "/v1/customers/ada/declined-items"
        answer["status"] = client.post(
            url, json={"product_id": "muffin"}, headers=staff
        ).status_code

    writer = threading.Thread(target=decline)
    with people.begin() as conn:  # an erasure's transaction, from another process
        dialect_for(conn).lock_erasures(conn, shared=False)
        conn.execute(text("DELETE FROM customers WHERE customer_id = 'ada'"))
        writer.start()
        if people.dialect.name == "postgresql":  # until it waits, or (unfixed) is done
            with people.connect() as probe:
                for _ in range(3000):
                    if probe.execute(WAITING).scalar_one() or not writer.is_alive():
                        break
                    threading.Event().wait(0.01)
        else:  # SQLite shows no waiters: give an unfixed request time to read first
            threading.Event().wait(0.3)
    writer.join(timeout=30)
    assert answer == {"status": 404}
    with people.connect() as conn:
        left = select(func.count()).select_from(recommend_declines)
        assert conn.execute(left).scalar_one() == 0


def test_rows_queued_while_the_writer_waits_on_an_erasure_go_with_its_batch(
    people: Engine,
) -> None:
    """The writer's batch waited behind the erasure; rows queued meanwhile (answers
    from lists cached before it) went out in the next batch, past the check (review)."""
    other = _elsewhere(people, Clock())
    other.add([_row("bob")])
    writer = threading.Thread(target=other.flush)
    with people.begin() as conn:  # an erasure's transaction, from another process
        dialect_for(conn).lock_erasures(conn, shared=False)
        conn.execute(insert(audit_log), {"actor": "storelens", "actor_kind": "system",
                     "action": audit.ERASE_ACTION, "resource": "customer",
                     "resource_id": "erased-x", "detail": {}})  # fmt: skip
        writer.start()
        for _ in range(3000):  # until the writer has taken its batch (and waits)
            if other.pending() == 0:
                break
            threading.Event().wait(0.01)
        other.add([_row("ada")])  # Ada answered from a list cached before the erasure
        assert other.pending() == 1
    writer.join(timeout=30)
    other.flush()
    assert _written(people) == {}
    other.close()


def test_rows_written_in_a_requests_own_transaction_see_an_erasure_elsewhere(
    people: Engine, settings: Settings
) -> None:
    """``/v1/personalize`` and the claimer view write their rows in the request's
    transaction (``record_shown``): they skipped the check (review)."""
    from storelens.recommend.answer import Answer
    from storelens.recommend.candidate_store import MemoryCandidates
    from storelens.recommend.context import Context
    from storelens.recommend.engine import RecommendationEngine
    from storelens.recommend.suggestions import Recommendation

    worker = RecommendationEngine(people, settings, MemoryCandidates(600))
    impression_log._LIVE.discard(worker.impressions)  # another worker's log
    item = Recommendation("latte", 0.9, 0.9, "popular here", "popularity", {}, "Latte")
    answer = Answer("ada", "cafe-01", True, None, Context(), [item], False)
    erase_customer(people, "ada", audit.SYSTEM, "request 7")  # in "another worker"
    with people.begin() as conn:
        worker.record_shown(conn, answer, "till-1")
    assert _written(people) == {}
    worker.close()
