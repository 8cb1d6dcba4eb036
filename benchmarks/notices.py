"""How fast a member's arrival reaches staff phones, and a claim clears the others.

For each backend (SQLite file, real PostgreSQL) it starts the API in a uvicorn
subprocess, clocks two staff members in, opens their notice sockets, and for each of
``--n`` members: raises a notice (``POST /v1/notices``) and times until *both* sockets
have it; then the first claims it and it times until the second socket has the
withdrawal. Times are from just before the HTTP request to the socket message, on one
machine (perf_counter), so they include the HTTP round trip and the fan-out.

    python benchmarks/notices.py                # 200 arrivals on each backend
    python benchmarks/notices.py --n 50 --backend sqlite

Writes ``benchmarks/results/notices.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import insert

from live_api import api_process
from storelens import accounts, stores
from storelens.accounts import Role
from storelens.api.auth import issue_token
from storelens.config import Settings
from storelens.core.events import make_event
from storelens.storage import migrate
from storelens.storage.db import create_engine, throwaway_postgres
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import customers, users

PG_ADMIN_URL = os.environ.get(
    "STORELENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "notices-bench-secret-that-is-long-enough-0123456789"
RESULTS = Path(__file__).parent / "results" / "notices.json"
STORE = "cafe-01"
STAFF = ("ana", "ben")


def _seed(url: str, n: int) -> str:
    """The store, its staff on shift and ``n`` members; returns the store scanner's key
    (devices raise notices, staff do not)."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        stores.create_store(conn, STORE, "Café")
        _, scanner = accounts.create_api_key(conn, "scanner", store_id=STORE)
        conn.execute(
            insert(users),
            [{"username": u, "password_hash": "!", "role": "staff", "active": True} for u in STAFF],
        )
        conn.execute(
            insert(customers),
            [
                {"source_system": "crm", "source_record_id": f"r{i}", "customer_id": f"L-{i}"}
                for i in range(n)
            ],
        )
    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    EventLog(engine).append(
        [
            make_event("staff.clock_in", {"staff_id": u}, ts=at, store_id=STORE, source="till")
            for u in STAFF
        ]
    )
    engine.dispose()
    return scanner


@contextmanager
def served(url: str, workdir: Path) -> Iterator[str]:
    with api_process(url, workdir, SECRET, projections=False) as base:
        yield base


async def _until(ws: Any, kind: str, nid: str | None) -> float:
    while True:
        message = json.loads(await ws.recv())
        found = message.get("notice", {}).get("id") if kind == "notice" else message.get("id")
        if message["type"] == kind and (nid is None or found == nid):
            return time.perf_counter()


async def _measure(base: str, scanner: str, n: int, progress: Progress) -> dict[str, list[float]]:
    settings = Settings(env="test", secret_key=SECRET)
    headers = {
        u: {"Authorization": f"Bearer {issue_token(settings, u, Role.staff)[0]}"} for u in STAFF
    }
    ws_url = base.replace("http", "ws") + f"/v1/stores/{STORE}/notices/ws"
    raised: list[float] = []
    withdrawn: list[float] = []
    task = progress.add_task(base, total=n)
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        websockets.connect(ws_url, additional_headers=headers["ana"]) as ana,
        websockets.connect(ws_url, additional_headers=headers["ben"]) as ben,
    ):
        for ws in (ana, ben):
            await _until(ws, "hello", None)
        for i in range(n):
            body = {"store_id": STORE, "customer_id": f"L-{i}", "trigger": "loyalty_scan"}
            start = time.perf_counter()
            waits = [asyncio.create_task(_until(ws, "notice", None)) for ws in (ana, ben)]
            r = await client.post("/v1/notices", json=body, headers={"X-API-Key": scanner})
            r.raise_for_status()
            nid = r.json()["id"]
            raised.append(max(await asyncio.gather(*waits)) - start)
            start = time.perf_counter()
            wait = asyncio.create_task(_until(ben, "notice_withdrawn", nid))
            claim = await client.post(f"/v1/notices/{nid}/claim", headers=headers["ana"])
            assert claim.status_code == 200, claim.text
            withdrawn.append(await wait - start)
            await _until(ana, "notice_withdrawn", nid)  # the claimer's copy, drained
            progress.advance(task)
    return {"raise_to_both_phones": raised, "claim_to_withdrawn": withdrawn}


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def run(backend: str, n: int, progress: Progress) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if backend == "sqlite":
            urls = contextmanager(lambda: iter([f"sqlite:///{work / 'bench.db'}"]))()
        else:
            urls = throwaway_postgres(PG_ADMIN_URL, "storelens_bench")
        with urls as url:
            scanner = _seed(url, n)
            with served(url, work) as base:
                timings = asyncio.run(_measure(base, scanner, n, progress))
    return {k: _summary(v) for k, v in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="arrivals per backend")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    console = Console()
    results: dict[str, Any] = {}
    with Progress(console=console) as progress:
        for backend in backends:
            results[backend] = run(backend, args.n, progress)
    table = Table(title=f"notice latency, {args.n} arrivals, {os.cpu_count()} CPUs")
    for column in ("backend", "measure", "n", "p50 ms", "p95 ms", "max ms"):
        table.add_column(column)
    for backend, measures in results.items():
        for name, s in measures.items():
            table.add_row(
                backend, name, str(s["n"]), str(s["p50_ms"]), str(s["p95_ms"]), str(s["max_ms"])
            )
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python benchmarks/notices.py " + " ".join(sys.argv[1:]),
                "at": datetime.now(UTC).isoformat(),
                "cpus": os.cpu_count(),
                "run_id": uuid.uuid4().hex[:8],
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
