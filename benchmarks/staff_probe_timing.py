"""Can a staff login tell a customer's id from a stranger's by how long a write takes?

``DELETE /v1/customers/{id}/faces`` (a biometric withdrawal, the one write by id left
to staff; declines go through a claimed notice) answers staff 200 for any id; a known
id's withdrawal writes, an unknown one's writes nothing but its audit row, and a
security review told the two apart by timing (on declines, which did the same). This
measures both, interleaved (known, unknown, known, ...), in one run,
with the floor off (0) and at the default (40 ms), on SQLite, in process (FastAPI's
test client: no sockets, so the server's own difference is not hidden in network
noise). The first 20 pairs of each run are warm-up and dropped. Besides the medians
it reports how often a known id's request was the slower of a known and an unknown one
(over every pair of the two samples: 0.5 is a coin toss, 1.0 tells them apart every
time), the figure a prober would need to beat.

A floor hides only work shorter than itself, so four more runs put a slow database in
front of both, each with the floor off (what a floor alone gave once the work outlasted
it) and at 40 ms, where the answer now keeps to the floor's whole steps
(``api/deps.StaffPace``): a slow commit (every transaction's commit waits
``--slow-commit-ms``, 50 ms: a loaded disk, a synchronous replica), which both paths
pay once, and slow statements (every SQL statement waits ``--slow-statement-ms``, 10 ms:
a distant database), which a known id pays more often, as it runs more of them.

    python benchmarks/staff_probe_timing.py              # 400 pairs per run, ~6 min
    python benchmarks/staff_probe_timing.py --pairs 100

Written to ``benchmarks/results/staff_probe_timing.json``.
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import event, insert

from storelens import accounts
from storelens.api.app import create_app
from storelens.api.auth import issue_token
from storelens.config import Settings
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.tables import customers

RESULTS = Path(__file__).with_name("results")
WARM_UP = 20


def _run(
    floor_ms: float, slow: tuple[str, float], pairs: int, workdir: Path
) -> dict[str, list[float]]:
    """``slow``: ("commit" or "statement", ms), or ("", 0) for the database as it is."""
    url = f"sqlite:///{workdir / f'floor-{floor_ms:g}-{slow[0]}-{slow[1]:g}.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            {"source_system": "crm", "source_record_id": "r-1", "customer_id": "ada",
             "first_name": "Ada", "last_name": "Lovelace", "loyalty_id": "ada"},
        )  # fmt: skip
        accounts.create_user(conn, "sam", "correct horse battery staple", accounts.Role.staff)
    with engine.connect() as conn:
        found = accounts.token_version(conn, "sam")
    assert found is not None
    settings = Settings(
        env="test", database_url=url, secret_key="benchmark-" * 4, keepalive_max_requests=0,
        staff_customer_writes_per_minute=10**9,  # the rate is not what is measured
        staff_customer_write_floor_ms=floor_ms,
        # The notice sweeper's commit each second took SQLite's write lock for the slow
        # commit's 50 ms and fell into step with the requests (every sixth pair's
        # unknown id, in a trial run): a benchmark artefact, so it sleeps for an hour.
        notice_sweep_s=3600,
    )  # fmt: skip
    token, _ = issue_token(settings, "sam", accounts.Role.staff, found[2])
    headers = {"Authorization": f"Bearer {token}"}
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    where, slow_ms = slow
    if slow_ms > 0:  # attached after the setup above, so only the requests wait
        hook = "commit" if where == "commit" else "before_cursor_execute"

        @event.listens_for(engine, hook)
        def _slow(*_: object) -> None:
            time.sleep(slow_ms / 1000)

    app = create_app(settings, engine=engine, run_projections=False)
    with TestClient(app) as client:
        for i in range(pairs + WARM_UP):
            for kind, customer in (("known", "ada"), ("unknown", f"nobody-{i}")):
                started = time.perf_counter()
                r = client.delete(f"/v1/customers/{customer}/faces", headers=headers)
                elapsed = (time.perf_counter() - started) * 1000
                if r.status_code != 200:
                    raise SystemExit(f"{customer}: {r.status_code} {r.text}")
                if i >= WARM_UP:
                    times[kind].append(elapsed)
    engine.dispose()
    return times


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "median_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[int(0.9 * len(ordered))], 3),
        "max_ms": round(ordered[-1], 3),
    }


def _known_slower(known: list[float], unknown: list[float]) -> float:
    """P(a known id's request takes longer than an unknown id's), ties counting half:
    the Mann-Whitney statistic over both samples, scaled to 0..1."""
    ordered = sorted(unknown)
    wins = 0.0
    for k in known:
        below = bisect.bisect_left(ordered, k)
        ties = bisect.bisect_right(ordered, k) - below
        wins += below + ties / 2
    return wins / (len(known) * len(unknown))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--slow-commit-ms", type=float, default=50.0)
    parser.add_argument("--slow-statement-ms", type=float, default=10.0)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    databases = [("", 0.0), ("commit", args.slow_commit_ms), ("statement", args.slow_statement_ms)]
    with tempfile.TemporaryDirectory() as tmp:
        for slow in databases:
            for floor_ms in (0.0, 40.0):
                times = _run(floor_ms, slow, args.pairs, Path(tmp))
                rows.append(_row(floor_ms, slow, args.pairs, times))
    table = Table(title="staff withdrawal by id: known customer against unknown id (ms)")
    for column in ("floor", "slow database", "pairs", "known median", "unknown median",
                   "difference", "known p90", "unknown p90", "P(known slower)"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in rows:
        database = f"{r['slow_ms']:g} ms per {r['slow']}" if r["slow"] else "no"
        table.add_row(
            f"{r['floor_ms']:g}", database, str(r["pairs"]), f"{r['known']['median_ms']:.2f}",
            f"{r['unknown']['median_ms']:.2f}", f"{r['median_difference_ms']:+.2f}",
            f"{r['known']['p90_ms']:.2f}", f"{r['unknown']['p90_ms']:.2f}",
            f"{r['p_known_slower']:.2f}",
        )  # fmt: skip
    Console(width=140).print(table)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "staff_probe_timing.json"
    out.write_text(json.dumps({"runs": rows}, indent=2) + "\n")
    print(f"written to {out}")


def _row(
    floor_ms: float, slow: tuple[str, float], pairs: int, times: dict[str, list[float]]
) -> dict[str, Any]:
    known, unknown = _summary(times["known"]), _summary(times["unknown"])
    return {
        "floor_ms": floor_ms, "slow": slow[0], "slow_ms": slow[1], "pairs": pairs,
        "known": known, "unknown": unknown,
        "median_difference_ms": round(known["median_ms"] - unknown["median_ms"], 3),
        "p_known_slower": round(_known_slower(times["known"], times["unknown"]), 3),
    }  # fmt: skip


if __name__ == "__main__":
    main()
