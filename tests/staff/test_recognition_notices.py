"""A ``recognition`` notice is checked on the server when it lands, on SQLite and
PostgreSQL: the member's biometric consent (under any of their ids) and the store's
switch, read at that moment, not when the edge box matched the face up to 20 s before.

Each refusal is shown to leave nothing behind: no notice row, and the staff socket's
next message is a later notice for someone else, so nothing was broadcast between.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert, select

from storelens.api.deps import current_time
from storelens.privacy.audit import list_entries
from storelens.storage.tables import customer_aliases, customers, notices

from .conftest import MEMBER, STORE, T0, Floor, raise_body

Login = Callable[[str], dict[str, str]]
OTHER = "L-bob"  # a member whose loyalty scan follows each refused arrival


@pytest.fixture
def shop(client: TestClient, floor: Floor) -> Floor:
    client.app.dependency_overrides[current_time] = lambda: T0  # type: ignore[attr-defined]
    floor.store()
    floor.member()
    floor.member(OTHER, first="Bob", greeting=None)
    return floor


def _staff_headers(floor: Floor) -> dict[str, str]:
    ana = floor.staff()
    floor.clock("in", ana, at=T0 - timedelta(hours=1))
    return floor.token(ana)


def _recognised(client: TestClient, floor: Floor, customer_id: str = MEMBER) -> Any:
    body = raise_body(customer_id=customer_id, trigger="recognition")
    return client.post("/v1/notices", json=body, headers=floor.scanner())


def _announced(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(select(notices.c.customer_id, notices.c.trigger))
        return sorted((r.customer_id, r.trigger) for r in rows)


def _refused_then_nothing_reaches_staff(
    client: TestClient, floor: Floor, engine: Engine, customer_id: str = MEMBER
) -> dict[str, Any]:
    """Post the recognition arrival with a staff socket open; return the refusal's
    field error after showing that the socket's next message is Bob's scan."""
    with client.websocket_connect(
        f"/v1/stores/{STORE}/notices/ws", headers=_staff_headers(floor)
    ) as ws:
        assert ws.receive_json()["type"] == "hello"
        refused = _recognised(client, floor, customer_id)
        scan = client.post(
            "/v1/notices", json=raise_body(customer_id=OTHER), headers=floor.scanner()
        )
        assert scan.status_code == 201, scan.text
        message = ws.receive_json()
    assert message["type"] == "notice" and message["notice"]["id"] == scan.json()["id"]
    assert message["notice"]["trigger"] == "loyalty_scan"
    assert _announced(engine) == [(OTHER, "loyalty_scan")]
    assert refused.status_code == 422, refused.text  # a 4xx: the edge box does not retry
    (error,) = refused.json()["detail"]
    assert customer_id not in refused.text and MEMBER not in refused.text
    return dict(error)


def test_a_granted_member_is_announced(client: TestClient, shop: Floor, engine: Engine) -> None:
    shop.recognisable()
    with client.websocket_connect(
        f"/v1/stores/{STORE}/notices/ws", headers=_staff_headers(shop)
    ) as ws:
        assert ws.receive_json()["type"] == "hello"
        r = _recognised(client, shop)
        message = ws.receive_json()
    assert r.status_code == 201, r.text
    assert message["notice"]["id"] == r.json()["id"]
    assert message["notice"]["trigger"] == "recognition"
    assert _announced(engine) == [(MEMBER, "recognition")]


def test_a_member_who_withdrew_is_refused_and_nobody_hears_of_them(
    client: TestClient, shop: Floor, engine: Engine, login: Login
) -> None:
    shop.recognisable()
    gone = client.delete(f"/v1/customers/{MEMBER}/faces", headers=login("admin"))
    assert gone.status_code == 200, gone.text
    error = _refused_then_nothing_reaches_staff(client, shop, engine)
    assert error["loc"] == ["body", "trigger"] and error["type"] == "recognition_not_allowed"
    (row,) = list_entries(engine, action="notice.refused")
    assert row.resource_id == MEMBER and row.actor.endswith(":scanner-cafe-01")
    assert row.detail == {
        "store_id": STORE,
        "trigger": "recognition",
        "reason": "recognition_not_allowed",
    }


def test_a_withdrawal_made_in_the_app_after_enrolling_is_refused(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    """``consent.changed`` with purpose ``recognition`` cannot grant recognition, but a
    later "no" there ends the consent signed at the counter; a new enrollment after
    that "no" is the member's newest decision and counts again."""
    shop.recognisable(at=T0 - timedelta(days=2))
    shop.consent(MEMBER, "recognition", False, T0 - timedelta(days=1))
    error = _refused_then_nothing_reaches_staff(client, shop, engine)
    assert error["type"] == "recognition_not_allowed"
    shop.recognisable(at=T0 - timedelta(hours=2))  # enrolled again, in the store
    assert _recognised(client, shop).status_code == 201


def test_an_enrollment_waiting_for_approval_is_refused_until_an_admin_approves(
    client: TestClient, shop: Floor, engine: Engine, login: Login
) -> None:
    """A staff member's enrollment may be their own face under the member's id: the
    notice it raises would show them the member's history, so it is refused until an
    admin approves the enrollment."""
    shop.recognisable(approved=False)
    error = _refused_then_nothing_reaches_staff(client, shop, engine)
    assert error["type"] == "recognition_not_allowed"
    admin = login("admin")
    [waiting] = client.get("/v1/faces/pending", headers=admin).json()["items"]
    ok = client.post(f"/v1/faces/{waiting['consent_id']}/approval", headers=admin)
    assert ok.status_code == 200, ok.text
    assert _recognised(client, shop).status_code == 201


def test_a_store_with_recognition_off_is_refused(
    client: TestClient, shop: Floor, engine: Engine, login: Login
) -> None:
    shop.recognisable()
    off = client.put(
        f"/v1/stores/{STORE}/recognition", json={"enabled": False}, headers=login("admin")
    )
    assert off.status_code == 200, off.text
    error = _refused_then_nothing_reaches_staff(client, shop, engine)
    assert error["loc"] == ["body", "store_id"] and error["type"] == "recognition_off"


def test_a_consent_for_other_stores_is_refused(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    shop.recognisable(stores=["cafe-02"])
    error = _refused_then_nothing_reaches_staff(client, shop, engine)
    assert error["type"] == "recognition_not_allowed"


def _merge_web_account_into_member(engine: Engine) -> None:
    """Identity resolution joined Ada's web shop account ``C-web`` to her card: the
    record now carries her id and ``C-web`` is a retired alias of it."""
    with engine.begin() as conn:
        conn.execute(
            insert(customers),
            {"source_system": "webshop", "source_record_id": "w-9", "customer_id": MEMBER},
        )
        conn.execute(insert(customer_aliases), {"alias": "C-web", "customer_id": MEMBER})


def test_a_withdrawal_under_another_id_of_the_person_is_refused(
    client: TestClient, shop: Floor, engine: Engine, login: Login
) -> None:
    shop.recognisable("C-web")  # enrolled under the web account, before the merge
    _merge_web_account_into_member(engine)
    assert _recognised(client, shop, MEMBER).status_code == 201  # her consent, merged
    with engine.begin() as conn:
        conn.execute(notices.delete())
    gone = client.delete(f"/v1/customers/{MEMBER}/faces", headers=login("admin"))
    assert gone.status_code == 200, gone.text
    error = _refused_then_nothing_reaches_staff(client, shop, engine, "C-web")
    assert error["type"] == "recognition_not_allowed"


def test_an_app_withdrawal_under_a_merged_record_key_is_refused(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    shop.recognisable()
    _merge_web_account_into_member(engine)
    shop.consent("webshop:w-9", "recognition", False, T0 - timedelta(hours=1))
    error = _refused_then_nothing_reaches_staff(client, shop, engine)
    assert error["type"] == "recognition_not_allowed"


def test_the_in_process_sink_drops_a_withdrawn_member(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    """The same gate for an entrance camera running in the server process."""
    from storelens.api.arrival_notices import DeskArrivalSink
    from storelens.recognition.matcher import Arrival

    shop.recognisable()
    shop.consent(MEMBER, "recognition", False, T0 - timedelta(hours=1))
    sink = client.app.state.arrival_sink  # type: ignore[attr-defined]
    assert isinstance(sink, DeskArrivalSink)
    sink.clock = lambda: T0
    sink(Arrival(MEMBER, STORE, "track-7", 0.3, T0))
    assert sink.dropped == 1 and sink.raised == [] and _announced(engine) == []


def test_other_triggers_need_no_biometric_consent(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    """A scanned card or an app check-in is the member's own act, not a face."""
    for trigger, who in (("loyalty_scan", MEMBER), ("app_checkin", OTHER)):
        body = raise_body(customer_id=who, trigger=trigger)
        r = client.post("/v1/notices", json=body, headers=shop.scanner())
        assert r.status_code == 201, r.text
    assert _announced(engine) == [(MEMBER, "loyalty_scan"), (OTHER, "app_checkin")]


def _claim(client: TestClient, notice_id: str, headers: dict[str, str]) -> Any:
    return client.post(f"/v1/notices/{notice_id}/claim", headers=headers)


def test_a_withdrawal_after_the_announcement_ends_the_notice_at_the_claim(
    client: TestClient, shop: Floor, engine: Engine, login: Login
) -> None:
    """The notice was rightly announced, then the member withdrew (or the store switched
    recognition off) while it stood on phones: claiming it may not open them, and it
    is withdrawn from every phone, not only from the one that tried."""
    shop.recognisable()
    headers = _staff_headers(shop)
    with client.websocket_connect(f"/v1/stores/{STORE}/notices/ws", headers=headers) as ws:
        assert ws.receive_json()["type"] == "hello"
        raised = _recognised(client, shop)
        assert raised.status_code == 201, raised.text
        assert ws.receive_json()["type"] == "notice"
        gone = client.delete(f"/v1/customers/{MEMBER}/faces", headers=login("admin"))
        assert gone.status_code == 200, gone.text
        claim = _claim(client, raised.json()["id"], headers)
        message = ws.receive_json()
    assert claim.status_code == 409, claim.text
    assert "may no longer be announced" in claim.json()["detail"]
    assert MEMBER not in claim.text
    assert message["type"] == "notice_withdrawn" and message["id"] == raised.json()["id"]
    again = _claim(client, raised.json()["id"], headers)
    assert again.status_code == 409  # ended for everyone
    with engine.connect() as conn:
        (row,) = conn.execute(select(notices.c.state, notices.c.claimed_by)).all()
    assert tuple(row) == ("open", None)  # never claimed, and expired at the refusal
    refusals = [e for e in list_entries(engine, action="notice.refused") if e.detail]
    assert any(e.detail == {"at": "claim"} for e in refusals)


def test_the_claimer_view_closes_when_the_member_withdraws_or_the_switch_goes_off(
    client: TestClient, shop: Floor, login: Login
) -> None:
    shop.recognisable()
    headers = _staff_headers(shop)
    raised = _recognised(client, shop)
    notice_id = raised.json()["id"]
    assert _claim(client, notice_id, headers).status_code == 200
    view = f"/v1/notices/{notice_id}/customer"
    assert client.get(view, headers=headers).status_code == 200
    off = client.put(
        f"/v1/stores/{STORE}/recognition", json={"enabled": False}, headers=login("admin")
    )
    assert off.status_code == 200, off.text
    closed = client.get(view, headers=headers)
    assert closed.status_code == 403, closed.text
    assert "Ada" not in closed.text and MEMBER not in closed.text
    on = client.put(
        f"/v1/stores/{STORE}/recognition", json={"enabled": True}, headers=login("admin")
    )
    assert on.status_code == 200 and client.get(view, headers=headers).status_code == 200
    assert client.delete(f"/v1/customers/{MEMBER}/faces", headers=login("admin")).status_code == 200
    assert client.get(view, headers=headers).status_code == 403
    # Closing the claim still works: recording what happened is not a read of the member.
    done = client.post(
        f"/v1/notices/{notice_id}/outcome", json={"outcome": "served"}, headers=headers
    )
    assert done.status_code == 200, done.text


def test_a_scanned_card_is_not_withdrawn_by_a_face_consent(
    client: TestClient, shop: Floor, login: Login
) -> None:
    """Only recognition notices depend on biometric consent."""
    headers = _staff_headers(shop)
    r = client.post("/v1/notices", json=raise_body(customer_id=MEMBER), headers=shop.scanner())
    assert r.status_code == 201, r.text
    assert client.delete(f"/v1/customers/{MEMBER}/faces", headers=login("admin")).status_code == 200
    assert _claim(client, r.json()["id"], headers).status_code == 200
    assert client.get(f"/v1/notices/{r.json()['id']}/customer", headers=headers).status_code == 200
