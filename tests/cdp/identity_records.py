"""Customer records for identity tests: put one in through the event log, read the ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select

from storelens.cdp.records import ImportIds, customer_events
from storelens.cdp.resolution import record_key, resolve
from storelens.ingest.batch import ingest_items
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import customer_aliases, customers

IDS = ImportIds("test-secret-for-import-ids")  # the installation's key, in tests
ADA = {"first_name": "Ada", "last_name": "Lovelace"}


def put(engine: Engine, key: str, **fields: Any) -> None:
    """The record ``source:record`` (Ada Lovelace unless ``fields`` say otherwise)."""
    source, record = key.split(":", 1)
    log = EventLog(engine)
    row = {"source_record_id": record, **ADA, **fields}
    assert not ingest_items(log, customer_events(source, [row], IDS)).rejected
    run_projections(log)


def ids_of(engine: Engine) -> dict[str, str]:
    """Record key -> customer id."""
    with engine.connect() as conn:
        return {
            record_key(r.source_system, r.source_record_id): r.customer_id
            for r in conn.execute(select(customers))
        }


def aliases_of(engine: Engine) -> dict[str, str]:
    """Retired id -> the customer id it points at."""
    with engine.connect() as conn:
        rows = conn.execute(select(customer_aliases.c.alias, customer_aliases.c.customer_id))
        return {alias: target for alias, target in rows}


def merged_later(engine: Engine, first: str, second: str, email: str, phone: str) -> dict[str, str]:
    """``first`` (``email``) and ``second`` (``phone``) resolved apart, then ``second``
    given the same e-mail and both resolved into one customer; their ids before."""
    put(engine, first, email=email)
    put(engine, second, phone=phone)
    resolve(engine, "full")
    before = ids_of(engine)
    put(engine, second, phone=phone, email=email.upper())
    resolve(engine, "full")
    return before
