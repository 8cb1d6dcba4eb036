"""Import event ids: a keyed hash no one outside the installation can compute.

They used to be ``uuid5(public namespace, record content)``: a device key holder who
could guess a record's content computed the id of a future import's event and stored
something else under it first; the import's record then came back as a "duplicate"
and was lost. Runs on SQLite and PostgreSQL where the database is involved.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine, func, select

from storelens.cdp.records import LEGACY_NAMESPACE, ImportIds, customer_events
from storelens.config import Settings
from storelens.ingest.batch import ingest_items
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import customers, events

RawEvent = Callable[..., dict[str, Any]]
Login = Callable[[str], dict[str, str]]
DeviceKey = Callable[..., dict[str, str]]

GRACE = {"source_record_id": "c-7", "first_name": "Grace", "email": "grace@example.com"}
IDS = ImportIds("test-secret-for-import-ids")


def _legacy_id(source_system: str, row: dict[str, Any]) -> uuid.UUID:
    """The id the old ``customer_events`` gave a row: computable by anyone."""
    payload = {k: v for k, v in row.items() if v not in (None, "")}
    payload["source_system"] = source_system
    content = "|".join(f"{k}={payload[k]}" for k in sorted(payload))
    return uuid.uuid5(LEGACY_NAMESPACE, content)


def _record(engine: Engine, record_id: str) -> dict[str, Any] | None:
    run_projections(EventLog(engine))
    with engine.connect() as conn:
        row = conn.execute(
            select(customers).where(
                customers.c.source_system == "crm", customers.c.source_record_id == record_id
            )
        ).one_or_none()
    return None if row is None else dict(row._mapping)


def _import(client: TestClient, headers: dict[str, str], rows: list[dict[str, Any]]) -> Any:
    r = client.post("/v1/customers/import?source=crm", json=rows, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_ids_are_keyed_stable_and_not_the_public_ones() -> None:
    [first] = customer_events("crm", [GRACE], IDS)
    [again] = customer_events("crm", [dict(GRACE)], ImportIds("test-secret-for-import-ids"))
    [elsewhere] = customer_events("crm", [GRACE], ImportIds("another installation's key"))
    assert first["id"] == again["id"]  # one installation: a re-import is a duplicate
    assert first["id"] != elsewhere["id"]
    assert first["id"] != str(_legacy_id("crm", GRACE))
    assert uuid.UUID(first["id"]).version == 8
    [changed] = customer_events("crm", [{**GRACE, "first_name": "Grace M."}], IDS)
    assert changed["id"] != first["id"]  # a changed record is a new event
    # The old "k=v|k=v" spelling let two different records share an id.
    [a] = customer_events("crm", [{"source_record_id": "1|city=X"}], IDS)
    [b] = customer_events("crm", [{"source_record_id": "1", "city": "X"}], IDS)
    assert a["id"] != b["id"]


def test_the_installation_key_comes_from_the_secret_key(settings: Settings) -> None:
    other = settings.model_copy(update={"secret_key": SecretStr("x" * 40)})
    [ours] = customer_events("crm", [GRACE], ImportIds.of(settings))
    [theirs] = customer_events("crm", [GRACE], ImportIds.of(other))
    assert ours["id"] != theirs["id"]
    assert "test" not in repr(ImportIds.of(settings))  # the key is not printed


def test_a_device_cannot_take_the_id_of_a_future_import(
    client: TestClient,
    engine: Engine,
    login: Login,
    device_key: DeviceKey,
    raw_event: RawEvent,
) -> None:
    """The old id of Grace's record is public arithmetic: a device stores a decoy under
    it before the CRM import. On the old code the import counted Grace as a duplicate
    and her record never reached the customers table."""
    decoy = raw_event(id=str(_legacy_id("crm", GRACE)))
    r = client.post("/v1/events", json=[decoy], headers=device_key()).json()
    assert r["accepted"] == 1
    result = _import(client, login("analyst"), [GRACE])
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (1, 0, 0)
    record = _record(engine, "c-7")
    assert record is not None and record["first_name"] == "Grace"


def test_an_import_id_taken_anyway_is_reported_not_lost(
    client: TestClient,
    engine: Engine,
    settings: Settings,
    login: Login,
    device_key: DeviceKey,
    raw_event: RawEvent,
) -> None:
    """Should the key leak, a taken id is an id conflict in the import's answer (row
    and reason), never a silent duplicate."""
    [planned] = customer_events("crm", [GRACE], ImportIds.of(settings))
    client.post("/v1/events", json=[raw_event(id=planned["id"])], headers=device_key())
    analyst = login("analyst")
    result = _import(client, analyst, [{"source_record_id": "c-1"}, GRACE])
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (1, 0, 1)
    assert result["conflicts"] == 1
    [error] = result["errors"]
    assert error["index"] == 1
    assert [e["type"] for e in error["errors"]] == ["id_conflict"]
    assert _record(engine, "c-7") is None
    again = _import(client, analyst, [{"source_record_id": "c-1"}])
    assert (again["accepted"], again["duplicates"], again["conflicts"]) == (0, 1, 0)


def test_records_imported_under_old_ids_are_stored_once_more_and_nothing_changes(
    engine: Engine,
) -> None:
    """Upgrading: the log keeps the old ids, so the first re-import of an unchanged
    record stores it again under its new id. The projection upserts by (source
    system, record id): same row, values and customer id; only ``updated_at`` moves to
    the re-import. The import after that stores nothing."""
    log = EventLog(engine)
    row = {**GRACE, "loyalty_id": "L-7"}
    before = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
    legacy = {
        "id": str(_legacy_id("crm", row)),
        "type": "customer.upserted",
        "ts": before.isoformat(),
        "source": "crm",
        "subject": "L-7",
        "payload": {**row, "source_system": "crm"},
    }
    assert ingest_items(log, [legacy]).accepted == 1
    old = _record(engine, "c-7")
    assert old is not None

    first = ingest_items(log, customer_events("crm", [row], IDS))
    assert (first.accepted, first.duplicates, first.conflicts) == (1, 0, 0)
    new = _record(engine, "c-7")
    assert new is not None
    unchanged = ("customer_id", "first_name", "email", "loyalty_id", "created_at")
    assert {k: new[k] for k in unchanged} == {k: old[k] for k in unchanged}
    assert old["updated_at"] == before < new["updated_at"]

    again = ingest_items(log, customer_events("crm", [row], IDS))
    assert (again.accepted, again.duplicates, again.conflicts) == (0, 1, 0)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 2
