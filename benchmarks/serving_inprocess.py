"""What one warm recommendation request costs in-process, against hello world.

wrk over loopback measures the whole stack, and on a shared 2-core machine its
numbers move with whatever else runs. This calls each ASGI app directly (no sockets,
no uvicorn): the same seeded SQLite database as ``benchmarks/serving.py``, the
storelens app with candidates in memory, one signed-in user, a different customer
per request, and the same hello-world FastAPI app. The ratio of the two costs moves
far less with the machine's load than req/s does.

    python benchmarks/serving_inprocess.py                   # 5 rounds of 3,000 requests
    python benchmarks/serving_inprocess.py --profile 20      # + cProfile's top 20 functions
    python benchmarks/serving_inprocess.py --postgres postgresql+psycopg://postgres@127.0.0.1/postgres

``--postgres ADMIN_URL`` measures the recommendation request on a throwaway PostgreSQL
database instead, with ``signed_in_cache_postgres`` off (the user row read per
request) and on (LISTEN/NOTIFY), rounds alternating; written under
``in_process_postgres``.

Between the two it measures the layers in the way: FastAPI's async hello world (the
limit, as in ``serving.py``) and the same route as a plain ``def`` (which FastAPI runs
in its threadpool), a bare FastAPI route with the recommendation route's parameters,
a trivial route on the storelens app (its middlewares), and the floor route of
``serving.py`` (the token check and role gate too, a fixed answer); written to
``benchmarks/results/serving.json`` under ``in_process_layers``.

A first round of each fills the caches and is not reported; then rounds of every
app alternate, and the best round of each is compared (the
one least disturbed by other jobs), with the median and the CPU time of the whole
process (every thread: the threadpool, the impression writer) beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request, Response
from rich.console import Console
from rich.table import Table

from serving import CUSTOMERS, SECRET, add_floor_route, hello, seed
from storelens.api.app import NO_TELEMETRY

LAYERS = (
    ("hello", "hello world (async def, the limit)"),
    ("hello_quiet", "hello world, FastAPI telemetry off (as storelens)"),
    ("hello_sync", "hello world (def, threadpool)"),
    ("params", "bare FastAPI route, same path and query parameters"),
    ("middlewares", "storelens app, trivial route (our middlewares)"),
    ("floor", "storelens app, floor route (+ token check and role gate)"),
    ("reco", "recommendations"),
)

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


def _parameters_app() -> FastAPI:
    """A bare FastAPI app with the recommendation route's path and query parameters
    and nothing else: what FastAPI's parameter solving costs on its own."""
    app = FastAPI()

    @app.get("/r/{customer_id}")
    async def _route(
        customer_id: str,
        store: str = Query(min_length=1, max_length=64),
        k: int = Query(10, ge=1, le=500),
        context: str | None = Query(None, max_length=500),
    ) -> Response:
        return Response(b"{}", media_type="application/json")

    return app


async def _trivial(request: Request) -> Response:
    return Response(b'{"hello":"world"}', media_type="application/json")


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
    ap.add_argument("--postgres", metavar="ADMIN_URL", help="the PostgreSQL comparison instead")
    args = ap.parse_args()
    if args.postgres:
        postgres(args.postgres, args.requests, args.rounds)
        return

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
        app, headers = _signed_in_app(settings)
        reco = [
            _scope(
                f"/v1/customers/C{n * 7919 % CUSTOMERS}/recommendations",
                b"store=cafe-01&k=10",
                headers,
            )
            for n in range(args.requests)
        ]
        bare = [(b"host", b"bench")]
        add_floor_route(app)
        app.add_api_route("/bench/trivial", _trivial, methods=["GET"])
        app.router.routes.insert(0, app.router.routes.pop())
        n = args.requests
        apps = {
            "hello": (hello(), [_scope("/hello", b"", bare)] * n),
            "hello_quiet": (hello(NO_TELEMETRY), [_scope("/hello", b"", bare)] * n),
            "hello_sync": (hello(), [_scope("/hello-sync", b"", bare)] * n),
            "params": (_parameters_app(), [_scope("/r/C1", b"store=cafe-01&k=10", bare)] * n),
            "middlewares": (app, [_scope("/bench/trivial", b"", headers)] * n),
            "floor": (app, [_scope(f"/bench/floor/C{i * 7919 % CUSTOMERS}",
                                   b"store=cafe-01&k=10", headers) for i in range(n)]),
            "reco": (app, reco),
        }  # fmt: skip
        timings = asyncio.run(_measure(apps, args.rounds))
        best = {name: min(w for w, _ in t) for name, t in timings.items()}
        median = {name: statistics.median(w for w, _ in t) for name, t in timings.items()}
        cpu = {name: min(c for _, c in t) for name, t in timings.items()}
        table = Table(title="one request in-process, ms (best of the rounds)")
        for col in ("what", "best", "median", "process CPU", "hello's share"):
            table.add_column(col, justify="right")
        for name, label in LAYERS:
            share = best["hello"] / best[name]
            table.add_row(label, f"{best[name] * 1e3:.3f}", f"{median[name] * 1e3:.3f}",
                          f"{cpu[name] * 1e3:.3f}", f"{share:.0%}")  # fmt: skip
        Console(width=140).print(table)
        out = Path(__file__).with_name("results") / "serving.json"
        kept = json.loads(out.read_text()) if out.exists() else {}
        kept["in_process_layers"] = {
            "command": "python benchmarks/serving_inprocess.py " + " ".join(sys.argv[1:]),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "requests_per_round": n,
            "rounds": args.rounds,
            "ms": {name: {"label": label, "best": round(best[name] * 1e3, 4),
                          "median": round(median[name] * 1e3, 4),
                          "process_cpu": round(cpu[name] * 1e3, 4)}
                   for name, label in LAYERS},
        }  # fmt: skip
        out.write_text(json.dumps(kept, indent=2) + "\n")
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


def _signed_in_app(settings: Any) -> tuple[Any, list[tuple[bytes, bytes]]]:
    """The storelens app and the benchmark analyst's headers, signed in by the route
    (no ``with``: leaving it would run the app's shutdown, which stops the impression
    writer the measured requests need)."""
    from fastapi.testclient import TestClient

    from storelens.api.app import create_app

    app = create_app(settings)
    token = (
        TestClient(app)
        .post(
            "/v1/auth/token", data={"username": "bench", "password": "correct horse battery staple"}
        )
        .json()["access_token"]
    )
    return app, [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]


def postgres(admin_url: str, n: int, rounds: int) -> None:
    """The warm recommendation request on PostgreSQL, the token check by row and by news."""
    from storelens.config import Settings
    from storelens.storage.db import throwaway_postgres

    with throwaway_postgres(admin_url, "storelens_bench") as db_url:
        seed(db_url)
        apps: dict[str, tuple[Any, list[dict[str, Any]]]] = {}
        for name, cached in (("row_per_request", False), ("listen_notify", True)):
            settings = Settings(env="prod", secret_key=SECRET, database_url=db_url,
                                run_projections=False, identity_resolve_every_s=0,
                                recommend_candidate_store="memory",
                                signed_in_cache_postgres=cached)  # fmt: skip
            app, headers = _signed_in_app(settings)
            if cached:  # the listener starts on the first check; wait until it listens
                end = time.monotonic() + 30
                while app.state.signed_in.mark() is None and time.monotonic() < end:
                    time.sleep(0.05)
            scopes = [_scope(f"/v1/customers/C{i * 7919 % CUSTOMERS}/recommendations",
                             b"store=cafe-01&k=10", headers) for i in range(n)]  # fmt: skip
            apps[name] = (app, scopes)
        timings = asyncio.run(_measure(apps, rounds))
        table = Table(title="one warm recommendation request on PostgreSQL, in-process, ms")
        for col in ("token check", "best", "median", "process CPU"):
            table.add_column(col, justify="right")
        result: dict[str, Any] = {}
        for name, t in timings.items():
            best, median = min(w for w, _ in t), statistics.median(w for w, _ in t)
            cpu = min(c for _, c in t)
            table.add_row(name, f"{best * 1e3:.3f}", f"{median * 1e3:.3f}", f"{cpu * 1e3:.3f}")
            result[name] = {"best": round(best * 1e3, 4), "median": round(median * 1e3, 4),
                            "process_cpu": round(cpu * 1e3, 4)}  # fmt: skip
        Console(width=140).print(table)
        for app, _ in apps.values():
            app.state.recommendations.close()
            app.state.signed_in.close()
    out = Path(__file__).with_name("results") / "serving.json"
    kept = json.loads(out.read_text()) if out.exists() else {}
    kept["in_process_postgres"] = {
        "command": "python benchmarks/serving_inprocess.py " + " ".join(sys.argv[1:]),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "requests_per_round": n,
        "rounds": rounds,
        "ms": result,
    }
    out.write_text(json.dumps(kept, indent=2) + "\n")


if __name__ == "__main__":
    main()
