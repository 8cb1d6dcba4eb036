"""The SQLite users signal is read once per run of an event loop's ready callbacks.

What must hold (api/auth_cache.py, ``SqliteDataVersion.current``): a commit is seen by
every request sent after it ended. One read serving a whole run is enough for that,
because whatever the run serves was on the socket before the loop looked, so before
the read. The unit tests pin the loop mechanics on both loops the server may run
(asyncio's and uvloop, which uvicorn picks when installed); the last test drives a real
server with concurrent requests and disables the user in the middle.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import uvloop
from sqlalchemy import Engine

from storelens import accounts, stores
from storelens.accounts import Role
from storelens.api.auth_cache import SqliteDataVersion

from ..conftest import LiveServer

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


def _database(tmp_path: Path) -> tuple[sqlite3.Connection, SqliteDataVersion]:
    path = tmp_path / "signal.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("CREATE TABLE t (x)")
    return writer, SqliteDataVersion(str(path))


@pytest.mark.parametrize("loop", LOOPS)
def test_one_read_serves_a_run_and_the_next_run_reads_again(tmp_path: Path, loop: str) -> None:
    writer, signal = _database(tmp_path)

    async def scenario() -> None:
        first = signal.current()
        assert first is not None and signal.current() == first
        assert signal.reads == 1  # the second call of the run read nothing
        writer.execute("INSERT INTO t VALUES (1)")  # a revocation, committed
        # Still this run: anything it serves was sent before the first read.
        assert signal.current() == first and signal.reads == 1
        await asyncio.sleep(0)  # the next run: what it serves may be newer than the commit
        after = signal.current()
        assert after is not None and after != first
        assert signal.reads == 2

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(scenario())
    signal.close()
    writer.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_value_is_never_held_past_its_run_even_when_idle(tmp_path: Path, loop: str) -> None:
    """The hold ends with its run whether or not anything else runs next: a loop that
    then waits on a socket for a second still reads afresh for the request it gets."""
    writer, signal = _database(tmp_path)

    async def scenario() -> None:
        first = signal.current()
        writer.execute("INSERT INTO t VALUES (1)")
        await asyncio.sleep(0.05)  # the loop sleeps in its selector meanwhile
        assert signal.current() != first

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(scenario())
    assert signal.reads == 2
    signal.close()
    writer.close()


@pytest.mark.parametrize("loop", LOOPS)
def test_a_protocol_callback_reads_afresh(tmp_path: Path, loop: str) -> None:
    """uvloop calls ``data_received`` straight from the socket read, before the next
    run's release: code there must not get the held value (a review's reproduction,
    in which a request sent after the commit saw the value from before it)."""
    writer, signal = _database(tmp_path)
    out: dict[str, object | None] = {}

    async def scenario() -> None:
        running = asyncio.get_running_loop()
        done = running.create_future()

        class Reader(asyncio.Protocol):
            def data_received(self, data: bytes) -> None:
                out["in_callback"] = signal.current()
                done.set_result(None)

        server = await running.create_server(Reader, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, sender = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.sleep(0.05)  # connected and idle
        out["held"] = signal.current()  # the run's first read
        writer.execute("INSERT INTO t VALUES (1)")  # the commit ends
        sender.write(b"GET / HTTP/1.1\r\n\r\n")  # then the request is sent
        await done
        sender.close()
        server.close()

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(scenario())
    assert out["in_callback"] != out["held"]
    signal.close()
    writer.close()


def test_a_loop_with_a_task_factory_reads_every_time(tmp_path: Path) -> None:
    """A task factory may run a new task at once, inside the callback that created it
    (``asyncio.eager_task_factory``, Python 3.12+): no hold there."""
    writer, signal = _database(tmp_path)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda lp, coro, **kw: asyncio.Task(coro, loop=lp, **kw))
        first = signal.current()
        writer.execute("INSERT INTO t VALUES (1)")
        assert signal.current() != first

    asyncio.run(scenario())
    assert signal.reads == 2
    signal.close()
    writer.close()


def test_a_thread_reads_every_time_even_while_a_loop_holds_a_value(tmp_path: Path) -> None:
    """The threadpool and the CLI have no run to share: they read on every call, and a
    value one loop holds is never handed to another thread or another loop."""
    writer, signal = _database(tmp_path)
    seen: dict[str, object | None] = {}

    async def scenario() -> None:
        held = signal.current()
        writer.execute("INSERT INTO t VALUES (1)")
        seen["thread"] = await asyncio.to_thread(signal.current)  # this run is still going
        other = threading.Thread(target=lambda: seen.update(loop=asyncio.run(_read())))
        other.start()
        other.join()
        seen["held"] = held

    async def _read() -> object | None:
        return signal.current()

    asyncio.run(scenario())
    assert seen["thread"] != seen["held"] and seen["loop"] != seen["held"]
    assert seen["thread"] == seen["loop"]
    signal.close()
    writer.close()


def test_an_unreadable_value_is_not_held(tmp_path: Path) -> None:
    signal = SqliteDataVersion(str(tmp_path / "missing" / "nowhere.db"))

    async def scenario() -> None:
        assert signal.current() is None and signal.current() is None

    asyncio.run(scenario())
    assert signal.reads == 2  # "unknown" is asked again, never reused


def test_a_request_sent_after_the_disable_commits_is_refused_under_load(
    server: LiveServer, engine: Engine
) -> None:
    """Eight clients keep a real server busy with warm recommendation requests (the
    route whose token check runs on the event loop); the user is disabled in the middle.
    Every request that left after the commit ended must be refused; before it, the
    warm ones were answered."""
    with engine.begin() as conn:
        stores.create_store(conn, "cafe-01", "Cafe")
        accounts.create_user(conn, "ana", "correct horse battery staple", Role.analyst)
    token = httpx.post(
        f"{server.url}/v1/auth/token",
        data={"username": "ana", "password": "correct horse battery staple"},
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    path = "/v1/customers/L-1/recommendations?store=cafe-01&k=5"
    sent: list[tuple[float, int]] = []  # (monotonic time before the send, status)
    disabled_at: list[float] = []

    def disable() -> None:
        with engine.begin() as conn:
            accounts.set_active(conn, "ana", False)
        disabled_at.append(time.monotonic())  # the commit has ended

    async def client(http: httpx.AsyncClient) -> None:
        after = 0
        while after < 25:
            started = time.monotonic()
            status = (await http.get(path, headers=headers)).status_code
            sent.append((started, status))
            if disabled_at and started > disabled_at[0]:
                after += 1

    async def drive() -> None:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            tasks = [asyncio.create_task(client(http)) for _ in range(8)]
            while len(sent) < 300:
                await asyncio.sleep(0.005)
            await asyncio.to_thread(disable)
            await asyncio.gather(*tasks)

    asyncio.run(drive())
    (commit_ended,) = disabled_at
    before = [status for started, status in sent if started < commit_ended]
    after = [status for started, status in sent if started > commit_ended]
    assert before.count(200) >= 300  # the cache was warm and answering
    assert len(after) >= 8 * 25 and set(after) == {401}, sorted(set(after))
