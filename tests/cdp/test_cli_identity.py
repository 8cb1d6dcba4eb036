"""``storelens cdp resolve|profile|unmerge|eval`` end to end on a real database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from storelens.cdp.cli import cdp_app
from storelens.cdp.cli_identity import read_true_pairs
from storelens.cdp.records import ImportIds, customer_events
from storelens.ingest.batch import ingest_items
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog

IDS = ImportIds("test-secret-for-import-ids")  # the installation's key, in tests

ROWS = {
    "crm": [
        {"source_record_id": "1", "first_name": "Ada", "last_name": "Lovelace",
         "email": "ada@example.org", "loyalty_id": "L-1"},
        {"source_record_id": "2", "first_name": "Alan", "last_name": "Turing",
         "phone": "+4930901820"},
    ],
    "webshop": [
        {"source_record_id": "w1", "first_name": "Ada", "last_name": "Lovelace",
         "email": "ADA@example.org"},
        {"source_record_id": "w2", "first_name": "Grace", "last_name": "Hopper"},
    ],
}  # fmt: skip


def _load(engine: Engine) -> None:
    log = EventLog(engine)
    for source, rows in ROWS.items():
        ingest_items(log, customer_events(source, rows, IDS))
    run_projections(log)


def test_resolve_profile_unmerge_and_eval(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _load(engine)
    runner = CliRunner()
    db = ["--database-url", db_url]
    result = runner.invoke(cdp_app, ["resolve", "--full", *db, "--json"])
    assert result.exit_code == 0, result.output
    run = json.loads(result.stdout)
    assert (run["records"], run["customers"], run["model"]) == (4, 3, "deterministic")

    shown = runner.invoke(cdp_app, ["profile", "L-1", *db])
    assert shown.exit_code == 0, shown.output
    assert "golden record" in shown.output and "crm:1" in shown.output
    profile = json.loads(runner.invoke(cdp_app, ["profile", "L-1", *db, "--json"]).stdout)
    assert len(profile["records"]) == 2 and profile["golden"]["first_name"]["value"] == "Ada"
    assert runner.invoke(cdp_app, ["profile", "nobody", *db]).exit_code == 2  # names nobody

    truth = tmp_path / "truth.csv"
    truth.write_text("record_a,record_b\ncrm:1,webshop:w1\ncrm:2,webshop:w2\n")
    scored = json.loads(
        runner.invoke(cdp_app, ["eval", "--pairs", str(truth), *db, "--json"]).stdout
    )
    assert (scored["precision"], scored["recall"]) == (1.0, 0.5)
    assert scored["true_positives"] == 1 and scored["false_negatives"] == 1

    split = runner.invoke(cdp_app, ["unmerge", "L-1", "webshop:w1", "--reason", "test", *db])
    assert split.exit_code == 0 and "split off L-1" in split.output
    again = json.loads(runner.invoke(cdp_app, ["resolve", "--full", *db, "--json"]).stdout)
    assert again["customers"] == 4  # the unmerge held
    after = json.loads(
        runner.invoke(cdp_app, ["eval", "--pairs", str(truth), *db, "--json"]).stdout
    )
    assert after["true_positives"] == 0

    incremental = json.loads(
        runner.invoke(cdp_app, ["resolve", "--incremental", *db, "--json"]).stdout
    )
    assert incremental["new_records"] == 0
    bad = runner.invoke(cdp_app, ["unmerge", "L-1", "crm:1", *db])
    assert bad.exit_code == 2 and "every record" in bad.output


def test_true_pairs_file_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,b\ncrm:1,webshop:2\ncrm:1,webshop:2\nwebshop:3,crm:4\n")
    assert read_true_pairs(path) == {("crm:1", "webshop:2"), ("crm:4", "webshop:3")}
    path.write_text("crm:1\n")
    with pytest.raises(ValueError, match="expected two record keys"):
        read_true_pairs(path)
    path.write_text("crm:1,42\n")
    with pytest.raises(ValueError, match="source:record"):
        read_true_pairs(path)
    path.write_text("a,b\n")
    with pytest.raises(ValueError, match="no pairs"):
        read_true_pairs(path)


@pytest.mark.parametrize(
    ("body", "message"), [(b"[1]", "not a JSON object"), (b"{x", "not valid JSON")]
)
def test_eval_truth_file_that_is_not_a_truth_object_is_exit_2(
    tmp_path: Path, body: bytes, message: str
) -> None:
    """Checked before the database is opened; the message names the file."""
    truth = tmp_path / "truth.json"
    truth.write_bytes(body)
    result = CliRunner().invoke(cdp_app, ["eval", "--truth", str(truth)])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"{truth}: {message}" in text


def test_resolve_keeps_splink_training_notes_in_the_debug_log(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Splink's "WARNING: Level … not observed in dataset, unable to train m value" lines
    came out of its own stderr handler between storelens's lines; they are debug log."""
    import logging

    from storelens.cdp.synthetic import generate_customers

    frame, _ = generate_customers(600, seed=11)  # enough records for Splink to train
    export = tmp_path / "crm.csv"
    frame.drop(columns="source_dataset").rename(columns={"unique_id": "source_record_id"}).to_csv(
        export, index=False
    )
    db = ["--database-url", db_url]
    runner = CliRunner()
    imported = runner.invoke(cdp_app, ["import", "crm", str(export), *db, "--json"])
    assert imported.exit_code == 0, imported.output
    caplog.set_level(logging.DEBUG, logger="storelens.cdp")
    result = runner.invoke(cdp_app, ["resolve", "--full", *db])
    assert result.exit_code == 0, result.output
    assert "identity resolution (full, splink)" in result.output
    assert "unable to train" not in result.output and "WARNING" not in result.output
    ours = [r for r in caplog.records if r.name == "storelens.cdp.identity_pairs"]
    notes = [r for r in ours if "unable to train m value" in r.getMessage()]
    assert notes and {r.levelno for r in notes} == {logging.DEBUG}
    splink = logging.getLogger("splink")  # pytest hangs its own capture handlers there too
    assert not [h for h in splink.handlers if type(h) is logging.StreamHandler]  # Splink's
    splink.error("a real error")  # still reaches the user's log at its level
    assert ("storelens.cdp.identity_pairs", logging.ERROR) in {
        (r.name, r.levelno) for r in caplog.records if "a real error" in r.getMessage()
    }
