"""The whole OpenAPI schema fuzzed against a real server with projections on.

schemathesis generates valid and invalid requests for every operation and checks that
none gets a 5xx, that every status and body matches the schema, and that invalid input
is refused with a 4xx. The run is bounded and seeded (``derandomize``), so CI sees the
same cases each time; ``benchmarks/api_fuzz.py`` runs a longer, randomised sweep.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks
from sqlalchemy import Engine

from storelens import accounts, stores
from storelens.storage.db import create_engine

pytestmark = pytest.mark.timeout(900)

EXAMPLES = int(os.environ.get("STORELENS_FUZZ_EXAMPLES", "12"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.negative_data_rejection,
]


def _seed(engine: Engine) -> dict[str, str]:
    """An admin, a store, and bearer headers for the admin."""
    password = "correct horse battery staple"
    with engine.begin() as conn:
        accounts.create_user(conn, "fuzz-admin", password, accounts.Role.admin)
        stores.create_store(conn, "cafe-01", "Café")
    return {"username": "fuzz-admin", "password": password}


@pytest.fixture
def fuzz_target(
    db_url: str, tmp_path: Path, projecting_server: Callable[[], Any]
) -> Iterator[tuple[str, dict[str, str]]]:
    import httpx

    engine = create_engine(db_url)
    login = _seed(engine)
    engine.dispose()
    server = projecting_server()
    token = httpx.post(f"{server.url}/v1/auth/token", data=login, timeout=10).json()
    yield server.url, {"Authorization": f"Bearer {token['access_token']}"}
    log_text = (tmp_path / "server.log").read_text()
    assert "Traceback" not in log_text, log_text[-4000:]


def _checks_for(case: schemathesis.Case) -> list[Any]:
    """All checks, less "invalid input must get a 4xx" where the API documents otherwise:
    an event batch answers 200 and rejects bad events one by one (one bad event never
    sinks its batch), and a CSV body is text whatever bytes it holds, so a schema for it
    cannot say what invalid is (its rows are reported one by one too)."""
    per_item = case.path == "/v1/events" and case.method == "POST"
    csv_body = (case.media_type or "").startswith("text/csv")
    if per_item or csv_body:
        return [c for c in CHECKS if c is not checks.negative_data_rejection]
    return CHECKS


def _fuzz_operation(
    operation: Any, mode: GenerationMode, url: str, headers: dict[str, str]
) -> str | None:
    """Run one operation's bounded, seeded cases; the first failure's summary, or None."""
    failing: list[str] = []  # how to reproduce each failing case

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        phases=[Phase.explicit, Phase.generate],
    )
    def run(case: schemathesis.Case) -> None:
        # Credentials made up from the security schemes only ever reach the auth gate;
        # the route x role test covers that, so here every request is the admin's.
        for name in ("X-API-Key", "Authorization"):
            (case.headers or {}).pop(name, None)
        sent = {} if case.path == "/v1/auth/token" else headers
        try:
            case.call_and_validate(base_url=url, headers=sent, checks=_checks_for(case))
        except BaseException:
            failing.append(case.as_curl_command(headers=sent))
            raise

    try:
        run()
    except Unsatisfiable:  # no invalid request can be built (no parameters): nothing to try
        return None
    except (Exception, BaseExceptionGroup) as exc:  # failed checks, named by operation
        found = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
        text = "\n".join(_summary(e) for e in found)
        reproduce = f"\n  {failing[-1][:600]}" if failing else ""
        return f"{operation.label} [{mode.value}]:\n{text}{reproduce}"
    return None


def _summary(exc: BaseException) -> str:
    """A failure's title, its first explanatory line and the curl line that reproduces it."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    curl = [line for line in lines if line.startswith("curl ")]
    status = [line for line in lines if line.startswith("[") and "]" in line[:6]]
    return "  " + " | ".join([*lines[:2], *status[:1], *curl[:1]])[:900]


def test_no_server_errors_or_schema_violations(fuzz_target: tuple[str, dict[str, str]]) -> None:
    url, headers = fuzz_target
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _fuzz_operation(operation, mode, url, headers)
            if failure is not None:
                failures.append(failure)
    assert operations >= 20  # the schema really was read
    assert not failures, f"{len(failures)} failing operations:\n\n" + "\n\n".join(failures)
