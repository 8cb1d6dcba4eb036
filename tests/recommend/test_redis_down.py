"""Candidates in Redis, and a Redis killed mid-test: answers keep coming, from the database.

Starts its own redis-server on a free port (never the shared one, which other tests
use), so killing it harms nobody.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.recommend.test_near_copies import _read_twice_from_the_copy
from tests.waiting import until

from storelens import stores
from storelens.api.app import create_app
from storelens.config import Settings
from storelens.core.events import event_adapter
from storelens.processors import RECOMMEND_PROJECTION, default_projections, run_projections
from storelens.recommend.candidate_store import RedisCandidates
from storelens.recommend.engine import RecommendationEngine
from storelens.storage.eventlog import EventLog

NOW = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
pytestmark = pytest.mark.redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.025)
    yield proc, f"redis://127.0.0.1:{port}/0"
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_redis_killed_mid_test_answers_still_come(
    own_redis: tuple[subprocess.Popen[bytes], str],
    settings: Settings,
    engine: Engine,
    login: Callable[[str], dict[str, str]],
) -> None:
    proc, url = own_redis
    settings = settings.model_copy(update={"redis_url": url, "recommend_candidate_store": "redis"})
    app = create_app(settings, engine=engine, run_projections=False)
    client = TestClient(app)
    store = RedisCandidates(url, 600, 0.05)
    reco = RecommendationEngine(engine, settings, store, clock=lambda: NOW)
    # The app's own engine opened this Redis too: closed, or a later test's erasure in
    # this worker (which walks every live candidate store) meets the killed server.
    app.state.recommendations.close()
    app.state.recommendations = reco
    log = EventLog(engine)
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Café")
    events = [
        {"id": str(uuid.uuid4()), "type": "consent.changed",
         "ts": (NOW - timedelta(days=90)).isoformat(),
         "source": "app", "subject": "bo",
         "payload": {"purpose": "personalization", "granted": True}},
    ] + [
        {"id": str(uuid.uuid4()), "type": "pos.order_paid",
         "ts": (NOW - timedelta(days=d)).isoformat(),
         "source": "pos", "store_id": "cafe-01", "subject": "bo",
         "payload": {"order_id": f"o-{d}", "customer_id": "bo",
                     "lines": [{"product_id": "chai", "qty": 1, "unit_price": 3.0},
                               {"product_id": f"snack-{d % 3}", "qty": 1, "unit_price": 2.0}]}}
        for d in (3, 9, 16, 30)
    ]  # fmt: skip
    log.append([event_adapter.validate_python(e) for e in events])
    wanted = {"orders", "consent", RECOMMEND_PROJECTION}
    run_projections(log, [p for p in default_projections(recommendations=reco) if p.name in wanted])
    assert store.get("bo") is not None  # the projection put Bo's candidates in Redis

    headers = login("analyst")  # signs in through the fixture's app: same secret
    params = {"store": "cafe-01", "k": 5}
    copies = store.copies
    assert copies is not None
    copies.ticket()  # the listener starts; once subscribed, reads keep a copy of Bo's entry
    until(lambda: copies.listening)
    for _ in range(2):
        before = client.get("/v1/customers/bo/recommendations", params=params, headers=headers)
        assert before.status_code == 200, before.text
        assert before.json()["degraded"] is False
    assert len(copies) == 1

    proc.kill()
    proc.wait()
    # The worker's copy goes when its listener loses Redis: news of changes could be
    # missed from then on (until then no change can be made either: Redis is down).
    until(lambda: not copies.listening)
    assert len(copies) == 0
    after = client.get("/v1/customers/bo/recommendations", params=params, headers=headers)
    assert after.status_code == 200, after.text
    body = after.json()
    assert body["degraded"] is True  # computed from the database
    assert body["personalized"] is True
    strip = lambda b: [(r["product_id"], r["evidence"]) for r in b["data"]]  # noqa: E731
    assert strip(body) == strip(before.json())
    assert body["data"][0]["product_id"] == "chai"
    reco.close()  # its queued impressions land in this test's database


def test_a_listener_whose_redis_stops_answering_serves_no_copies(
    own_redis: tuple[subprocess.Popen[bytes], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection can die without an error (a network path that drops everything):
    the listener would wait for news forever while its worker served copies. Here
    Redis holds every client's commands (``CLIENT PAUSE``, the connections stay open),
    so the listener's ping goes unanswered; it must give up and serve nothing until
    it is subscribed again, and then start from no copies."""
    import redis

    from storelens.recommend import candidate_store, near_copies
    from storelens.recommend.candidate_store import CustomerCandidates

    # A ping a second, given up after two silent seconds: the same logic as the 5 s
    # default, without a 20 s wait in the suite.
    monkeypatch.setattr(near_copies, "HEALTH_CHECK_S", 1.0)
    _, url = own_redis
    store = RedisCandidates(url, 600, 1.0)
    candidate_store._LIVE.discard(store)
    copies = store.copies
    assert copies is not None
    copies.ticket()
    until(lambda: copies.listening)
    store.put(CustomerCandidates("bo", consent=True, consent_ts=1.0))
    _read_twice_from_the_copy(store, "bo")
    admin = redis.Redis.from_url(url)
    # 6 s: the listener gives up 2-3 s after its last answer (unpausing early is not
    # possible: CLIENT UNPAUSE is held like every other command).
    admin.client_pause(6_000, all=True)
    until(lambda: not copies.listening, deadline_s=45.0)
    assert copies.get("bo") is None and len(copies) == 0
    until(lambda: copies.listening, deadline_s=45.0)  # the pause ended: subscribed again
    assert len(copies) == 0  # nothing from before the silence is trusted
    store.close()
    admin.close()
