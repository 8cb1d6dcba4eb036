"""The API in its own uvicorn process on a free loopback port, for the benchmarks that
drive it from outside (api_fuzz, notices, recognition): one copy of the start, the wait
for /health and the shutdown."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

__all__ = ["api_process", "free_port"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def api_process(
    url: str, workdir: Path, secret: str, *, projections: bool, access_log: bool = True
) -> Iterator[str]:
    """Serve the API on ``url``'s database until the block ends; yields its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "STORELENS_DATABASE_URL": url,
        "STORELENS_ENV": "prod",
        "STORELENS_SECRET_KEY": secret,
        "STORELENS_RUN_PROJECTIONS": "true" if projections else "false",
    }
    command = [sys.executable, "-m", "uvicorn", "--factory", "storelens.api.app:create_app"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    if not access_log:
        command += ["--no-access-log"]
    log = (workdir / "server.log").open("ab")
    proc = subprocess.Popen(command, env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server did not start: {(workdir / 'server.log').read_text()}")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
