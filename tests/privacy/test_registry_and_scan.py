"""The registry covers every table holding personal data; matching is whole-token; the CLI."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from storelens.cdp.records import ImportIds, customer_events
from storelens.cli import app
from storelens.core.errors import NotFound
from storelens.core.events import make_event
from storelens.ingest.batch import ingest_items
from storelens.privacy.audit import SYSTEM
from storelens.privacy.erasure import erase_customer, export_customer
from storelens.privacy.registry import PersonalStore, Subject, register, registered_stores
from storelens.privacy.scan import scan_subject
from storelens.privacy.subject import resolve_subject
from storelens.privacy.traces import Matcher
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import events, metadata, orders

IDS = ImportIds("test-secret-for-import-ids")  # the installation's key, in tests

PERSONAL_TABLES = {
    "customers", "orders", "order_lines", "consent_records", "events", "audit_log",
    "audit_subjects",
    "dead_letters", "customer_aliases", "identity_changes", "identity_decisions",
    "identity_runs", "identity_models", "face_consents", "face_embeddings",
    "customer_features", "customer_scores",
    "segment_members",
}  # fmt: skip
"""Tables that hold data about a customer; a new one must be added here and registered."""

ADA = Subject(
    customer_id="L-1",
    requested_id="L-1",
    ids=("L-1", "crm:c-1"),
    emails=("ada@example.com",),
    phones=("+4930901820",),
    names=(("Ada", "Lovelace"),),
)


@pytest.fixture
def stray_table(engine: Engine) -> Iterator[str]:
    """A table no store registers (an operator's ad-hoc export), dropped afterwards: the
    PostgreSQL database outlives the test and is only truncated table by known table."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE mailing_export (line TEXT)"))
    yield "mailing_export"
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE mailing_export"))


def test_every_table_with_personal_data_is_registered() -> None:
    covered = {t for store in registered_stores() for t in store.tables}
    assert covered >= PERSONAL_TABLES
    assert covered <= set(metadata.tables)  # no store claims a table that does not exist


def test_a_second_store_of_the_same_name_is_refused() -> None:
    existing = next(s for s in registered_stores() if s.name == "orders")
    assert register(existing) is existing  # re-importing a module registers the same store
    with pytest.raises(ValueError, match="already registered"):
        register(PersonalStore("orders", lambda _: [], lambda _: 0))


def test_matching_is_whole_token_and_names_need_both_parts() -> None:
    m = Matcher(ADA)
    assert m.kinds_in('{"customer_id": "L-1"}') == {"id"}
    assert m.kinds_in('{"customer_id": "L-10"}') == set()  # another customer
    assert m.kinds_in("mail from ADA@Example.com") == {"email"}
    assert m.kinds_in("xada@example.com") == set()
    assert m.kinds_in("Ada Smith bought a latte") == set()
    assert m.kinds_in("ada lovelace bought a latte") == {"name"}
    assert m.kinds_in("call +4930901820 or +49309018201") == {"phone"}
    assert m.redact_text("Ada Lovelace <ada@example.com> L-1, L-10", "X") == "X X <X> X, L-10"
    assert m.redact({"who": ["Ada", "Lovelace"], "q": "Ada"}, "X") == {"who": ["X", "X"], "q": "X"}
    assert m.redact({"q": "Ada", "n": 3}, "X") == {"q": "Ada", "n": 3}


def _seed(engine: Engine, log: Path) -> None:
    rows = [
        {"source_record_id": "c-1", "first_name": "Ada", "last_name": "Lovelace",
         "email": "ada@example.com", "loyalty_id": "L-1"},
        {"source_record_id": "c-2", "first_name": "Grace", "last_name": "Hopper",
         "email": "grace@example.com", "loyalty_id": "L-2"},
    ]  # fmt: skip
    event_log = EventLog(engine)
    assert ingest_items(event_log, customer_events("crm", rows, IDS)).accepted
    run_projections(event_log)
    log.write_text("import: ada@example.com accepted\nimport: grace@example.com accepted\n")


def test_scan_sees_what_erasure_did_not_reach(
    engine: Engine, tmp_path: Path, stray_table: str
) -> None:
    log = tmp_path / "server.log"
    _seed(engine, log)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO mailing_export VALUES ('Lovelace, Ada; L-1')"))
        subject = resolve_subject(conn, "L-1")
    assert subject is not None
    found = {(t.location, t.column, t.kind) for t in scan_subject(engine, subject, (log,)).traces}
    assert {
        ("store:source_records", None, "record"),
        ("table:customers", "email", "email"),
        ("table:mailing_export", "line", "id"),
        ("table:mailing_export", "line", "name"),
        (f"file:{log}", None, "email"),
    } <= found
    assert not any("grace" in str(f).lower() for f in found)


def test_cli_export_and_erase(engine: Engine, db_url: str, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    log = tmp_path / "server.log"
    _seed(engine, log)
    monkeypatch.setenv("STORELENS_PRIVACY_LOG_PATHS", json.dumps([str(tmp_path / "*.log")]))
    runner = CliRunner()
    out = tmp_path / "ada.json"
    exported = runner.invoke(app, ["privacy", "export", "L-1", "--out", str(out),
                                   "--database-url", db_url])  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = json.loads(out.read_text())
    assert [r["email"] for r in data["stores"]["source_records"]] == ["ada@example.com"]
    assert len(data["stores"]["log_files"]) == 1

    no_reason = runner.invoke(app, ["privacy", "erase", "L-1", "--database-url", db_url])
    assert no_reason.exit_code == 2  # --reason is required
    erased = runner.invoke(app, ["privacy", "erase", "L-1", "--reason", "request 42",
                                 "--database-url", db_url])  # fmt: skip
    assert erased.exit_code == 0, erased.output
    assert "0 traces" in erased.output
    assert "ada@example.com" not in log.read_text() and "grace@example.com" in log.read_text()
    again = runner.invoke(app, ["privacy", "erase", "L-1", "--reason", "request 42",
                                "--database-url", db_url])  # fmt: skip
    assert again.exit_code == 2 and "no customer" in again.output  # names nobody now
    grace = runner.invoke(app, ["privacy", "export", "L-2", "--database-url", db_url])
    assert json.loads(grace.stdout)["stores"]["source_records"][0]["first_name"] == "Grace"


def test_cli_erase_exits_1_when_traces_remain(
    engine: Engine, db_url: str, tmp_path: Path, stray_table: str
) -> None:
    _seed(engine, tmp_path / "server.log")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO mailing_export VALUES ('ada@example.com')"))
    result = CliRunner().invoke(app, ["privacy", "erase", "L-1", "--reason", "request 42",
                                      "--database-url", db_url])  # fmt: skip
    assert result.exit_code == 1
    assert "table:mailing_export.line: 1 email" in result.output
    assert "ada@example.com" not in result.output  # the report names kinds, never values


def _seed_with_namesake(engine: Engine, log: Path) -> None:
    """:func:`_seed`, and another Ada Lovelace (record c-3, card L-3, her own e-mail)."""
    _seed(engine, log)
    other = {"source_record_id": "c-3", "first_name": "Ada", "last_name": "Lovelace",
             "email": "ada.l@example.org", "loyalty_id": "L-3", "postcode": "99999"}  # fmt: skip
    event_log = EventLog(engine)
    assert ingest_items(event_log, customer_events("crm", [other], IDS)).accepted
    run_projections(event_log)


def test_cli_erase_tells_a_namesake_apart_from_a_trace(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    """Another customer also called Ada Lovelace was reported as a trace of the erased
    Ada (exit 1); it is still not erased, and now said to be someone else."""
    _seed_with_namesake(engine, tmp_path / "server.log")
    result = CliRunner().invoke(app, ["privacy", "erase", "L-1", "--reason", "request 42",
                                      "--database-url", db_url])  # fmt: skip
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "0 traces" in said
    assert [line for line in result.output.splitlines() if line.startswith("trace:")] == []
    assert ("not a trace: table:customers.*: 1 row(s) of another customer with the same "
            "name, not erased") in said  # fmt: skip
    with engine.connect() as conn:
        assert resolve_subject(conn, "L-3") is not None  # the namesake is kept
        # and so is her record in the event log, untouched (the erasure deleted it)
        kept = conn.execute(select(events.c.payload).where(events.c.type == "customer.upserted"))
        records = [p["source_record_id"] for p in kept.scalars()]
    assert sorted(records) == ["c-2", "c-3"]  # Grace and the other Ada; Ada (c-1) gone


def test_an_access_export_leaves_out_a_namesakes_record(engine: Engine, tmp_path: Path) -> None:
    """The export of one Ada listed the other Ada's customer record from the event log:
    matched by the name they share, and handed to the wrong person."""
    _seed_with_namesake(engine, tmp_path / "server.log")
    exported = export_customer(engine, "L-1", SYSTEM)
    assert "ada.l@example.org" not in str(exported["stores"]["event_log"])
    assert "c-3" not in str(exported["stores"]["event_log"])


def test_a_customer_known_only_from_orders_is_erased_too(engine: Engine) -> None:
    """A POS customer id with no source record yet: orders kept, pseudonymised; web gone."""
    event_log = EventLog(engine)
    line = {"product_id": "latte", "qty": 1, "unit_price": 3.0}
    paid = {"order_id": "o-9", "customer_id": "P-77", "lines": [line]}
    view = {"session_id": "s-9", "action": "page_view"}
    event_log.append(
        [
            make_event("pos.order_paid", paid, source="pos", store_id="cafe-01"),
            make_event("web.event", view, source="web", subject="P-77"),
            make_event("web.event", view, source="web", subject="P-778"),  # someone else
        ]
    )
    run_projections(event_log)
    erasure = erase_customer(engine, "P-77", SYSTEM, "request 7")
    assert erasure.scan.total == 0, erasure.scan.traces
    assert erasure.erased["orders"] == 1 and erasure.erased["event_log"] == 2
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.customer_id)).scalars().all() == [erasure.pseudonym]
        left = conn.execute(select(events.c.subject, events.c.payload).order_by(events.c.seq)).all()
    assert [(s, p.get("customer_id")) for s, p in left] == [
        (None, erasure.pseudonym),
        ("P-778", None),
    ]
    with pytest.raises(NotFound):
        erase_customer(engine, erasure.pseudonym, SYSTEM, "request 7")


def test_an_order_replayed_after_the_erasure_stays_pseudonymised(engine: Engine) -> None:
    """An edge box resending a paid order the erasure pseudonymised: the log's copy now
    differs, so it is an id conflict (not a duplicate), and still nothing is stored."""
    event_log = EventLog(engine)
    line = {"product_id": "latte", "qty": 1, "unit_price": 3.0}
    paid = make_event(
        "pos.order_paid",
        {"order_id": "o-9", "customer_id": "P-77", "lines": [line]},
        source="pos",
        store_id="cafe-01",
    )
    event_log.append([paid])
    run_projections(event_log)
    erasure = erase_customer(engine, "P-77", SYSTEM, "request 7")
    result = event_log.append([paid])
    assert (result.accepted, result.duplicates) == ([], [])
    assert [c.id for c in result.conflicts] == [paid.id]
    with engine.connect() as conn:
        payloads = conn.execute(select(events.c.payload)).scalars().all()
    assert [p["customer_id"] for p in payloads] == [erasure.pseudonym]
