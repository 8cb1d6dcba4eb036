"""What one warm recommendation request costs in-process, against hello world.

wrk over loopback measures the whole stack, and on a shared 2-core machine its
numbers move with whatever else runs. This calls each ASGI app directly (no sockets,
no uvicorn): the same seeded SQLite database as ``benchmarks/serving.py``, the
storelens app with candidates in memory, one signed-in user, a different customer
per request, and the same hello-world FastAPI app. The ratio of the two costs moves
far less with the machine's load than req/s does.

    python benchmarks/serving_inprocess.py                   # 5 rounds of 3,000 requests
    python benchmarks/serving_inprocess.py --profile 20      # + cProfile's top 20 functions

A first round of each fills the caches and is not reported; then rounds of hello
world and of recommendations alternate, and the best round of each is compared (the
one least disturbed by other jobs), with the median and the CPU time of the whole
process (every thread: the threadpool, the impression writer) beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from serving import CUSTOMERS, SECRET, hello, seed

Message = dict[str, Any]


def _scope(path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _call(app: Any, scope: dict[str, Any]) -> int:
    status = 0

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _round(app: Any, scopes: list[dict[str, Any]]) -> tuple[float, float]:
    """Wall and process CPU seconds per request over ``scopes``, one at a time."""
    wall, cpu = time.perf_counter(), time.process_time()
    for scope in scopes:
        status = await _call(app, scope)
        if status != 200:
            raise SystemExit(f"{scope['path']} answered {status}")
    n = len(scopes)
    return (time.perf_counter() - wall) / n, (time.process_time() - cpu) / n


async def _measure(
    apps: dict[str, tuple[Any, list[dict[str, Any]]]], rounds: int
) -> dict[str, list[tuple[float, float]]]:
    """Rounds of each app, interleaved so that a burst of load elsewhere hits both."""
    for app, scopes in apps.values():
        await _round(app, scopes)  # warm-up: fills the candidate and auth caches
    timings: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
    for _ in range(rounds):
        for name, (app, scopes) in apps.items():
            timings[name].append(await _round(app, scopes))
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", type=int, default=0, help="print cProfile's top N functions")
    args = ap.parse_args()

    from storelens.api.app import create_app
    from storelens.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="serving-inprocess-"))
    db_url = f"sqlite:///{tmp / 'bench.db'}"
    try:
        seed(db_url)
        settings = Settings(
            env="prod",
            secret_key=SECRET,
            database_url=db_url,
            run_projections=False,
            identity_resolve_every_s=0,
            recommend_candidate_store="memory",
        )
        app = create_app(settings)
        from fastapi.testclient import TestClient

        # Sign in through the real route; no ``with``: leaving it would run the app's
        # shutdown, which stops the impression writer the measured requests need.
        token = (
            TestClient(app)
            .post(
                "/v1/auth/token",
                data={"username": "bench", "password": "correct horse battery staple"},
            )
            .json()["access_token"]
        )
        headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
        reco = [
            _scope(
                f"/v1/customers/C{n * 7919 % CUSTOMERS}/recommendations",
                b"store=cafe-01&k=10",
                headers,
            )
            for n in range(args.requests)
        ]
        hello_scopes = [_scope("/hello", b"", [(b"host", b"bench")])] * args.requests
        timings = asyncio.run(
            _measure({"hello": (hello(), hello_scopes), "reco": (app, reco)}, args.rounds)
        )
        best = {name: min(w for w, _ in t) for name, t in timings.items()}
        median = {name: statistics.median(w for w, _ in t) for name, t in timings.items()}
        cpu = {name: min(c for _, c in t) for name, t in timings.items()}
        for name, label in (("hello", "hello world"), ("reco", "recommendations")):
            print(f"{label:16} {best[name] * 1e3:.3f} ms per request (best round; median "
                  f"{median[name] * 1e3:.3f}, process CPU {cpu[name] * 1e3:.3f})")  # fmt: skip
        ratio = best["reco"] / best["hello"]
        print(f"ratio            {ratio:.2f} (best rounds; hello's share {1 / ratio:.0%}; "
              f"CPU ratio {cpu['reco'] / cpu['hello']:.2f})")  # fmt: skip
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            asyncio.run(_round(app, reco))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile * 2)
        app.state.recommendations.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
