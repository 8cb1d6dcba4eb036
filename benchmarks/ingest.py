"""Sustained ingest: POST /v1/events (batches of 1,000) against direct EventLog.append.

For each backend (SQLite file, real PostgreSQL) it measures, in one run and on the
same pre-built batches:

* **direct**: validated events written straight through ``EventLog.append`` (the limit);
* **api**: the same events as JSON bodies POSTed to a real uvicorn server (one worker,
  separate process) with a device key, one request at a time over keep-alive.

Each figure is the median of ``--runs`` runs; the ratio api/direct is what the issue
targets (>= 50 %), plus >= 20,000 events/s through the API into PostgreSQL.

    python benchmarks/ingest.py            # both backends, 3 runs of 50 batches
    python benchmarks/ingest.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from storelens.accounts import create_api_key
from storelens.core.events import EVENT_TYPES, Event, event_batch_adapter
from storelens.demo.sampleday import generate_day
from storelens.storage import migrate
from storelens.storage.db import create_engine, throwaway_postgres
from storelens.storage.eventlog import EventLog

RESULTS = Path(__file__).with_name("results")
PG_ADMIN = os.environ.get(
    "STORELENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "benchmark-secret-key-0123456789-abcdefghijklmnop"
console = Console()


def make_batches(n_batches: int, size: int) -> list[list[dict[str, Any]]]:
    """Realistic event mix (a café day), with fresh ids so nothing is a duplicate."""
    template = [e.model_dump(mode="json") for e in generate_day(seed=11)]
    out = []
    k = 0
    for _ in range(n_batches):
        batch = []
        for _ in range(size):
            item = dict(template[k % len(template)])
            item["id"] = str(uuid.uuid4())
            batch.append(item)
            k += 1
        out.append(batch)
    return out


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:6]}.db"
        yield f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    with throwaway_postgres(PG_ADMIN, "storelens_bench") as url:
        yield url


def run_direct(url: str, batches: list[list[Event]]) -> float:
    engine = create_engine(url)
    migrate.upgrade(engine)
    log = EventLog(engine)
    start = time.perf_counter()
    stored = sum(len(log.append(b).accepted) for b in batches)
    elapsed = time.perf_counter() - start
    engine.dispose()
    assert stored == sum(len(b) for b in batches), "direct run stored fewer than sent"
    return stored / elapsed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, workers: int = 1) -> Iterator[str]:
    port = _free_port()
    env = {
        **os.environ,
        "STORELENS_DATABASE_URL": url,
        "STORELENS_ENV": "prod",
        "STORELENS_SECRET_KEY": SECRET,
        "STORELENS_RUN_PROJECTIONS": "false",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "storelens.api.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--workers",
            str(workers),
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError("server did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_api(
    url: str, bodies: list[bytes], n_events: int, clients: int = 1, workers: int = 1
) -> float:
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        # the café day holds CRM records and consent too: a key made for every type
        _, key = create_api_key(conn, "bench", event_types=EVENT_TYPES, consent_source=True)
    engine.dispose()
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def post_all(base: str, share: list[bytes]) -> int:
        with httpx.Client(base_url=base, timeout=60) as client:
            accepted = 0
            for body in share:
                r = client.post("/v1/events", content=body, headers=headers)
                r.raise_for_status()
                accepted += int(r.json()["accepted"])
            return accepted

    with server(url, workers) as base:
        for _ in range(workers * 2):
            post_all(base, [b"[]"])  # warm every worker: imports, connection pool
        start = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            shares = [bodies[i::clients] for i in range(clients)]
            accepted = sum(pool.map(lambda share: post_all(base, share), shares))
        elapsed = time.perf_counter() - start
    assert accepted == n_events, f"api accepted {accepted} of {n_events}"
    return n_events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--clients",
        type=int,
        default=4,
        help="concurrent posting clients for the second API figure",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn workers for the second API figure"
    )
    parser.add_argument("--quick", action="store_true", help="10 batches, 1 run")
    parser.add_argument(
        "--out", type=Path, default=RESULTS / "ingest.json", help="where to write the results JSON"
    )
    args = parser.parse_args()
    if args.quick:
        args.batches, args.runs = 10, 1
    workdir = Path(tempfile.gettempdir())
    results: dict[str, Any] = {
        "benchmark": "ingest",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "batch_size": args.batch_size,
        "batches": args.batches,
        "runs": args.runs,
        "backends": {},
    }
    table = Table(
        title=f"ingest, {args.batches} x {args.batch_size} events, median of {args.runs} runs"
    )
    for col in (
        "backend",
        "direct ev/s",
        "api ev/s (1 client)",
        "ratio",
        f"api ev/s ({args.workers} workers, {args.clients} clients)",
        "ratio",
        "target (best)",
    ):
        table.add_column(col, justify="right")
    for backend in args.backends.split(","):
        direct_rates, api_rates, multi_rates = [], [], []
        for run in range(args.runs):
            raw = make_batches(args.batches, args.batch_size)
            validated = [event_batch_adapter.validate_python(b) for b in raw]
            with database(backend, workdir) as url:
                direct_rates.append(run_direct(url, validated))
            raw = make_batches(args.batches, args.batch_size)
            bodies = [json.dumps(b).encode() for b in raw]
            with database(backend, workdir) as url:
                api_rates.append(run_api(url, bodies, args.batches * args.batch_size))
            raw = make_batches(args.batches, args.batch_size)
            bodies = [json.dumps(b).encode() for b in raw]
            with database(backend, workdir) as url:
                multi_rates.append(
                    run_api(url, bodies, args.batches * args.batch_size, args.clients, args.workers)
                )
            console.print(
                f"{backend} run {run + 1}: direct {direct_rates[-1]:,.0f} ev/s, "
                f"api {api_rates[-1]:,.0f} ev/s, "
                f"api {args.workers}w/{args.clients}c {multi_rates[-1]:,.0f} ev/s"
            )
        direct = statistics.median(direct_rates)
        api, multi = statistics.median(api_rates), statistics.median(multi_rates)
        best = max(api, multi)
        target = best / direct >= 0.5 and (backend != "postgres" or best >= 20_000)
        results["backends"][backend] = {
            "direct_events_per_s": round(direct),
            "api_events_per_s": round(api),
            "api_ratio": round(api / direct, 3),
            "api_workers": args.workers,
            "api_clients": args.clients,
            "api_parallel_events_per_s": round(multi),
            "api_parallel_ratio": round(multi / direct, 3),
            "direct_runs": [round(x) for x in direct_rates],
            "api_runs": [round(x) for x in api_rates],
            "api_parallel_runs": [round(x) for x in multi_rates],
            "meets_target": target,
        }
        goal = ">=50%" + (", >=20k/s" if backend == "postgres" else "")
        table.add_row(
            backend,
            f"{direct:,.0f}",
            f"{api:,.0f}",
            f"{api / direct:.0%}",
            f"{multi:,.0f}",
            f"{multi / direct:.0%}",
            f"{goal} {'ok' if target else 'MISSED'}",
        )
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
