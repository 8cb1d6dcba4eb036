"""The live part of ``storelens demo``: today's café day replayed into the running server.

The server and the replay run side by side in one process: uvicorn in the main thread
(it owns Ctrl-C), the replay in a thread that posts through the HTTP ingest client
with a device key of its own, exactly as a till or a camera box would. When uvicorn
stops, the replay is told to stop and joined, and its key is revoked, so Ctrl-C leaves
nothing running and no live credential behind.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from storelens import accounts
from storelens.config import Settings
from storelens.core.retry import SYSTEM_CLOCK, Clock
from storelens.demo.replay import DayReplay, ReplayReport, read_replay
from storelens.ingest.client import IngestClient
from storelens.sim import run_simulation
from storelens.sim.config import SimConfig

__all__ = ["LiveDay", "live_day_events", "serve_with_replay"]

log = logging.getLogger(__name__)


def live_day_events(
    layout_path: Path, day: date, seed: int, directory: Path, heatmap_every_s: float
) -> Path:
    """Today's simulated café day as an events file, simulated once per day and seed."""
    out = directory / "sim" / f"live-{day}_seed{seed}"
    events = out / "events.jsonl"
    if not events.exists():
        config = SimConfig(start_date=day, heatmap_every_s=heatmap_every_s)
        run_simulation(layout_path, 1, seed, out, config=config)
    return events


@dataclass(frozen=True)
class LiveDay:
    """What to replay, how fast, and against which store."""

    events_path: Path
    store_id: str
    speed: float


def _device_key(engine: Engine, store_id: str) -> tuple[int, str]:
    with engine.begin() as conn:
        key, secret = accounts.create_api_key(conn, "demo-live-replay", store_id=store_id)
    return key.id, secret


def serve_with_replay(
    app: FastAPI,
    engine: Engine,
    settings: Settings,
    live: LiveDay | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    clock: Clock = SYSTEM_CLOCK,
    on_done: Callable[[ReplayReport], None] | None = None,
    stop_server_when_done: bool = False,
    log_config: dict[str, Any] | None = None,
) -> ReplayReport | None:
    """Run the server until Ctrl-C (or the replay's end, when asked) with the replay beside it.

    Returns the replay's report (None without a live day). ``on_done`` is called from the
    replay thread when the day has been posted to the end.
    """
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        log_config=log_config,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if live is None:
        server.run()
        return None
    key_id, secret = _device_key(engine, live.store_id)
    stop = threading.Event()
    client = IngestClient(f"http://{host}:{port}", secret, user_agent="storelens-demo")
    replay = DayReplay(
        read_replay(live.events_path), client.post_events, speed=live.speed, clock=clock, stop=stop
    )
    failure: list[BaseException] = []

    def run_replay() -> None:
        while not server.started and not stop.wait(0.05):  # uvicorn is binding its socket
            pass
        try:
            report = replay.run()
        except BaseException as exc:  # reported after the server stops, never lost
            failure.append(exc)
            log.exception("the live replay failed")
            report = replay.report
        if report.finished and on_done is not None:
            on_done(report)
        if stop_server_when_done or failure:
            server.should_exit = True

    thread = threading.Thread(target=run_replay, name="demo-live-replay")
    thread.start()
    try:
        server.run()
    finally:
        stop.set()
        thread.join()
        client.close()
        with engine.begin() as conn:
            accounts.revoke_api_key(conn, key_id)
    return replay.report
