"""The recommendation endpoint of two revisions side by side, against hello world.

``serving.py`` gives each row's share of hello world, and on this shared 2-core machine
that share moves by a tenth from one hour to the next (other tenants' load). Whether a
change made serving faster is therefore measured here, not by comparing two runs of
``serving.py``: the working tree and ``--base`` (any git revision, checked out into a
temporary worktree) serve the same seeded database, each from its own copy, and every
round runs hello world, then each of them, for ``--seconds`` under wrk, the order
rotating from round to round. A revision's share is the median of its rounds' own
ratios to the hello world measured in the same round.

    python benchmarks/serving_ab.py --base d3b08da            # 6 rounds, one worker
    python benchmarks/serving_ab.py --base HEAD~1 --workers 2

Written to ``benchmarks/results/serving_ab.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from serving import (
    _SERVERS,
    CUSTOMERS,
    LUA,
    RESULTS,
    seed,
    serve,
    signed_in,
    start_redis_and_env,
    stop,
    wrk,
)

console = Console()
REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = Path(__file__).resolve().parent


def _worktree(rev: str, where: Path) -> str:
    """``rev`` checked out at ``where``; its full commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    if commit.returncode != 0:
        raise SystemExit(f"--base {rev!r} is not a revision of this repository")
    subprocess.run(
        ["git", "worktree", "add", "--detach", "--quiet", str(where), commit.stdout.strip()],
        cwd=REPO, check=True,
    )  # fmt: skip
    return commit.stdout.strip()


def _revision(
    src: Path, db_url: str, env: dict[str, str], workers: int
) -> tuple[str, dict[str, str]]:
    """A storelens server importing ``src``: its recommendation URL and bearer header."""
    mine = {**env, "STORELENS_DATABASE_URL": db_url,
            "PYTHONPATH": os.pathsep.join([str(src), str(BENCHMARKS)])}  # fmt: skip
    _, port = serve("storelens_app", workers, mine)
    url, headers = signed_in(port)
    return f"{url}/v1/customers/C1/recommendations?store=cafe-01&k=10", headers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--base", required=True, help="the git revision to compare with")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=15, help="seconds per server first")
    ap.add_argument("--workers", type=int, default=1, choices=(1, 2))
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--store", choices=("memory", "redis"), default="memory")
    args = ap.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        raise SystemExit("needs wrk and redis-server (apt-get install wrk redis-server)")
    tmp = Path(tempfile.mkdtemp(prefix="serving-ab-"))
    tree = tmp / "base"
    commit = _worktree(args.base, tree)
    redis = None
    try:
        seeded = tmp / "seed.db"
        console.print(f"seeding {CUSTOMERS} customers")
        seed(f"sqlite:///{seeded}")
        redis, env = start_redis_and_env(f"sqlite:///{seeded}")
        env["STORELENS_RECOMMEND_CANDIDATE_STORE"] = args.store
        script = tmp / "customers.lua"
        script.write_text(LUA % CUSTOMERS)
        _, hello_port = serve("hello", args.workers, env)
        targets: list[tuple[str, str, dict[str, str], Path | None]] = [
            ("hello world", f"http://127.0.0.1:{hello_port}/hello", {}, None)
        ]
        for name, src in ((f"base {commit[:10]}", tree / "src"), ("working tree", REPO / "src")):
            copy = tmp / f"{len(targets)}.db"
            shutil.copy(seeded, copy)
            url, headers = _revision(src, f"sqlite:///{copy}", env, args.workers)
            targets.append((name, url, headers, script))
        for _, url, headers, lua in targets:
            wrk(url, args.warmup if lua else 2, args.connections, headers, lua)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, *_ in targets}
        for r in range(args.rounds):
            turn = r % len(targets)
            for name, url, headers, lua in targets[turn:] + targets[:turn]:
                runs[name].append(wrk(url, args.seconds, args.connections, headers, lua))
                console.print(f"round {r + 1}: {name} {runs[name][-1]['rps']:.0f} req/s")
    finally:
        for proc in _SERVERS:
            if proc.poll() is None:
                stop(proc)
        if redis is not None:
            redis.kill()
            redis.wait()
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    hello = runs["hello world"]
    rows: list[dict[str, Any]] = []
    for name, got in runs.items():
        ratios = [x["rps"] / h["rps"] for x, h in zip(got, hello, strict=True)]
        rows.append({
            "server": name,
            "rps": statistics.median(x["rps"] for x in got),
            "p99_ms": statistics.median(x["p99_ms"] for x in got),
            "p99_worst_ms": max(x["p99_ms"] for x in got),
            "non_2xx": sum(int(x["non_2xx"]) for x in got),
            "share_of_hello": statistics.median(ratios),
            "share_of_hello_rounds": [round(x, 3) for x in ratios],
        })  # fmt: skip
    base_row, new_row = rows[1], rows[2]
    gain = new_row["share_of_hello"] / base_row["share_of_hello"] - 1
    table = Table(title=f"{args.workers} worker(s), {args.connections} connections, {args.store}")
    for col in ("server", "req/s", "p99 ms", "worst p99", "of hello", "rounds", "non-2xx"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(row["server"], f"{row['rps']:.0f}", f"{row['p99_ms']:.2f}",
                      f"{row['p99_worst_ms']:.2f}", f"{row['share_of_hello']:.0%}",
                      " ".join(f"{x:.2f}" for x in row["share_of_hello_rounds"]),
                      str(row["non_2xx"]))  # fmt: skip
    console.print(table)
    console.print(f"working tree against base: {gain:+.1%} in share of hello world")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "serving_ab.json").write_text(json.dumps({
        "command": "python benchmarks/serving_ab.py " + " ".join(sys.argv[1:]),
        "base": commit,
        "workers": args.workers,
        "connections": args.connections,
        "store": args.store,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "share_gain": gain,
    }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
