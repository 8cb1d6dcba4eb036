"""A longer schemathesis sweep of the whole API than CI's seeded one.

For each backend (SQLite file, real PostgreSQL) it starts the API in a uvicorn
subprocess with projections on, signs in as an admin, and runs every operation in the
OpenAPI document with valid (positive) and invalid (negative) generated requests,
randomised (a new seed per run unless ``--seed``). It counts cases sent, server errors
(5xx), schema violations (status, content type or body not as documented) and invalid
requests that were accepted, and lists each failing operation with a curl line.

    python benchmarks/api_fuzz.py                    # 100 cases per operation and mode
    python benchmarks/api_fuzz.py --examples 20 --seed 7

Writes ``benchmarks/results/api_fuzz.json``. CI runs the short, seeded version in
``tests/api/test_schema_fuzz.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis.errors import Unsatisfiable
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from schemathesis import GenerationMode, checks

from live_api import api_process
from storelens import accounts, stores
from storelens.storage import migrate
from storelens.storage.db import create_engine, throwaway_postgres

PG_ADMIN_URL = os.environ.get(
    "STORELENS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "api-fuzz-secret-that-is-long-enough-0123456789"
PASSWORD = "correct horse battery staple"
RESULTS = Path(__file__).parent / "results" / "api_fuzz.json"
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]
KINDS = {
    "Server error": "server_errors",
    "Undocumented status code": "schema_violations",
    "Undocumented Content-Type": "schema_violations",
    "Response violates schema": "schema_violations",
    "Schema-violating request accepted": "invalid_accepted",
}


@contextmanager
def served(url: str, workdir: Path) -> Iterator[str]:
    """The API with projections on, in its own process, on ``url``'s database."""
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        accounts.create_user(conn, "fuzz-admin", PASSWORD, accounts.Role.admin)
        stores.create_store(conn, "cafe-01", "Café")
    engine.dispose()
    with api_process(url, workdir, SECRET, projections=True, access_log=False) as base:
        yield base


def _cases(
    operation: Any,
    mode: GenerationMode,
    base: str,
    admin: dict[str, str],
    examples: int,
    run_seed: int,
    counts: dict[str, int],
    curls: list[str],
) -> Any:
    """One operation's cases as a Hypothesis test: call it to run them."""

    @seed(run_seed)
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        for name in ("X-API-Key", "Authorization"):
            (case.headers or {}).pop(name, None)
        sent = {} if case.path == "/v1/auth/token" else admin
        # Event batches reject bad events one by one (200), and a CSV body is text
        # whatever it holds: "invalid input must get a 4xx" does not apply to them.
        per_item = case.path == "/v1/events" and case.method == "POST"
        csv_body = (case.media_type or "").startswith("text/csv")
        chosen = [
            c
            for c in CHECKS
            if not ((per_item or csv_body) and c is checks.negative_data_rejection)
        ]
        counts["cases"] += 1
        try:
            case.call_and_validate(base_url=base, headers=sent, checks=chosen)
        except BaseException:
            curls.append(case.as_curl_command(headers=sent))
            raise

    return run


def sweep(base: str, examples: int, run_seed: int, progress: Progress) -> dict[str, Any]:
    token = httpx.post(
        f"{base}/v1/auth/token", data={"username": "fuzz-admin", "password": PASSWORD}
    ).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    counts = {"cases": 0, "server_errors": 0, "schema_violations": 0, "invalid_accepted": 0}
    failures: list[dict[str, str]] = []
    task = progress.add_task(base, total=len(operations) * 2)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            curls: list[str] = []
            try:
                _cases(operation, mode, base, admin, examples, run_seed, counts, curls)()
            except Unsatisfiable:
                pass
            except (Exception, BaseExceptionGroup) as exc:
                found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
                for failure in found:
                    title = str(failure).strip().splitlines()[0]
                    counts[KINDS.get(title, "schema_violations")] += 1
                    failures.append(
                        {
                            "operation": operation.label,
                            "mode": mode.value,
                            "failure": title,
                            "reproduce": curls[-1][:400] if curls else "",
                        }
                    )
            progress.advance(task)
    return {"operations": len(operations), **counts, "failures": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="cases per operation and mode")
    parser.add_argument("--seed", type=int, default=None, help="default: a new one each run")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    run_seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    console = Console()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, Progress(console=console) as progress:
        work = Path(tmp)
        if args.backend in ("sqlite", "both"):
            with served(f"sqlite:///{work / 'fuzz.db'}", work) as base:
                results["sqlite"] = sweep(base, args.examples, run_seed, progress)
        if args.backend in ("postgres", "both"):
            with (
                throwaway_postgres(PG_ADMIN_URL, "storelens_fuzz") as url,
                served(url, work) as base,
            ):
                results["postgres"] = sweep(base, args.examples, run_seed, progress)
    table = Table(
        title=f"schemathesis sweep: {args.examples} cases/operation/mode, seed {run_seed}"
    )
    for col in ("backend", "operations", "cases", "5xx", "schema violations", "bad accepted"):
        table.add_column(col, justify="right")
    for backend, r in results.items():
        table.add_row(
            backend,
            str(r["operations"]),
            str(r["cases"]),
            str(r["server_errors"]),
            str(r["schema_violations"]),
            str(r["invalid_accepted"]),
        )
    console.print(table)
    for backend, r in results.items():
        for f in r["failures"]:
            console.print(f"[red]{backend}[/] {f['operation']} [{f['mode']}]: {f['failure']}")
            console.print(f"  {f['reproduce']}", markup=False)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                "examples_per_operation_and_mode": args.examples,
                "seed": run_seed,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
