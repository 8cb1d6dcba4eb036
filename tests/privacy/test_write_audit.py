"""Every way events come in names the people they are about, on SQLite and PostgreSQL.

A review found that only MQTT writes named customers in ``audit_subjects``: an order
posted over HTTP, a CRM file imported over HTTP or from the command line, or an event
file loaded with ``storelens ingest`` left a row that Ada's access request could not
find, so "who wrote about me?" had no answer for most writes. Each channel now builds
its row from one tally (:mod:`storelens.privacy.writes`), in the transaction that
stores the events (:mod:`storelens.ingest.write_audit`): a later review found that a
row written after the commit could be lost to a crash or a Ctrl-C between the two.
(MQTT's own checks are in tests/ingest/test_mqtt_audit.py.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, insert, select
from typer.testing import CliRunner

from storelens.cli import app
from storelens.ingest.batch import ingest_numbered
from storelens.ingest.files import Unreadable
from storelens.ingest.write_audit import audited
from storelens.privacy import audit
from storelens.privacy.subject import person_ids
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import audit_log, audit_subjects, customers
from storelens.storage.tables import events as event_rows

Login = Callable[[str], dict[str, str]]
DeviceKey = Callable[..., dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]

ADA = {"source_record_id": "c-1", "first_name": "Ada", "last_name": "Lovelace",
       "email": "ada@example.com", "loyalty_id": "L-1"}  # fmt: skip
GRACE = {"source_record_id": "c-2", "first_name": "Grace", "email": "grace@example.com"}


def _rows(engine: Engine, action: str) -> list[Any]:
    with engine.connect() as conn:
        stmt = select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
        return list(conn.execute(stmt))


def _named(engine: Engine, audit_id: int) -> list[str]:
    with engine.connect() as conn:
        stmt = select(audit_subjects.c.customer_id).where(audit_subjects.c.audit_id == audit_id)
        return sorted(conn.execute(stmt).scalars())


def _import(client: TestClient, headers: dict[str, str], rows: list[dict[str, Any]]) -> None:
    r = client.post("/v1/customers/import?source=crm", json=rows, headers=headers)
    assert r.status_code == 200 and r.json()["rejected"] == 0, r.text


def test_an_http_import_names_the_imported_customers_and_never_their_values(
    client: TestClient, login: Login, engine: Engine
) -> None:
    analyst = login("analyst")
    _import(client, analyst, [ADA, GRACE])
    _import(client, analyst, [ADA])  # the same record again: stored nothing, names nobody
    first, again = _rows(engine, "customers.import")
    with engine.connect() as conn:
        ids = sorted(conn.execute(select(customers.c.customer_id)).scalars())
    # Written with the records, before they were resolved: named by their record keys,
    # which are ids of the people the records resolved to
    assert _named(engine, first.id) == ["crm:c-1", "crm:c-2"]
    assert ids == ["L-1", "crm:c-2"]
    assert first.detail["records"] == ["crm:c-1", "crm:c-2"]
    assert first.detail["personal"] == {"customer.upserted": 2}
    assert (first.detail["source"], first.detail["customers"], first.detail["accepted"]) == (
        "crm",
        2,
        2,
    )
    listed = {a["id"] for a in client.get("/v1/customers/L-1/export", headers=login("admin"))
              .json()["stores"]["audit"]}  # fmt: skip
    assert first.id in listed and again.id not in listed
    assert (again.detail["accepted"], again.detail["duplicates"], _named(engine, again.id)) == (
        0,
        1,
        [],
    )
    assert "example.com" not in str(first._mapping) and "Lovelace" not in str(first._mapping)


def test_an_http_event_write_is_in_the_customers_export_and_anonymous_after_erasure(
    client: TestClient,
    login: Login,
    device_key: DeviceKey,
    engine: Engine,
    raw_event: RawEvent,
    paid_order: RawEvent,
) -> None:
    admin = login("admin")
    _import(client, admin, [ADA])
    key = device_key()
    ada_order, other = paid_order("L-1", "o-1"), paid_order("L-2", "o-2")
    shot = raw_event("sensor.espresso_shot")
    r = client.post("/v1/events", json=[ada_order, other, ada_order, shot], headers=key)
    assert (r.json()["accepted"], r.json()["duplicates"]) == (3, 1), r.text
    resend = client.post("/v1/events", json=[ada_order], headers=key)
    assert resend.json()["duplicates"] == 1
    write, again = _rows(engine, "events.write")

    exported = client.get("/v1/customers/L-1/export", headers=admin)
    assert exported.status_code == 200, exported.text
    ada_id = exported.json()["customer_id"]
    assert _named(engine, write.id) == sorted([ada_id, "L-2"])  # Ada once, by her id
    assert write.detail["customers"] == 2
    assert _named(engine, again.id) == []  # the resend wrote nothing about anyone
    listed = {a["id"] for a in exported.json()["stores"]["audit"]}
    assert write.id in listed and again.id not in listed
    her_events = exported.json()["stores"]["event_log"]
    assert her_events and all("sent_by" not in e for e in her_events)  # staff stay out of it

    erased = client.request(
        "DELETE", "/v1/customers/L-1", headers=admin, json={"reason": "GDPR art. 17, #12"}
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["scan"]["traces"] == 0, erased.json()["scan"]["found"]
    assert _named(engine, write.id) == sorted([erased.json()["pseudonym"], "L-2"])


def test_a_rejected_or_refused_event_names_nobody(
    client: TestClient,
    device_key: DeviceKey,
    engine: Engine,
    raw_event: RawEvent,
    paid_order: RawEvent,
) -> None:
    narrow = device_key(event_types=None)  # may not send customer records
    bad = paid_order("L-3", "o-3")
    bad["payload"]["lines"][0]["qty"] = 0
    record = raw_event(
        "customer.upserted", payload={"source_system": "crm", "source_record_id": "c-9"}
    )
    r = client.post("/v1/events", json=[bad, record], headers=narrow)
    assert (r.json()["accepted"], r.json()["rejected"]) == (0, 2), r.text
    [row] = _rows(engine, "events.write")  # nothing personal was stored
    assert (row.detail["rejected"], row.detail["forbidden"], row.detail["customers"]) == (2, 1, 0)
    assert _named(engine, row.id) == []


def test_command_line_loads_name_the_operator_and_the_customers(
    db_url: str,
    engine: Engine,
    tmp_path: Path,
    paid_order: RawEvent,
) -> None:
    runner = CliRunner()
    crm = tmp_path / "crm.csv"
    crm.write_text("source_record_id,first_name,email,loyalty_id\nc-1,Ada,ada@example.com,L-1\n")
    done = runner.invoke(app, ["cdp", "import", "crm", str(crm), "--database-url", db_url])
    assert done.exit_code == 0, done.output
    [imported] = _rows(engine, "customers.import")
    assert imported.actor.startswith("cli:") and imported.actor_kind == "system"
    assert imported.detail["records"] == ["crm:c-1"] and imported.detail["customers"] == 1
    assert _named(engine, imported.id) == ["crm:c-1"]  # her record's key
    with engine.connect() as conn:
        [ada_id] = conn.execute(select(customers.c.customer_id)).scalars().all()
        assert set(_named(engine, imported.id)) <= set(person_ids(conn, ada_id))

    events = tmp_path / "events.jsonl"
    lines = [paid_order("L-1", "o-1"), paid_order(None, "o-2")]
    events.write_text("".join(json.dumps(e) + "\n" for e in lines))
    loaded = runner.invoke(app, ["ingest", str(events), "--database-url", db_url])
    assert loaded.exit_code == 0, loaded.output
    [write] = _rows(engine, "events.write")
    assert write.actor == imported.actor
    assert (write.detail["channel"], write.detail["file"], write.detail["accepted"]) == (
        "file",
        "events.jsonl",
        2,
    )
    assert _named(engine, write.id) == [ada_id]
    with engine.connect() as conn:  # the events and the record say who loaded them
        senders = set(conn.execute(select(event_rows.c.sent_by)).scalars())
    assert senders == {imported.actor}
    again = runner.invoke(app, ["ingest", str(events), "--database-url", db_url])
    assert again.exit_code == 0, again.output
    assert _named(engine, _rows(engine, "events.write")[-1].id) == []


def test_only_a_paid_order_carries_a_customer_id_as_the_write_path_assumes() -> None:
    """``Writes.stored_events`` reads ``customer_id`` off ``OrderPaid`` alone (dumping every
    payload cost more than the audit row); a new payload with that field must be added
    there too, or HTTP writes would not name the person while MQTT writes would."""
    from pydantic import BaseModel

    from storelens.core import payloads

    models = [
        m
        for m in vars(payloads).values()
        if isinstance(m, type) and issubclass(m, BaseModel) and "customer_id" in m.model_fields
    ]
    assert models == [payloads.OrderPaid]


class AuditDown(RuntimeError):
    """The audit write failing (a full disk, a lost connection) after the events' insert."""


def _fail_audit(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> int:
        raise AuditDown("audit_log is unwritable")

    monkeypatch.setattr(audit, "record", fail)


def _event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(event_rows)).scalar_one())


def test_events_are_never_stored_without_their_audit_row(
    client: TestClient,
    device_key: DeviceKey,
    engine: Engine,
    paid_order: RawEvent,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The row used to be written after the commit: a failure there kept the events."""
    key = device_key()
    batch = [paid_order("L-1", "o-1"), paid_order("L-2", "o-2")]
    server = TestClient(client.app, raise_server_exceptions=False)
    with monkeypatch.context() as patched:
        _fail_audit(patched)
        failed = server.post("/v1/events", json=batch, headers=key)
    assert failed.status_code == 500 and "error_id" in failed.text, failed.text
    assert _event_count(engine) == 0 and _rows(engine, "events.write") == []
    sent = server.post("/v1/events", json=batch, headers=key)  # the device's retry
    assert sent.json()["accepted"] == 2, sent.text
    [row] = _rows(engine, "events.write")
    assert (row.detail["accepted"], _named(engine, row.id)) == (2, ["L-1", "L-2"])


def test_a_file_load_stopped_halfway_has_a_row_for_each_batch_it_stored(
    engine: Engine, paid_order: RawEvent
) -> None:
    """One row per file was written at the end: a load stopped halfway had stored
    thousands of events and left no row. Rows are now per batch, each committed with it."""
    lines: list[tuple[int, Any]] = [(n, paid_order(f"L-{n}", f"o-{n}")) for n in range(1, 6)]
    lines.insert(1, (99, Unreadable("not JSON")))  # counted in the batch it falls in
    done: list[int] = []

    def stop_after_two(n: int) -> None:
        done.append(n)
        if len(done) == 2:
            raise KeyboardInterrupt  # the operator's Ctrl-C between batches

    then = audited(audit.operator(), None, channel="file", file="events.jsonl")
    with pytest.raises(KeyboardInterrupt):
        ingest_numbered(EventLog(engine), lines, batch_size=2, on_batch=stop_after_two, then=then)
    rows = _rows(engine, "events.write")
    assert [(r.detail["accepted"], r.detail["rejected"]) for r in rows] == [(1, 1), (2, 0)]
    assert _event_count(engine) == 3 == sum(r.detail["accepted"] for r in rows)
    assert [_named(engine, r.id) for r in rows] == [["L-1"], ["L-2", "L-3"]]


def test_an_import_that_stores_nothing_still_leaves_its_row(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    crm = tmp_path / "crm.csv"
    crm.write_text("source_record_id,first_name\n,Ada\n,Grace\n")  # no record ids
    done = CliRunner().invoke(app, ["cdp", "import", "crm", str(crm), "--database-url", db_url])
    assert done.exit_code == 1, done.output  # rows were rejected
    [row] = _rows(engine, "customers.import")
    assert (row.detail["accepted"], row.detail["rejected"], row.detail["customers"]) == (0, 2, 0)


def test_a_reissued_loyalty_card_neither_outlives_erasure_nor_moves_a_row(
    client: TestClient, login: Login, engine: Engine
) -> None:
    """Import rows named the loyalty id as written (the record was not resolved yet).
    A review found that Ada's old card number stayed in the trail after her erasure, and
    that Bob, given that card later, found Ada's import in his own access export."""
    admin = login("admin")
    ada = {"source_record_id": "c-1", "first_name": "Ada", "email": "ada@example.com"}
    for card in (None, "L-1", "L-9"):  # joined, got a card, lost it and got a new one
        _import(client, admin, [{**ada, "loyalty_id": card} if card else ada])
    _import(client, admin, [{"source_record_id": "c-2", "first_name": "Bob", "loyalty_id": "L-1"}])
    *adas, bobs = _rows(engine, "customers.import")
    bob = client.get("/v1/customers/crm:c-2/export", headers=admin).json()
    assert [a["id"] for a in bob["stores"]["audit"] if a["action"] == "customers.import"] == [
        bobs.id
    ]
    erased = client.request(
        "DELETE", "/v1/customers/crm:c-1", headers=admin, json={"reason": "GDPR art. 17, #13"}
    )
    assert erased.status_code == 200, erased.text
    for row in adas:
        assert _named(engine, row.id) == [erased.json()["pseudonym"]]


def test_a_large_http_import_commits_and_audits_a_thousand_records_at_a_time(
    client: TestClient, login: Login, engine: Engine
) -> None:
    """One upload was one transaction: the append lock, and every till and MQTT batch
    behind it, waited for 100,000 records and their audit work."""
    rows: list[dict[str, Any]] = [{"source_record_id": f"c-{i}"} for i in range(1500)]
    rows[1200] = {"first_name": "no record id"}
    r = client.post("/v1/customers/import?source=crm", json=rows, headers=login("analyst"))
    assert r.status_code == 200, r.text
    assert (r.json()["accepted"], r.json()["rejected"]) == (1499, 1)
    assert [e["index"] for e in r.json()["errors"]] == [1200]  # its place in the upload
    parts = _rows(engine, "customers.import")
    assert [(p.detail["accepted"], p.detail["rejected"]) for p in parts] == [(1000, 0), (499, 1)]
    assert _event_count(engine) == 1499


def test_loading_an_empty_file_is_on_record_too(
    db_url: str, engine: Engine, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    done = CliRunner().invoke(app, ["ingest", str(empty), "--database-url", db_url])
    assert done.exit_code == 0, done.output
    [row] = _rows(engine, "events.write")
    assert (row.detail["file"], row.detail["accepted"], row.detail["rejected"]) == (
        "empty.jsonl",
        0,
        0,
    )


def test_an_access_export_lists_only_her_own_records_of_a_shared_batch(
    client: TestClient, login: Login, engine: Engine
) -> None:
    """One batch wrote Ada's and Grace's records: its row lists both, and Ada's export
    showed Grace's record id (a new user found 100 other customers' ids in one)."""
    admin = login("admin")
    _import(client, admin, [ADA, GRACE])
    [row] = _rows(engine, "customers.import")
    assert sorted(row.detail["records"]) == ["crm:c-1", "crm:c-2"]
    exported = client.get("/v1/customers/crm:c-1/export", headers=admin).json()
    [mine] = [a for a in exported["stores"]["audit"] if a["action"] == "customers.import"]
    assert mine["detail"]["records"] == ["crm:c-1"]
    assert mine["detail"]["other_records"] == 1
    assert "c-2" not in str(mine)


def test_an_unmerge_row_shows_each_side_only_its_own_id(engine: Engine) -> None:
    """The unmerge row names both people and an operator's note about them; each one's
    export showed the other's id and the note (a review). The kept id is one no generated
    id can contain: a short one like "C1" turned up inside the new random id."""
    from storelens.cdp.unmerge import unmerge
    from storelens.privacy.erasure import export_customer
    from storelens.storage.tables import customers

    with engine.begin() as conn:
        conn.execute(insert(customers), [
            {"source_system": "crm", "source_record_id": "1", "customer_id": "paula-weber-1",
             "first_name": "Paula", "last_name": "Weber", "loyalty_id": "L1"},
            {"source_system": "crm", "source_record_id": "2", "customer_id": "paula-weber-1",
             "first_name": "Paula", "last_name": "Weber", "loyalty_id": "L2"},
        ])  # fmt: skip
    new_id = unmerge(
        engine, "paula-weber-1", ["crm:2"], audit.SYSTEM, "the other Paula, Koeln, b. 1961"
    ).new_customer_id
    for me, other in (("paula-weber-1", new_id), (new_id, "paula-weber-1")):
        out = export_customer(engine, me, audit.SYSTEM)
        [row] = [r for r in out["stores"]["audit"] if r["action"] == "customer.unmerge"]
        assert other not in str(row) and "Koeln" not in str(row)
        assert me in (row["resource_id"], row["detail"]["new_customer_id"])
