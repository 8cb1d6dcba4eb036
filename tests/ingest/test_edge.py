"""Edge store-and-forward: the outbox keeps events through outages, restarts and refusals.

Tests marked "real server" run uvicorn in a subprocess on the ``db_url`` backend and
check the server's event log directly; the ones using ``httpx.MockTransport`` mock
the network to pin down the forwarder's handling of each HTTP answer.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from storelens import accounts, stores
from storelens.core.errors import ConfigError
from storelens.core.events import make_event
from storelens.core.retry import ManualClock
from storelens.ingest.edge import EdgeAuthError, Forwarder
from storelens.ingest.edge_sources import STDIN, EdgeReport, _tail_file, edge_status, run_edge
from storelens.ingest.outbox import Outbox
from storelens.storage.tables import events

RawEvent = Callable[..., dict[str, Any]]
SECRET = "edge-test-secret-key-0123456789-abcdefghijklmnop"


# -- a real server: the ``server`` fixture (tests/conftest.py) runs uvicorn in a subprocess --

Server = Any  # conftest's LiveServer: start(), stop(), url


def _device_key(engine: Engine, store_id: str | None = None) -> str:
    with engine.begin() as conn:
        if store_id is not None:
            stores.create_store(conn, store_id, store_id)
        _, secret = accounts.create_api_key(
            conn,
            "edge-test",
            store_id=store_id,
            event_types=accounts.DEFAULT_KEY_TYPES | {"web.event"},
        )
    return secret


def _server_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(row[0]) for row in conn.execute(select(events.c.id))]


class Worker(threading.Thread):
    """A thread that keeps its exception for the test to re-raise."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:
            self.error = exc


# -- the outbox ----------------------------------------------------------------------


def test_put_survives_reopening_in_order_and_ack_deletes_only_those(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    path = tmp_path / "edge.db"
    model = make_event("order.ready", {"order_id": "o-9"}, source="kds", store_id="cafe-01")
    raws = [raw_event(), raw_event("vision.track"), raw_event("web.event")]
    outbox = Outbox(path)
    assert outbox.put([raws[0], model, raws[1]]) == 3
    assert outbox.put([raws[2]]) == 1
    outbox.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()

    reopened = Outbox(path)
    pending = reopened.peek(10)
    ids = [json.loads(body)["id"] for _, body in pending]
    assert ids == [raws[0]["id"], str(model.id), raws[1]["id"], raws[2]["id"]]
    assert json.loads(pending[1][1]) == model.model_dump(mode="json")
    assert reopened.peek(2) == pending[:2]

    assert reopened.ack([pending[0][0], pending[2][0]]) == 2
    assert reopened.ack([pending[0][0]]) == 0  # already gone
    assert reopened.peek(10) == [pending[1], pending[3]]
    reopened.close()
    with Outbox(path) as again:
        assert again.size() == 2


def test_bad_event_raises_naming_the_field_and_stores_nothing(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    bad = raw_event(payload={"order_id": "o-1", "lines": [{"product_id": "x", "qty": 0}]})
    with pytest.raises(ValueError, match=r"event 1 \(id .*\): payload\.lines\.0\.qty"):
        outbox.put([raw_event(), bad, raw_event()])
    with pytest.raises(ValueError, match="store_id"):
        outbox.put([raw_event(store_id=None)])
    assert outbox.size() == 0
    assert outbox.peek(10) == []


def test_quarantine_keeps_the_event_and_the_reason(tmp_path: Path, raw_event: RawEvent) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([raw_event(), raw_event()])
    (first, body), second = outbox.peek(2)
    reason = {"loc": "store_id", "msg": "wrong store", "type": "store_scope"}
    assert outbox.quarantine(first, [reason])
    assert not outbox.quarantine(first, [reason])  # no longer pending
    assert outbox.peek(10) == [second]
    [kept] = outbox.quarantined()
    assert (kept.rowid, kept.raw_json, kept.errors) == (first, body, [reason])


def test_outbox_refuses_a_file_that_is_not_an_outbox(tmp_path: Path) -> None:
    path = tmp_path / "storelens.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(ConfigError, match="not an edge outbox"):
        Outbox(path)


def test_edge_status_counts_and_oldest_event(tmp_path: Path, raw_event: RawEvent) -> None:
    path = tmp_path / "edge.db"
    with pytest.raises(FileNotFoundError):
        edge_status(path)
    with Outbox(path) as outbox:
        outbox.put(
            [
                raw_event(ts="2026-11-02T09:00:00+01:00"),
                raw_event(ts="2026-11-02T07:59:59.5+00:00"),
                raw_event(ts="2026-11-02T08:00:00Z"),
            ]
        )
        outbox.quarantine(outbox.peek(1)[0][0], [{"loc": "x", "msg": "y", "type": "z"}])
    status = edge_status(path)
    assert status["pending"] == 2
    assert status["quarantined"] == 1
    assert status["oldest_pending_ts"] == "2026-11-02T07:59:59.500000+00:00"
    assert status["oldest_queued_at"] is not None


# -- backoff and HTTP handling (httpx.MockTransport: these mock the network) ---------


class UpperBound(random.Random):
    """Makes full jitter pick its ceiling, so the sequence can be checked exactly."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _answer(request: httpx.Request, reject: dict[int, str] | None = None) -> httpx.Response:
    """What the server answers for a batch: everything accepted except ``reject``."""
    items = json.loads(request.content)
    reject = reject or {}
    errors = [
        {"index": i, "id": items[i]["id"], "errors": [{"loc": "x", "msg": m, "type": "t"}]}
        for i, m in sorted(reject.items())
    ]
    body = {
        "accepted": len(items) - len(reject),
        "duplicates": 0,
        "rejected": len(reject),
        "errors": errors,
    }
    return httpx.Response(200, json=body)


def _mock_forwarder(
    outbox: Outbox,
    handler: Callable[[httpx.Request], httpx.Response],
    clock: ManualClock,
    **options: Any,
) -> Forwarder:
    return Forwarder(
        outbox,
        "https://edge-test.invalid",
        "slk_test",
        transport=httpx.MockTransport(handler),
        clock=clock,
        **options,
    )


def test_transient_failures_keep_everything_and_back_off(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    sent = [raw_event() for _ in range(3)]
    outbox.put(sent)
    bodies: list[list[str]] = []
    answers = iter(
        [
            "connect-error",
            httpx.Response(503, json={"detail": "database is starting"}),
            httpx.Response(429, headers={"Retry-After": "7"}),
            "timeout",
            httpx.Response(502, text="bad gateway"),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-API-Key"] == "slk_test"
        bodies.append([e["id"] for e in json.loads(request.content)])
        answer = next(answers, None)
        if answer == "connect-error":
            raise httpx.ConnectError("connection refused", request=request)
        if answer == "timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        return answer if isinstance(answer, httpx.Response) else _answer(request)

    clock = ManualClock()
    forwarder = _mock_forwarder(outbox, handler, clock, rng=UpperBound())
    assert forwarder.drain()
    assert clock.sleeps == [0.5, 1.0, 7.0, 4.0, 8.0]  # Retry-After wins; the backoff still grows
    assert bodies == [[e["id"] for e in sent]] * 6  # every retry sent the whole batch
    assert forwarder.stats.retries == 5
    assert forwarder.stats.acked == 3
    assert "502" in (forwarder.stats.last_error or "")
    assert outbox.size() == 0
    assert forwarder.backoff.attempt == 0  # reset by the success


def test_backoff_is_capped_through_a_long_outage(tmp_path: Path, raw_event: RawEvent) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([raw_event()])
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503) if calls <= 12 else _answer(request)

    clock = ManualClock()
    forwarder = _mock_forwarder(outbox, handler, clock, rng=UpperBound())
    assert forwarder.drain()
    assert clock.sleeps == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30, 30, 30]
    assert outbox.size() == 0


def test_only_acknowledged_events_are_deleted(tmp_path: Path, raw_event: RawEvent) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([raw_event() for _ in range(3)])
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        seen.append(len(items))
        if len(seen) == 1:  # counts that do not add up to the 3 sent: trust none of it
            return httpx.Response(
                200, json={"accepted": 1, "duplicates": 0, "rejected": 0, "errors": []}
            )
        if len(seen) == 2:
            return httpx.Response(200, text="<html>a proxy's page</html>")
        if len(seen) == 3:  # two rejected, one listed: which others got in is unknown
            listed = {"index": 1, "id": items[1]["id"], "errors": [{"loc": "x", "msg": "m"}]}
            answer = {"accepted": 1, "duplicates": 0, "rejected": 2, "errors": [listed]}
            return httpx.Response(200, json=answer)
        return _answer(request)

    clock = ManualClock()
    forwarder = _mock_forwarder(outbox, handler, clock)
    assert forwarder.drain(timeout=5)
    assert seen == [3, 3, 3, 2]
    assert forwarder.stats.retries == 2
    assert (forwarder.stats.acked, forwarder.stats.quarantined) == (2, 1)
    assert outbox.size() == 0


def test_413_halves_the_batch_and_quarantines_an_event_too_big_alone(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    batch = [raw_event() for _ in range(5)]
    poison = batch[2]["id"]
    outbox.put(batch)
    sizes: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)
        sizes.append(len(items))
        if len(items) > 2 or any(e["id"] == poison for e in items):
            return httpx.Response(413, json={"detail": "body over 64 MB"})
        return _answer(request)

    clock = ManualClock()
    forwarder = _mock_forwarder(outbox, handler, clock, batch_size=8)
    assert forwarder.drain(timeout=5)
    assert sizes == [5, 2, 2, 1, 1, 1]
    assert clock.sleeps == []  # a 413 is not an outage: no waiting
    assert forwarder.stats.batch_size == 1
    assert forwarder.stats.acked == 4
    [kept] = outbox.quarantined()
    assert kept.event_id == poison
    assert kept.errors[0]["type"] == "too_large"
    assert "64 MB" in kept.errors[0]["msg"]


def test_403_stops_with_a_clear_error_and_keeps_the_events(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([raw_event(), raw_event()])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, json={"detail": "role device may not do this"})

    clock = ManualClock()
    forwarder = _mock_forwarder(outbox, handler, clock)
    with pytest.raises(EdgeAuthError, match=r"refused this edge's API key \(403"):
        forwarder.run(threading.Event())
    assert outbox.size() == 2
    assert clock.sleeps == []


# -- against a real server -----------------------------------------------------------


def test_outage_mid_stream_loses_nothing_and_duplicates_nothing(
    server: Server, engine: Engine, tmp_path: Path, raw_event: RawEvent
) -> None:
    """The issue's test: the server goes away while events keep coming, then comes back.

    The forwarder's clock decides when: each retry wait queues 40 more events, the
    fifth brings the server back, so the run is the same however busy the machine is.
    """
    key = _device_key(engine)
    types = ["pos.order_paid", "vision.track", "order.started", "web.event"]
    produced: list[str] = []
    outbox = Outbox(tmp_path / "edge.db")

    def produce(n: int) -> None:
        batch = [raw_event(types[i % len(types)]) for i in range(n)]
        outbox.put(batch)
        produced.extend(e["id"] for e in batch)

    class OutageClock(ManualClock):
        def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
            assert len(self.sleeps) < 5, f"still failing after the restart: {forwarder.stats}"
            produce(40)  # the shop goes on while the server is away
            if len(self.sleeps) == 4:
                server.start()
            return super().sleep(seconds, stop)

    clock = OutageClock()
    forwarder = Forwarder(
        outbox, server.url, key, batch_size=50, rng=UpperBound(), timeout=5, clock=clock
    )
    try:
        produce(120)
        assert forwarder.drain()
        delivered_before = len(_server_ids(engine))
        server.stop()
        produce(80)
        assert forwarder.drain()
    finally:
        forwarder.close()

    assert delivered_before == 120  # the stream was flowing when the server went down
    assert clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]  # backed off, did not hammer a dead server
    assert forwarder.stats.retries == 5
    ids = _server_ids(engine)
    assert len(produced) == 120 + 80 + 5 * 40
    assert sorted(ids) == sorted(produced)  # every event once: none lost, none twice
    assert outbox.size() == 0
    assert outbox.quarantined() == []


def test_server_rejections_are_quarantined_with_the_reason_and_not_retried(
    server: Server, engine: Engine, tmp_path: Path, raw_event: RawEvent
) -> None:
    key = _device_key(engine, store_id="cafe-01")
    ours = [raw_event() for _ in range(4)]
    theirs = [raw_event(store_id="cafe-02"), raw_event("vision.zone_enter", store_id="cafe-02")]
    already = ours[:2]  # e.g. delivered before a crash lost the answer
    r = httpx.post(f"{server.url}/v1/events", json=already, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["accepted"] == 2
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([ours[0], theirs[0], ours[1], ours[2], theirs[1], ours[3]])

    with Forwarder(outbox, server.url, key) as forwarder:
        assert forwarder.drain(timeout=10)
        assert forwarder.drain(timeout=10)  # nothing left to retry
        assert forwarder.stats.sent == 6  # each event went out exactly once
        assert forwarder.stats.acked == 4
        assert forwarder.stats.quarantined == 2
        assert forwarder.stats.retries == 0

    assert sorted(_server_ids(engine)) == sorted(e["id"] for e in ours)
    kept = outbox.quarantined()
    assert [q.event_id for q in kept] == [e["id"] for e in theirs]
    for q in kept:
        assert q.errors[0]["loc"] == "store_id"
        assert q.errors[0]["type"] == "store_scope"
        assert "cafe-01" in q.errors[0]["msg"]
    assert outbox.size() == 0


def test_an_id_another_store_took_is_quarantined_as_a_conflict_not_acked(
    server: Server, engine: Engine, tmp_path: Path, raw_event: RawEvent
) -> None:
    """Real server. Store A's key took the id first; the old server called B's event a
    duplicate, so the edge acked (deleted) it and it was lost everywhere. Now the
    server names it an id conflict and the edge keeps it aside, counted, with the reason."""
    a_key, b_key = _device_key(engine, store_id="cafe-a"), _device_key(engine, store_id="cafe-b")
    theirs = raw_event(store_id="cafe-a")
    r = httpx.post(f"{server.url}/v1/events", json=[theirs], headers={"X-API-Key": a_key})
    assert r.status_code == 200 and r.json()["accepted"] == 1
    ours = [raw_event(store_id="cafe-b", id=theirs["id"]), raw_event(store_id="cafe-b")]
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put(ours)

    with Forwarder(outbox, server.url, b_key) as forwarder:
        assert forwarder.drain(timeout=10)
        s = forwarder.stats
        assert (s.sent, s.acked, s.quarantined, s.conflicts, s.retries) == (2, 1, 1, 1, 0)

    [kept] = outbox.quarantined()
    assert kept.event_id == theirs["id"]
    assert [(e["loc"], e["type"]) for e in kept.errors] == [("id", "id_conflict")]
    assert sorted(_server_ids(engine)) == sorted([theirs["id"], ours[1]["id"]])


def test_wrong_key_stops_with_a_clear_error_and_keeps_the_events(
    server: Server, tmp_path: Path, raw_event: RawEvent
) -> None:
    path = tmp_path / "edge.db"
    with Outbox(path) as outbox:
        outbox.put([raw_event() for _ in range(3)])
        forwarder = Forwarder(outbox, server.url, "slk_deadbeef_not-a-real-key")
        with pytest.raises(EdgeAuthError, match=r"refused this edge's API key \(401"):
            forwarder.drain(timeout=10)
        assert "401" in (forwarder.stats.last_error or "")
        forwarder.close()
    # the CLI entry point stops too, instead of retrying forever
    with pytest.raises(EdgeAuthError):
        run_edge(path, server.url, "slk_deadbeef_not-a-real-key", None, threading.Event())
    assert edge_status(path)["pending"] == 3


def test_run_edge_tails_a_file_skips_bad_lines_and_resumes(
    server: Server, engine: Engine, tmp_path: Path, raw_event: RawEvent
) -> None:
    key = _device_key(engine)
    source = tmp_path / "events.jsonl"
    good = [raw_event() for _ in range(4)]
    bad = raw_event(payload={"order_id": "o-1", "lines": []})
    source.write_text(
        "\n".join([json.dumps(good[0]), "{broken", json.dumps(good[1]), "", json.dumps(bad)]) + "\n"
    )
    outbox_path = tmp_path / "edge.db"
    bad_lines: list[tuple[int, str]] = []
    stop = threading.Event()
    reports: list[Any] = []
    edge = Worker(
        lambda: reports.append(
            run_edge(
                outbox_path,
                server.url,
                key,
                source,
                stop,
                on_bad_line=lambda n, why: bad_lines.append((n, why)),
            )
        )
    )
    edge.start()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 10
        while len(_server_ids(engine)) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    try:
        wait_for(2)
        with source.open("a") as fh:  # followed: a line appended later is sent too
            fh.write(json.dumps(good[2]) + "\n")
        wait_for(3)
    finally:
        stop.set()
        edge.join(timeout=10)
    assert edge.error is None
    assert sorted(_server_ids(engine)) == sorted(e["id"] for e in good[:3])
    assert [n for n, _ in bad_lines] == [2, 5]
    assert "payload.lines" in bad_lines[1][1]
    [report] = reports
    assert (report.queued, report.bad_lines) == (3, 2)

    # the next run resumes after the last line it read; run once, it returns when done
    with source.open("a") as fh:
        fh.write(json.dumps(good[3]) + "\n")
    again = run_edge(outbox_path, server.url, key, source, threading.Event(), follow=False)
    assert (again.queued, again.bad_lines) == (1, 0)
    assert sorted(_server_ids(engine)) == sorted(e["id"] for e in good)
    assert edge_status(outbox_path)["pending"] == 0


def test_run_edge_reads_stdin_until_it_closes(
    server: Server, engine: Engine, tmp_path: Path, raw_event: RawEvent
) -> None:
    key = _device_key(engine)
    good = [raw_event() for _ in range(3)]
    lines = [json.dumps(good[0]), "not json", json.dumps(good[1]), json.dumps(good[2])]
    script = (
        "import sys, threading\n"
        "from pathlib import Path\n"
        "from storelens.ingest.edge_sources import STDIN, run_edge\n"
        "r = run_edge(sys.argv[1], sys.argv[2], sys.argv[3], STDIN, threading.Event(),"
        " on_bad_line=lambda n, why: print('bad line', n))\n"
        "print('queued', r.queued)\n"
    )
    assert Path("-") == STDIN
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "edge.db"), server.url, key],
        input="\n".join(lines).encode(),  # no newline after the last line
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split("\n")[:2] == ["bad line 2", "queued 3"]
    assert sorted(_server_ids(engine)) == sorted(e["id"] for e in good)


def test_forwarder_refuses_a_bad_url(tmp_path: Path) -> None:
    with Outbox(tmp_path / "edge.db") as outbox, pytest.raises(ValueError, match="http"):
        Forwarder(outbox, "127.0.0.1:8000", "slk_x")


class IdleSignal(threading.Event):
    """The tailer's halt event; counts the times the tailer sat idle at the end of the
    file, so a test knows it has read everything written so far (no sleeping)."""

    def __init__(self) -> None:
        super().__init__()
        self.idle = threading.Semaphore(0)

    def wait(self, timeout: float | None = None) -> bool:
        self.idle.release()
        return super().wait(0.001)

    def settle(self) -> None:
        """Return once the tailer has gone idle twice after this call: the second time
        follows a read that started after the call, so it saw everything written."""
        for _ in range(2):
            assert self.idle.acquire(timeout=30), "the tailer stopped"
        while self.idle.acquire(blocking=False):  # forget older idles
            pass


def test_a_line_written_in_two_goes_is_read_once_whole(tmp_path: Path, raw_event: RawEvent) -> None:
    source = tmp_path / "events.jsonl"
    first, second = raw_event(), raw_event()
    source.write_text(json.dumps(first) + "\n")
    outbox = Outbox(tmp_path / "edge.db")
    halt = IdleSignal()
    report = EdgeReport()
    bad: list[tuple[int, str]] = []
    tailer = Worker(
        lambda: _tail_file(source, outbox, halt, True, report, lambda n, w: bad.append((n, w)))
    )
    tailer.start()
    try:
        halt.settle()
        text = json.dumps(second)
        with source.open("a") as fh:
            fh.write(text[:20])
            fh.flush()
            halt.settle()  # the tailer has read the first half and waits for the rest
            assert report.queued == 1
            fh.write(text[20:] + "\n")
        halt.settle()
    finally:
        halt.set()
        tailer.join(timeout=30)
    assert tailer.error is None
    assert (report.lines, report.queued, bad) == (2, 2, [])
    assert [json.loads(raw)["id"] for _, raw in outbox.peek(10)] == [first["id"], second["id"]]
    outbox.close()


def test_plain_http_to_another_host_warns_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    transport = httpx.MockTransport(handler)
    with Outbox(tmp_path / "edge.db") as outbox, caplog.at_level("WARNING"):
        for url in (
            "http://127.0.0.1:8000",
            "http://localhost:8000",
            "http://[::1]:8000",
            "https://api.example.test",
            "http://api.example.test",
            "http://api.example.test:8080",
            "http://10.1.2.3:8000",
        ):
            Forwarder(outbox, url, "slk_x", transport=transport).close()
    warned = [r.getMessage() for r in caplog.records if "plain http://" in r.getMessage()]
    assert len(warned) == 2  # once per host, only for hosts off this machine
    assert "api.example.test" in warned[0] and "10.1.2.3" in warned[1]
    assert all("slk_x" not in m for m in warned)


def test_retry_after_as_a_date_and_a_wrong_path_are_waited_out(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([raw_event()])
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "Thu, 01 Jan 2015 00:00:00 GMT"}),
            httpx.Response(404, json={"detail": "Not Found"}),  # a proxy not set up yet
            httpx.Response(429, headers={"Retry-After": "soon"}),  # unreadable: our backoff
            httpx.Response(503, headers={"Retry-After": "86400"}),  # capped
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or _answer(request)

    clock = ManualClock()
    forwarder = _mock_forwarder(outbox, handler, clock, rng=UpperBound(), max_retry_after=120)
    assert forwarder.drain()
    assert forwarder.stats.retries == 4
    assert clock.sleeps == [1.0, 2.0, 120.0]  # a date already past: straight away
    assert forwarder.stats.acked == 1


def test_a_run_once_stops_after_a_few_failed_tries_with_the_events_kept(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    """`edge run --once` from cron retried forever while the server was down, so the
    runs piled up (a new user's walk-through). With the input read, it now gives up
    after `give_up_after` failed tries in a row; the events stay for the next run."""
    outbox = Outbox(tmp_path / "edge.db")
    outbox.put([raw_event() for _ in range(3)])
    clock = ManualClock()
    tries: list[int] = []

    def down(request: httpx.Request) -> httpx.Response:
        tries.append(1)
        return httpx.Response(503, json={"detail": "down for maintenance"})

    forwarder = _mock_forwarder(outbox, down, clock)
    closed = threading.Event()
    closed.set()
    forwarder.run(threading.Event(), input_closed=closed, give_up_after=4)
    forwarder.close()
    assert len(tries) == 4 and len(clock.sleeps) == 3
    assert outbox.size() == 3  # nothing lost

    # Following (no give-up) or with the server back, everything goes through.
    back = _mock_forwarder(outbox, _answer, clock)
    back.run(threading.Event(), input_closed=closed, give_up_after=4)
    back.close()
    assert outbox.size() == 0
