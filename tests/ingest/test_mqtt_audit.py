"""What the MQTT bridge writes is audited like an HTTP write, on SQLite and PostgreSQL.

A privacy review found that events posted over HTTP leave an audit row naming the key
while the same events over MQTT left none: Ada's access request could not show that a
till had written her order, and an investigator could not tell which device wrote what
about her. Each written batch now leaves one row per publishing device, naming the
customers its events carry in ``audit_subjects``, so her export lists it and her
erasure leaves it in the trail under the pseudonym.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from tests.ingest.mqtt_broker import HOST, PORT, MakeBridge, wait_for

from storelens.ingest.mqtt import publish_events, publish_raw
from storelens.ingest.mqtt_messages import ReceivedMessage
from storelens.ingest.mqtt_writer import store_messages
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import audit_log, audit_subjects, events

Login = Callable[[str], dict[str, str]]
RawEvent = Callable[..., dict[str, Any]]

ADA = {"source_record_id": "c-1", "first_name": "Ada", "last_name": "Lovelace",
       "email": "ada@example.com", "loyalty_id": "L-1"}  # fmt: skip


def _writes(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(audit_log)
                .where(audit_log.c.action.in_(["events.write", "personal_data.write"]))
                .order_by(audit_log.c.id)
            )
        )


def _named(engine: Engine, audit_id: int) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            conn.execute(
                select(audit_subjects.c.customer_id).where(audit_subjects.c.audit_id == audit_id)
            ).scalars()
        )


def _has_writes(engine: Engine, n: int) -> bool:
    return len(_writes(engine)) == n


def _event_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(events)).scalar_one())


@pytest.mark.mqtt
def test_a_batch_over_mqtt_leaves_one_audit_row_per_device_naming_its_customers(
    make_bridge: MakeBridge,
    engine: Engine,
    prefix: str,
    raw_event: RawEvent,
    paid_order: RawEvent,
) -> None:
    bridge = make_bridge()
    till = f"{prefix}/cafe-01/pos-1/pos.order_paid"
    orders = [
        paid_order("L-1", "o-1", source="pos-1"),
        paid_order("L-2", "o-2", source="pos-1"),
        paid_order("L-1", "o-3", source="pos-1"),
        paid_order(None, "o-4", source="pos-1"),
    ]
    broken = paid_order("L-3", "o-5", source="pos-1")
    broken["payload"]["lines"][0]["qty"] = 0  # a dead letter: named nowhere, counted
    shot = raw_event("sensor.espresso_shot", source="espresso-1")
    publish_events(HOST, PORT, till, [*orders, broken], as_array=True)
    publish_raw(HOST, PORT, [(f"{prefix}/cafe-01/espresso-1/sensor.espresso_shot",
                              orjson.dumps(shot))])  # fmt: skip
    wait_for(lambda: bridge.stats.appended == 5, what="5 events")
    wait_for(lambda: len(_writes(engine)) == 2, what="2 audit rows")

    rows = {r.actor: r for r in _writes(engine)}
    assert set(rows) == {"mqtt:cafe-01/pos-1", "mqtt:cafe-01/espresso-1"}
    till_row = rows["mqtt:cafe-01/pos-1"]
    assert (till_row.actor_kind, till_row.action, till_row.resource, till_row.resource_id) == (
        "device",
        "events.write",
        "events",
        "cafe-01",
    )
    assert till_row.detail == {
        "accepted": 4,
        "duplicates": 0,
        "rejected": 1,
        "forbidden": 0,
        "channel": "mqtt",
        "bridge": bridge.config.client_id,
        "customers": 2,
    }
    assert _named(engine, till_row.id) == ["L-1", "L-2"]  # once each; L-3 was never stored
    assert _named(engine, rows["mqtt:cafe-01/espresso-1"].id) == []
    assert rows["mqtt:cafe-01/espresso-1"].detail["customers"] == 0
    with engine.connect() as conn:  # each event names the device that published it
        senders = conn.execute(select(events.c.type, events.c.sent_by)).all()
    assert sorted(senders) == [
        *[("pos.order_paid", "mqtt:cafe-01/pos-1")] * 4,
        ("sensor.espresso_shot", "mqtt:cafe-01/espresso-1"),
    ]

    # the broker redelivering (or a device resending) writes nothing new: counted, not named
    publish_events(HOST, PORT, till, orders[:2], as_array=True)
    wait_for(lambda: len(_writes(engine)) == 3, what="the resend's row")
    resend = _writes(engine)[-1]
    assert (resend.detail["accepted"], resend.detail["duplicates"]) == (0, 2)
    assert _named(engine, resend.id) == []


def test_a_device_allowed_personal_types_writes_personal_data_rows(
    engine: Engine, raw_event: RawEvent
) -> None:
    """Where STORELENS_MQTT_EVENT_TYPES lets a device send consent or customer records,
    its row is a ``personal_data.write`` with the records touched, as over HTTP; a type
    the bridge refuses is counted as forbidden."""
    consent = raw_event("consent.changed", source="kiosk-1", subject="L-7")
    record = raw_event("customer.upserted", source="kiosk-1")
    view = raw_event("web.event", source="kiosk-1", subject="L-8")
    batch = [
        ReceivedMessage(f"p/cafe-01/kiosk-1/{e['type']}", orjson.dumps(e), 1, 1, 1)
        for e in (consent, record, view)
    ]
    allowed = frozenset({"consent.changed", "customer.upserted"})
    outcome = store_messages(EventLog(engine), "p", batch, event_types=allowed, bridge="b-1")
    assert (outcome.appended, outcome.dead_lettered) == (2, 1)
    [row] = _writes(engine)
    assert (row.action, row.actor, row.actor_kind) == (
        "personal_data.write",
        "mqtt:cafe-01/kiosk-1",
        "device",
    )
    assert row.detail["personal"] == {"consent.changed": 1, "customer.upserted": 1}
    assert row.detail["records"] == ["L-7", "crm:c-1"]
    assert (row.detail["rejected"], row.detail["forbidden"], row.detail["bridge"]) == (1, 1, "b-1")
    assert _named(engine, row.id) == ["L-7", "crm:c-1"]
    assert "ada@example.com" not in str(row.detail)  # the record's e-mail is never audited


def test_a_batch_that_rolls_back_leaves_no_audit_row(engine: Engine, raw_event: RawEvent) -> None:
    """The rows are written in the batch's transaction: a failed store leaves neither."""
    shot = raw_event("sensor.espresso_shot", source="espresso-1")
    message = ReceivedMessage("p/cafe-01/espresso-1/sensor.espresso_shot",
                              orjson.dumps(shot), 1, 1, 1)  # fmt: skip

    class Refusing(EventLog):
        def append_in(self, conn: Any, batch: Any, sent_by: Any = None) -> Any:
            super().append_in(conn, batch, sent_by)
            raise RuntimeError("the database refused the batch")  # after the rows went in

    outcome = store_messages(Refusing(engine), "p", [message])
    assert outcome.dead_lettered == 1  # stored one by one, then dead-lettered
    assert _event_count(engine) == 0 and _writes(engine) == []


@pytest.mark.mqtt
def test_a_customers_export_lists_mqtt_writes_about_them_and_erasure_keeps_them_anonymous(
    make_bridge: MakeBridge,
    engine: Engine,
    prefix: str,
    client: TestClient,
    login: Login,
    paid_order: RawEvent,
) -> None:
    admin = login("admin")
    r = client.post("/v1/customers/import?source=crm", json=[ADA], headers=admin)
    assert r.json()["accepted"] == 1, r.text
    run_projections(EventLog(engine))
    bridge = make_bridge()
    till = f"{prefix}/cafe-01/pos-1/pos.order_paid"
    for n, customer in enumerate(["L-1", "L-2"], start=1):  # one batch each
        publish_events(
            HOST, PORT, till, [paid_order(customer, f"o-{n}", source="pos-1")], as_array=True
        )
        wait_for(partial(_has_writes, engine, n), what=f"audit row {n}")
    assert bridge.stats.appended == 2
    about_ada, about_other = (row.id for row in _writes(engine))

    exported = client.get("/v1/customers/L-1/export", headers=admin)
    assert exported.status_code == 200, exported.text
    listed = {a["id"]: a for a in exported.json()["stores"]["audit"]}
    assert about_ada in listed and about_other not in listed
    assert listed[about_ada]["actor"] == "mqtt:cafe-01/pos-1"
    ada_id = exported.json()["customer_id"]
    assert _named(engine, about_ada) == [ada_id]  # by her current customer id

    erased = client.request(
        "DELETE", "/v1/customers/L-1", headers=admin, json={"reason": "GDPR art. 17, #12"}
    )
    assert erased.status_code == 200, erased.text
    result = erased.json()
    assert result["scan"]["traces"] == 0, result["scan"]["found"]
    # the write stays answerable ("the till wrote an order about somebody"), not whose
    assert _named(engine, about_ada) == [result["pseudonym"]]
    assert _named(engine, about_other) == ["L-2"]
    with engine.connect() as conn:
        kept = conn.execute(select(audit_log).where(audit_log.c.id == about_ada)).one()
    assert "L-1" not in str(kept._mapping) and ada_id not in str(kept._mapping)
