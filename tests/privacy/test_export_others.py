"""A person's access export and erasure against rows that also hold other people.

A review found exports handing out other customers' events, records, rejected batches
and log lines whole, and erasures deleting other customers' own events and an
unrelated pair's "keep apart" decision. Ada is the person; Grace and strangers are the
others. SQLite and the real PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from storelens.cdp.records import ImportIds, customer_events
from storelens.cdp.resolution import record_key, resolve
from storelens.cdp.unmerge import unmerge
from storelens.ingest.batch import ingest_items
from storelens.ingest.deadletters import record_dead_letter
from storelens.privacy.audit import SYSTEM, Actor
from storelens.privacy.erasure import erase_customer, export_customer
from storelens.privacy.spine import OTHER
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import customers, events, identity_decisions

IDS = ImportIds("test-secret-for-import-ids")
RawEvent = Callable[..., dict[str, Any]]
ADA = {"source_record_id": "c-1", "first_name": "Ada", "last_name": "Lovelace",
       "email": "ada@example.com", "loyalty_id": "L-1", "phone": "+49 30 901820"}  # fmt: skip
GRACE = {"source_record_id": "c-2", "first_name": "Grace", "last_name": "Hopper",
         "email": "grace@example.com", "loyalty_id": "L-2", "address": "Hauptstr. 1"}  # fmt: skip


def _people(engine: Engine, **grace_extra: Any) -> EventLog:
    log = EventLog(engine)
    rows = [ADA, {**GRACE, **grace_extra}]
    assert not ingest_items(log, customer_events("crm", rows, IDS)).rejected
    run_projections(log)
    return log


def _search(raw_event: RawEvent, subject: str | None, query: str, session: str) -> Any:
    payload = {"session_id": session, "action": "search", "query": query}
    return raw_event("web.event", subject=subject, store_id=None, payload=payload)


def _web_events(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(events.c.payload).where(events.c.type == "web.event"))
        return {p["session_id"]: p for p in rows.scalars()}


def test_other_customers_events_are_shown_by_shape_and_kept(
    engine: Engine, raw_event: RawEvent
) -> None:
    log = _people(engine)
    searches = [
        _search(raw_event, "L-2", "ada@example.com", "grace-s1"),  # Grace looks Ada up
        _search(raw_event, "L-3", "ada lovelace biography", "stranger-s1"),  # a namesake?
        _search(raw_event, None, "ada@example.com", "anon-s1"),  # before Ada signed in
    ]
    assert ingest_items(log, searches).accepted == 3
    run_projections(log)
    shown = export_customer(engine, "L-1", SYSTEM)["stores"]["event_log"]
    text = json.dumps(shown)
    assert "L-2" not in text and "grace-s1" not in text and "stranger-s1" not in text
    (grace,) = [e for e in shown if e.get("mentions_you")]
    assert grace["subject"] == OTHER and grace["payload"]["query"] == "ada@example.com"
    assert any(e.get("payload", {}).get("session_id") == "anon-s1" for e in shown)  # hers
    erase_customer(engine, "L-1", SYSTEM, "request 1")
    left = _web_events(engine)
    assert set(left) == {"grace-s1", "stranger-s1"}  # the anonymous session went with her
    assert "ada@example.com" not in left["grace-s1"]["query"]  # redacted, not deleted
    assert left["stranger-s1"]["query"] == "ada lovelace biography"  # a name alone: untouched


def test_a_record_sharing_a_landline_is_redacted_not_deleted(engine: Engine) -> None:
    _people(engine, phone="030 901820")  # the household's landline, on both records
    text = json.dumps(export_customer(engine, "L-1", SYSTEM)["stores"]["event_log"])
    assert "grace@example.com" not in text and "Hauptstr" not in text
    erase_customer(engine, "L-1", SYSTEM, "request 2")
    with engine.connect() as conn:
        records = [
            p for p in conn.execute(
                select(events.c.payload).where(events.c.type == "customer.upserted")
            ).scalars()
        ]  # fmt: skip
    assert [r["email"] for r in records] == ["grace@example.com"]  # a replay keeps Grace


def test_another_customers_order_naming_her(
    engine: Engine, paid_order: Callable[..., dict[str, Any]]
) -> None:
    log = _people(engine)
    order = paid_order("L-2", "o-gift")
    order["payload"]["lines"][0]["name"] = "e-voucher to ada@example.com"
    assert ingest_items(log, [order]).accepted == 1
    run_projections(log)
    shown = export_customer(engine, "L-1", SYSTEM)["stores"]["event_log"]
    (gift,) = [e for e in shown if e.get("mentions_you")]
    assert "L-2" not in json.dumps(gift) and "o-gift" not in json.dumps(gift)
    assert gift["payload"]["lines"][0]["name"] == "x-xxxxxxx xx ada@example.com"
    namesake = paid_order("L-2", "o-gift-2")  # her name alone: maybe a namesake's
    namesake["payload"]["lines"][0]["name"] = "Gift voucher for Ada Lovelace"
    assert ingest_items(log, [namesake]).accepted == 1
    shown = export_customer(engine, "L-1", SYSTEM)["stores"]["event_log"]
    assert len([e for e in shown if e.get("mentions_you")]) == 1


def test_dead_letters_and_log_lines_show_only_her_identifiers(
    engine: Engine, tmp_path: Path
) -> None:
    _people(engine)
    batch = [
        {"type": "customer.upserted", "payload": {"email": "ada@example.com"}},
        {"type": "customer.upserted", "payload": {"email": "grace@example.com"}},
    ]
    with engine.begin() as conn:
        record_dead_letter(conn, "http", "/v1/events", "bad batch", json.dumps(batch))
    log = tmp_path / "server.log"
    log.write_text("merge suggested: ada@example.com ~ grace@example.com (L-2)\n")
    stores = export_customer(engine, "L-1", SYSTEM, log_paths=(log,))["stores"]
    for store in ("dead_letters", "log_files"):
        text = json.dumps(stores[store])
        assert "ada@example.com" in text and "grace" not in text and "L-2" not in text
    assert stores["log_files"][0]["text"].startswith("xxxxx xxxxxxxxx: ada@example.com ~ ")


def test_a_namesakes_erasure_keeps_an_unrelated_pairs_decision(engine: Engine) -> None:
    """Twins, both Ada Lovelace, kept apart by an analyst whose reason names them; an
    unrelated Ada Lovelace's erasure deleted the decision and the twins merged again."""
    twins = [{"source_record_id": r, "first_name": "Ada", "last_name": "Lovelace",
              "email": "twins@example.org"} for r in ("x1", "y1")]  # fmt: skip
    log = EventLog(engine)
    ingest_items(log, customer_events("shop", twins[:1], IDS))
    ingest_items(log, customer_events("app", twins[1:], IDS))
    run_projections(log)
    resolve(engine, "full")
    with engine.connect() as conn:
        ids = {
            record_key(r.source_system, r.source_record_id): r.customer_id
            for r in conn.execute(select(customers))
        }
    unmerge(engine, ids["shop:x1"], ["app:y1"], Actor("ana", "user", "analyst"),
            reason="mother and daughter, both called Ada Lovelace")  # fmt: skip
    _people(engine)
    erase_customer(engine, "L-1", SYSTEM, "request 9")
    with engine.connect() as conn:
        (decision,) = conn.execute(select(identity_decisions)).all()
    assert (decision.record_a, decision.record_b) == ("app:y1", "shop:x1")
    assert "Lovelace" not in decision.reason  # the mention redacted
    resolve(engine, "full")
    with engine.connect() as conn:
        kept = {r.source_record_id: r.customer_id for r in conn.execute(select(customers))}
    assert kept["x1"] != kept["y1"]
