"""Today's wake-up path: projection loop pass -> LiveBoard -> event stream, without sleeps."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from storelens.core.events import event_adapter
from storelens.processors import ProjectionLoop
from storelens.storage.eventlog import EventLog
from storelens.web.live import LiveBoard, sse_stream


class _Counting:
    """A projection that handles whatever is new in the log (counts it, stores nothing)."""

    name = "counting"

    def run(self, event_log: EventLog, batch: int = 5000) -> int:
        return event_log.consume(self.name, lambda conn, events: None, batch=batch)


def _event(minute: int) -> object:
    return event_adapter.validate_python(
        {
            "id": str(uuid.uuid4()),
            "type": "staff.clock_in",
            "ts": (datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(minutes=minute)).isoformat(),
            "source": "test",
            "store_id": "cafe-01",
            "payload": {"staff_id": f"s-{minute}", "role": "barista"},
        }
    )


def test_the_loop_tells_listeners_only_about_passes_with_events(engine: Engine) -> None:
    log = EventLog(engine)
    loop = ProjectionLoop(log, projections=[_Counting()])
    heard: list[Mapping[str, int]] = []
    loop.add_listener(heard.append)

    def broken(_: Mapping[str, int]) -> None:
        raise RuntimeError("a listener's bug")

    loop.add_listener(broken)
    loop.run_once()
    assert heard == []  # an empty log: nothing to tell
    log.append([_event(0), _event(1)])
    assert loop.run_once() == {"counting": 2}  # the broken listener did not stop the pass
    assert heard == [{"counting": 2}]
    loop.run_once()
    assert heard == [{"counting": 2}]  # nothing new: no wake-up


def test_a_change_from_another_thread_wakes_a_waiting_stream() -> None:
    board = LiveBoard()

    async def scenario() -> int:
        waiting = asyncio.create_task(board.wait(board.version, timeout=30))
        await asyncio.sleep(0)  # the waiter binds the board to this loop
        threading.Thread(target=board.changed, args=({"ops": 3},)).start()
        return await waiting

    assert asyncio.run(scenario()) == 1


def test_before_any_stream_a_change_is_a_no_op() -> None:
    board = LiveBoard()
    board.changed({"ops": 1})  # the projection thread may run before anyone watches
    assert board.version == 0


def test_each_change_is_computed_once_for_every_viewer() -> None:
    board = LiveBoard()
    computed: list[int] = []

    async def compute() -> str:
        computed.append(board.version)
        return f'{{"v": {board.version}}}'

    async def scenario() -> list[str]:
        first = await asyncio.gather(*(board.view("today:cafe-01", compute) for _ in range(5)))
        board._bump()  # what changed() schedules on the loop
        second = await board.view("today:cafe-01", compute)
        return [*first, second]

    bodies = asyncio.run(scenario())
    assert computed == [0, 1]
    assert bodies == ['{"v": 0}'] * 5 + ['{"v": 1}']


def test_the_stream_sends_figures_then_keepalives_then_expires() -> None:
    board = LiveBoard()
    clock = [datetime(2026, 11, 2, 8, tzinfo=UTC)]
    expires = clock[0] + timedelta(minutes=30)

    async def compute() -> str:
        return '{"occupancy": 4}'

    async def scenario() -> list[str]:
        stream = sse_stream(
            board, "k", compute, heartbeat_s=0.01, expires_at=expires, now=lambda: clock[0]
        )
        out = [await anext(stream), await anext(stream), await anext(stream)]
        board._bump()
        out.append(await anext(stream))
        clock[0] = expires
        out.append(await anext(stream))
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        return out

    sent = asyncio.run(scenario())
    assert sent[0].startswith("retry:")
    assert sent[1] == 'event: today\ndata: {"occupancy": 4}\n\n'
    assert sent[2] == ": keep-alive\n\n"  # nothing changed within the heartbeat
    assert sent[3] == 'event: today\ndata: {"occupancy": 4}\n\n'  # a change: fresh figures
    assert sent[4] == "event: expired\ndata: {}\n\n"
