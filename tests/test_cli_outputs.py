"""Output paths that cannot be written, files that are not what an option wants, numbers
too big for the database: one line on stderr and exit 2, never a traceback (a new user's
walk through every command found each of these as a traceback).

"Unwritable" here is a path under a regular file: a read-only folder is still writable
for root, which the tests may run as.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.paths import unwritable
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

runner = CliRunner()


def _said(result: Any) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return " ".join(result.output.split())


@pytest.fixture
def blocker(tmp_path: Path) -> Path:
    """A regular file: nothing can be written under it."""
    path = tmp_path / "afile"
    path.write_text("not a folder\n")
    return path


def test_unwritable_says_why(tmp_path: Path, blocker: Path) -> None:
    assert unwritable("--out", tmp_path / "new.json") is None
    assert unwritable("--out", blocker) is None  # an existing file is replaced
    assert unwritable("--dir", tmp_path / "a" / "b", folder=True) is None  # created
    assert unwritable("--out", tmp_path) == f"--out {tmp_path}: is a folder"
    assert unwritable("--dir", blocker, folder=True) == f"--dir {blocker}: is a file, not a folder"
    assert (
        unwritable("--out", blocker / "x")
        == f"--out {blocker / 'x'}: {blocker} is a file, not a folder"
    )
    under = blocker / "x" / "y"
    assert (
        unwritable("--dir", under, folder=True)
        == f"--dir {under}: {blocker} is a file, not a folder"
    )
    missing = tmp_path / "nowhere" / "x.json"
    assert (
        unwritable("--out", missing) == f"--out {missing}: folder {missing.parent} does not exist"
    )


def test_export_to_dir_under_a_file_is_refused_first(db_url: str, blocker: Path) -> None:
    target = blocker / "bi"
    result = runner.invoke(app, ["export", "--store", "cafe-01", "--from", "2026-11-02",
                                 "--to", "2026-11-02", "--to-dir", str(target),
                                 "--database-url", db_url])  # fmt: skip
    assert result.exit_code == 2
    assert f"--to-dir {target}: {blocker} is a file, not a folder" in _said(result)


def test_ingest_errors_out_under_a_file_is_refused_before_the_load(
    db_url: str, tmp_path: Path, blocker: Path, raw_event: Any
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(raw_event()) + "\nnot json\n")
    result = runner.invoke(app, ["ingest", str(events), "--database-url", db_url,
                                 "--errors-out", str(blocker / "errors.jsonl")])  # fmt: skip
    assert result.exit_code == 2
    assert f"--errors-out {blocker / 'errors.jsonl'}: {blocker} is a file" in _said(result)
    assert EventLog(create_engine(db_url)).head() == 0  # nothing loaded


def test_ingest_errors_out_failing_at_write_time_is_one_line(
    db_url: str, tmp_path: Path, blocker: Path, raw_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check before the load can miss (a disk filling up meanwhile): the write
    still ends in one line, after the load it did."""
    monkeypatch.setattr("storelens.cli_ingest.unwritable", lambda *a, **k: None)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(raw_event()) + "\nnot json\n")
    result = runner.invoke(app, ["ingest", str(events), "--database-url", db_url,
                                 "--errors-out", str(blocker / "errors.jsonl")])  # fmt: skip
    assert result.exit_code == 2
    assert f"--errors-out {blocker / 'errors.jsonl'}: cannot write" in _said(result)
    assert EventLog(create_engine(db_url)).head() == 1


def test_privacy_export_out_under_a_file_is_refused(db_url: str, blocker: Path) -> None:
    result = runner.invoke(app, ["privacy", "export", "L-1", "--out", str(blocker / "ada.json"),
                                 "--database-url", db_url])  # fmt: skip
    assert result.exit_code == 2
    assert f"--out {blocker / 'ada.json'}: {blocker} is a file, not a folder" in _said(result)


def test_vision_eval_json_under_a_file_is_refused_before_scoring(blocker: Path) -> None:
    result = runner.invoke(app, ["vision", "eval", "--truth", "nowhere", "--events", "e.jsonl",
                                 "--json", str(blocker / "score.json")])  # fmt: skip
    assert result.exit_code == 2
    assert f"--json {blocker / 'score.json'}: {blocker} is a file" in _said(result)


def test_demo_dir_that_is_a_file_is_refused(blocker: Path) -> None:
    result = runner.invoke(app, ["demo", "--dir", str(blocker), "--no-serve"])
    assert result.exit_code == 2
    assert f"--dir {blocker}: is a file, not a folder" in _said(result)


def test_edge_status_on_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text('{"id": "not an outbox"}\n' * 20)
    before = log.read_bytes()
    result = runner.invoke(app, ["edge", "status", "--outbox", str(log)])
    assert result.exit_code == 2
    assert f"{log} is not an edge outbox file" in _said(result)
    assert log.read_bytes() == before


def test_edge_status_leaves_an_empty_file_empty(tmp_path: Path) -> None:
    """It created the outbox tables in any empty file it was pointed at."""
    empty = tmp_path / "empty.db"
    empty.touch()
    result = runner.invoke(app, ["edge", "status", "--outbox", str(empty)])
    assert result.exit_code == 2
    assert f"{empty} is not an edge outbox file" in _said(result)
    assert empty.stat().st_size == 0


def test_edge_status_reads_a_real_outbox(tmp_path: Path) -> None:
    from storelens.ingest.outbox import Outbox

    path = tmp_path / "outbox.db"
    Outbox(path).close()
    result = runner.invoke(app, ["edge", "status", "--outbox", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["pending"] == 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["keys", "revoke", "99999999999999999999"], "2147483647"),
        (["retention", "--days", "1000000"], "36500"),
    ],
)
def test_numbers_too_big_for_the_database_are_usage_errors(
    args: list[str], said: str, db_url: str
) -> None:
    assert runner.invoke(app, ["init", "--database-url", db_url]).exit_code == 0
    result = runner.invoke(app, [*args, "--database-url", db_url])
    assert result.exit_code == 2
    assert said in _said(result)
