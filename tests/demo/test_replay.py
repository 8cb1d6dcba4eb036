"""The live demo's replay on an injected clock: events go out in order, each once the
accelerated clock reaches it, in batches; an unavailable server is waited for, a
refused key stops the replay. No test sleeps."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from storelens.core.retry import Backoff, ManualClock
from storelens.demo.replay import DayReplay, ReplayEvent, read_replay
from storelens.ingest.client import (
    IngestAuthError,
    IngestRefused,
    IngestResponse,
    IngestUnavailable,
)

OPEN = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)


def _events(offsets_s: Sequence[float]) -> list[ReplayEvent]:
    out = []
    for i, offset in enumerate(offsets_s):
        at = OPEN + timedelta(seconds=offset)
        raw = orjson.dumps({"id": f"e{i}", "type": "pos.order_paid", "ts": at.isoformat()})
        out.append(ReplayEvent(at, raw))
    return out


class Server:
    """Records each batch with the clock's time when it arrived; answers as told."""

    def __init__(self, clock: ManualClock, failures: dict[int, Exception] | None = None) -> None:
        self.clock = clock
        self.failures = failures or {}  # call number (0: the readiness post) -> error
        self.calls = 0
        self.batches: list[tuple[float, list[str]]] = []

    def post(self, body: bytes) -> IngestResponse:
        self.calls += 1
        if self.calls - 1 in self.failures:
            raise self.failures[self.calls - 1]
        ids = [e["id"] for e in orjson.loads(body)]
        self.batches.append((self.clock.now(), ids))
        return IngestResponse(accepted=len(ids), duplicates=0, rejected=0, errors=[])

    @property
    def posted(self) -> list[str]:
        return [i for _, batch in self.batches for i in batch]


def test_events_go_out_in_order_once_the_accelerated_clock_reaches_them() -> None:
    clock = ManualClock(start=1000.0)
    events = _events([0, 5, 5, 40, 41, 600, 3600, 3601, 7200])
    server = Server(clock)
    replay = DayReplay(events, server.post, speed=60, clock=clock, tick_s=0.5)
    report = replay.run()
    assert report.finished
    assert server.posted == [f"e{i}" for i in range(len(events))]
    assert (report.posted, report.accepted) == (len(events), len(events))
    began = server.batches[0][0]  # the empty readiness post starts the clock
    sent = [(at, ids) for at, ids in server.batches if ids]
    previous: float | None = None
    for at, ids in sent:
        for event_id in ids:
            event = events[int(event_id[1:])]
            assert event.at <= OPEN + timedelta(seconds=(at - began) * 60)  # not early
            if previous is not None:  # nor held back: it was not due at the previous post
                assert event.at > OPEN + timedelta(seconds=(previous - began) * 60)
        previous = at
    assert [len(ids) for _, ids in sent] == [1, 2, 2, 1, 1, 1, 1]  # half-second ticks at 60x
    # 2 h of café time at 60x take 2 min of (manual) real time, waited in sleeps
    assert clock.now() - began == pytest.approx(120, abs=0.5)
    assert all(s >= 0.5 for s in clock.sleeps)


def test_a_busy_moment_is_split_into_batches_the_server_takes() -> None:
    clock = ManualClock()
    server = Server(clock)
    events = _events([0] * 7 + [1])
    DayReplay(events, server.post, speed=60, clock=clock, max_batch=3).run()
    sizes = [len(ids) for _, ids in server.batches if ids]
    assert sizes == [3, 3, 1, 1]
    assert server.posted == [f"e{i}" for i in range(8)]


def test_an_unavailable_server_is_waited_for_and_nothing_is_lost() -> None:
    clock = ManualClock()
    down: dict[int, Exception] = {i: IngestUnavailable("connection refused") for i in range(3)}
    server = Server(clock, {**down, 3: IngestUnavailable("503", 503)})
    backoff = Backoff(initial=1.0, cap=4.0, jitter="none")
    report = DayReplay(_events([0, 10]), server.post, speed=10, clock=clock, backoff=backoff).run()
    assert report.finished and server.posted == ["e0", "e1"]
    assert clock.sleeps[:4] == [1.0, 2.0, 4.0, 4.0]


def test_a_refused_batch_is_counted_and_a_refused_key_stops_the_replay() -> None:
    clock = ManualClock()
    server = Server(clock, {1: IngestRefused("413", 413)})  # the first real batch
    report = DayReplay(_events([0, 60]), server.post, speed=60, clock=clock).run()
    assert report.finished and report.refused_batches == 1
    assert server.posted == ["e1"] and report.posted == 1
    denied = Server(clock, {0: IngestAuthError("401", 401)})
    with pytest.raises(IngestAuthError):
        DayReplay(_events([0]), denied.post, speed=60, clock=clock).run()
    assert denied.posted == []


def test_stop_ends_the_replay_at_its_next_wait() -> None:
    clock = ManualClock()
    stop = threading.Event()
    server = Server(clock)

    def post_then_stop(body: bytes) -> IngestResponse:
        answer = server.post(body)
        if len(server.posted) >= 2:
            stop.set()
        return answer

    report = DayReplay(
        _events([0, 1, 3600, 7200]), post_then_stop, speed=60, clock=clock, stop=stop
    ).run()
    assert not report.finished
    assert server.posted == ["e0", "e1"]


def test_bad_arguments_are_refused() -> None:
    clock = ManualClock()
    with pytest.raises(ValueError, match="speed must be positive"):
        DayReplay(_events([0]), Server(clock).post, speed=0, clock=clock)
    with pytest.raises(ValueError, match="time order"):
        DayReplay(_events([10, 0]), Server(clock).post, speed=60, clock=clock)


def test_read_replay_sorts_by_time_and_leaves_out_the_crm_sync(tmp_path: Path) -> None:
    lines = [
        {"id": "b", "type": "pos.order_paid", "ts": "2026-11-02T08:00:05+01:00"},
        {"id": "c", "type": "customer.upserted", "ts": "2026-11-02T08:00:00+01:00"},
        {"id": "a", "type": "vision.zone_enter", "ts": "2026-11-02T07:00:01Z"},
        {"id": "d", "type": "consent.changed", "ts": "2026-11-02T08:00:00+01:00"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(line) for line in lines) + b"\n\n")
    events = read_replay(path)
    assert [orjson.loads(e.raw)["id"] for e in events] == ["a", "b"]
    assert events[0].at == datetime(2026, 11, 2, 7, 0, 1, tzinfo=UTC)
