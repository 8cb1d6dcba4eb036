"""Notices through the API, on SQLite and PostgreSQL: raise, claim, release, outcome,
expiry, the claimer view and its gate, the live socket, and bad input."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from starlette.websockets import WebSocketDisconnect

from storelens import accounts
from storelens.api.app import create_app
from storelens.api.deps import current_time
from storelens.config import Settings
from storelens.privacy.audit import list_entries
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.engine import RecommendationEngine
from storelens.storage.tables import notices

from .conftest import MEMBER, STORE, T0, Floor, raise_body

Login = Callable[[str], dict[str, str]]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(client: TestClient, engine: Engine, settings: Settings) -> Clock:
    """The requests' clock, and the recommendations engine's (its windows count from now)."""
    clock = Clock(T0)
    client.app.dependency_overrides[current_time] = clock  # type: ignore[attr-defined]
    reco = RecommendationEngine(engine, settings, MemoryCandidates(600), clock=clock)
    client.app.state.recommendations = reco  # type: ignore[attr-defined]
    return clock


@pytest.fixture
def shop(floor: Floor, clock: Clock) -> Floor:
    floor.store()
    floor.member()
    floor.history()
    return floor


def _on_shift(floor: Floor, n: int) -> list[dict[str, str]]:
    names = [floor.staff() for _ in range(n)]
    floor.clock("in", *names, at=T0 - timedelta(hours=1))
    return [floor.token(u) for u in names]


def _raise(client: TestClient, floor: Floor, **body: str) -> str:
    """A notice raised the way production raises one: by the store's scanner."""
    r = client.post("/v1/notices", json=raise_body(**body), headers=floor.scanner())
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_raise_claim_outcome(client: TestClient, shop: Floor, login: Login) -> None:
    ana, ben = _on_shift(shop, 2)
    shop.recognisable()  # the camera's notice below is for a member enrolled for it
    scanner = shop.scanner()
    r = client.post("/v1/notices", json=raise_body(), headers=scanner)
    assert r.status_code == 201
    body = r.json()
    assert body["state"] == "open" and body["created"] is True
    assert body["expires_at"] == (T0 + timedelta(seconds=300)).isoformat().replace("+00:00", "Z")
    again = client.post("/v1/notices", json=raise_body(trigger="recognition"), headers=scanner)
    assert again.status_code == 200 and again.json()["id"] == body["id"]  # one arrival, one notice
    assert again.json()["created"] is False

    won = client.post(f"/v1/notices/{body['id']}/claim", headers=ana)
    assert won.status_code == 200 and won.json()["state"] == "claimed"
    lost = client.post(f"/v1/notices/{body['id']}/claim", headers=ben)
    assert lost.status_code == 409 and "already claimed" in lost.json()["detail"]

    done = client.post(
        f"/v1/notices/{body['id']}/outcome", json={"outcome": "purchase"}, headers=ana
    )
    assert done.status_code == 200
    assert done.json()["state"] == "closed" and done.json()["outcome"] == "purchase"
    late = client.post(f"/v1/notices/{body['id']}/claim", headers=ben)
    assert late.status_code == 409 and "closed" in late.json()["detail"]


def test_claimer_view_only_for_the_claimer_while_open_and_audited(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    ana, ben = _on_shift(shop, 2)
    nid = _raise(client, shop)
    assert client.get(f"/v1/notices/{nid}/customer", headers=ana).status_code == 409  # unclaimed
    client.post(f"/v1/notices/{nid}/claim", headers=ana)
    assert client.get(f"/v1/notices/{nid}/customer", headers=ben).status_code == 403

    view = client.get(f"/v1/notices/{nid}/customer", headers=ana)
    assert view.status_code == 200, view.text
    v = view.json()
    assert v["greeting_name"] == "Ady" and v["greeting_source"] == "chosen"
    assert v["orders_total"] == 3 and len(v["last_visits"]) == 3
    assert v["last_visits"][0]["date"] == (T0 - timedelta(days=2)).date().isoformat()
    assert [i["name"] for i in v["purchases"][1]["items"]] == ["Flat white", "Butter croissant"]
    assert v["segment"] is None and v["segments"] == []  # no scoring run yet
    # No personalization consent: the store's popular items, nothing from her purchases
    # (tests/staff/test_claimer_sources.py has the consented cases).
    assert {s["source"] for s in v["suggestions"]} == {"popularity"}
    first = v["suggestions"][0]
    assert first["product_id"] == "flat-white"
    assert (
        first["reason"]
        == "popular at this store in the morning: in 9 of 9 orders in the last 28 days"
    )

    reads = list_entries(engine, action="notice.customer_view")
    assert len(reads) == 1 and reads[0].resource_id == MEMBER
    assert reads[0].detail == {"notice_id": nid}

    client.post(f"/v1/notices/{nid}/outcome", json={"outcome": "served"}, headers=ana)
    assert client.get(f"/v1/notices/{nid}/customer", headers=ana).status_code == 409
    assert len(list_entries(engine, action="notice.customer_view")) == 1  # refusals read nothing


def test_release_reopens_for_colleagues_and_ends_the_releasers_view(
    client: TestClient, shop: Floor
) -> None:
    ana, ben = _on_shift(shop, 2)
    nid = _raise(client, shop)
    client.post(f"/v1/notices/{nid}/claim", headers=ana)
    r = client.post(f"/v1/notices/{nid}/release", headers=ana)
    assert r.status_code == 200 and r.json()["state"] == "open" and r.json()["releases"] == 1
    again = client.post(f"/v1/notices/{nid}/release", headers=ana)
    assert again.status_code == 409 and "not claimed" in again.json()["detail"]
    outcome = client.post(f"/v1/notices/{nid}/outcome", json={"outcome": "served"}, headers=ana)
    assert outcome.status_code == 409
    assert client.get(f"/v1/notices/{nid}/customer", headers=ana).status_code == 409
    assert client.post(f"/v1/notices/{nid}/claim", headers=ben).status_code == 200
    assert client.post(f"/v1/notices/{nid}/release", headers=ana).status_code == 403


def test_unclaimed_notice_expires(
    client: TestClient, shop: Floor, clock: Clock, engine: Engine
) -> None:
    (ana,) = _on_shift(shop, 1)
    nid = _raise(client, shop)
    clock.now = T0 + timedelta(seconds=299)
    other = _raise(client, shop, customer_id=shop.member("L-bob", first="Bob", greeting=None))
    clock.now = T0 + timedelta(seconds=300)  # exactly its expiry: too late
    r = client.post(f"/v1/notices/{nid}/claim", headers=ana)
    assert r.status_code == 409 and "expired" in r.json()["detail"]

    desk = client.app.state.notice_desk  # type: ignore[attr-defined]
    sent: list[dict[str, object]] = []
    desk.publish = sent.extend
    expired = desk.expire_due(clock.now)
    assert [n.id for n in expired] == [nid]  # the later one still waits
    assert sent == [
        {"type": "notice_withdrawn", "store_id": STORE, "id": nid, "reason": "expired",
         "claimed_by": None}
    ]  # fmt: skip
    with engine.connect() as conn:
        state = dict(conn.execute(select(notices.c.id, notices.c.state)).all())
    assert state == {nid: "expired", other: "open"}
    assert client.post(f"/v1/notices/{other}/claim", headers=ana).status_code == 200
    again = _raise(client, shop)  # the member is announced afresh after an expiry
    assert again != nid


def test_claim_needs_a_shift_in_that_store(client: TestClient, shop: Floor) -> None:
    (ana,) = _on_shift(shop, 1)
    off = shop.staff()
    gone = shop.staff()
    shop.clock("in", gone, at=T0 - timedelta(hours=3))
    shop.clock("out", gone, at=T0 - timedelta(hours=1))
    forgot = shop.staff()
    shop.clock("in", forgot, at=T0 - timedelta(hours=17))  # longer than shift_max_hours
    nid = _raise(client, shop)
    for name in (off, gone, forgot):
        r = client.post(f"/v1/notices/{nid}/claim", headers=shop.token(name))
        assert r.status_code == 403 and "on shift" in r.json()["detail"], name
    assert client.post(f"/v1/notices/{nid}/claim", headers=ana).status_code == 200


def test_bad_input_is_refused_with_the_field(
    client: TestClient, shop: Floor, device_key: Callable[..., dict[str, str]], login: Login
) -> None:
    (ana,) = _on_shift(shop, 1)
    cases = [
        (raise_body(store_id="nowhere"), ["body", "store_id"]),
        (raise_body(customer_id="L-nobody"), ["body", "customer_id"]),
        (raise_body(trigger="face"), ["body", "trigger"]),
        ({"store_id": STORE, "trigger": "loyalty_scan"}, ["body", "customer_id"]),
        ({**raise_body(), "extra": 1}, ["body", "extra"]),
    ]
    for body, loc in cases:
        r = client.post("/v1/notices", json=body, headers=login("admin"))
        assert r.status_code == 422, (body, r.text)
        assert r.json()["detail"][0]["loc"] == loc
        assert "L-nobody" not in r.text  # the unknown id is not echoed back
    assert client.post("/v1/notices/unknown-id/claim", headers=ana).status_code == 404
    assert client.post("/v1/notices/unknown-id/release", headers=ana).status_code == 404
    assert client.get("/v1/notices/unknown-id/customer", headers=ana).status_code == 404
    assert client.post("/v1/notices/x/claim", headers=login("admin")).status_code == 403
    nid = _raise(client, shop)
    client.post(f"/v1/notices/{nid}/claim", headers=ana)
    bad = client.post(f"/v1/notices/{nid}/outcome", json={"outcome": "maybe"}, headers=ana)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "outcome"]
    other = device_key("cafe-02")
    assert client.post("/v1/notices", json=raise_body(), headers=other).status_code == 403
    own = device_key(None)
    r = client.post("/v1/notices", json=raise_body(customer_id=shop.member("L-cy")), headers=own)
    assert r.status_code == 201 and r.json()["state"] == "open"


def test_socket_brings_notices_to_staff_on_shift_and_withdraws_them(
    client: TestClient, shop: Floor
) -> None:
    ana, ben = _on_shift(shop, 2)
    off = shop.staff()
    url = f"/v1/stores/{STORE}/notices/ws"
    with (
        client.websocket_connect(url, headers=ana) as a,
        client.websocket_connect(url, headers=ben) as b,
        client.websocket_connect(url, headers=shop.token(off)) as o,
    ):
        for ws in (a, b, o):
            assert ws.receive_json()["type"] == "hello"
        nid = _raise(client, shop)
        for ws in (a, b):
            m = ws.receive_json()
            assert m["type"] == "notice" and m["notice"]["id"] == nid
            assert "customer_id" not in m["notice"] and "audience" not in m
        client.post(f"/v1/notices/{nid}/claim", headers=ana)
        for ws in (a, b, o):  # everyone drops it; the one off shift never saw it
            m = ws.receive_json()
            assert m == {"type": "notice_withdrawn", "store_id": STORE, "id": nid,
                         "reason": "claimed", "claimed_by": m["claimed_by"]}  # fmt: skip
    # a device that connects later sees its own claim, not colleagues' open notices lost
    with client.websocket_connect(url, headers=ana) as a:
        assert a.receive_json()["type"] == "hello"
        assert a.receive_json()["notice"]["id"] == nid


def test_socket_is_for_staff_of_a_known_store(
    client: TestClient, shop: Floor, login: Login
) -> None:
    from starlette.websockets import WebSocketDisconnect

    (ana,) = _on_shift(shop, 1)
    for url, headers, code in (
        (f"/v1/stores/{STORE}/notices/ws", login("analyst"), 4403),
        (f"/v1/stores/{STORE}/notices/ws", {}, 4401),
        ("/v1/stores/nowhere/notices/ws", ana, 4404),
    ):
        with (
            pytest.raises(WebSocketDisconnect) as exc,
            client.websocket_connect(url, headers=headers) as ws,
        ):
            ws.receive_json()
        assert exc.value.code == code


def test_the_server_sweep_withdraws_expired_notices_from_devices(
    settings: Settings, engine: Engine, floor: Floor
) -> None:
    """Nobody calls ``expire_due`` here: the server's own sweep does, on its clock."""
    floor.store()
    floor.member()
    quick = settings.model_copy(update={"notice_sweep_s": 0.01})
    app = create_app(quick, engine=engine, run_projections=False)
    desk = app.state.notice_desk
    desk.clock = lambda: T0  # nothing is due yet
    (ana,) = _on_shift(floor, 1)
    with TestClient(app) as client:  # runs the lifespan, and with it the sweep
        client.app.dependency_overrides[current_time] = lambda: T0  # type: ignore[attr-defined]
        with client.websocket_connect(f"/v1/stores/{STORE}/notices/ws", headers=ana) as ws:
            assert ws.receive_json()["type"] == "hello"
            nid = _raise(client, floor)
            assert ws.receive_json()["notice"]["id"] == nid
            desk.clock = lambda: T0 + timedelta(seconds=300)
            message = ws.receive_json()
    assert message == {"type": "notice_withdrawn", "store_id": STORE, "id": nid,
                       "reason": "expired", "claimed_by": None}  # fmt: skip


def test_a_greeting_name_imported_with_the_record_reaches_the_claimer(
    client: TestClient, floor: Floor, clock: Clock, login: Login
) -> None:
    """The whole path: a CRM import carries ``greeting_name`` as a customer.upserted
    event, the records projection stores it, the claimer is told to use it."""
    floor.store()
    rows = [{"source_record_id": "c-9", "first_name": "Margaret", "greeting_name": "Peggy",
             "loyalty_id": "L-peg"}]  # fmt: skip
    overrides = client.app.dependency_overrides  # type: ignore[attr-defined]
    del overrides[current_time]  # the import is stamped now: the server's real clock
    r = client.post("/v1/customers/import?source=crm", json=rows, headers=login("analyst"))
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    overrides[current_time] = clock
    (ana,) = _on_shift(floor, 1)
    nid = _raise(client, floor, customer_id="L-peg")
    client.post(f"/v1/notices/{nid}/claim", headers=ana)
    view = client.get(f"/v1/notices/{nid}/customer", headers=ana).json()
    assert (view["greeting_name"], view["greeting_source"]) == ("Peggy", "chosen")
    assert view["purchases"] == [] and view["suggestions"] == []


def test_staff_cannot_raise_and_no_answer_names_the_customer(
    client: TestClient, shop: Floor, login: Login
) -> None:
    """A staff login that could raise a notice for any id could claim it and read that
    customer's profile; and no answer on a staff device carries a customer id."""
    (ana,) = _on_shift(shop, 1)
    known = client.post("/v1/notices", json=raise_body(), headers=ana)
    unknown = client.post("/v1/notices", json=raise_body(customer_id="L-nobody"), headers=ana)
    assert known.status_code == unknown.status_code == 403  # nor does it learn who exists
    assert known.json() == unknown.json()
    assert client.get("/v1/notices", headers=ana).status_code in (404, 405)

    raised = client.post("/v1/notices", json=raise_body(), headers=shop.scanner())
    assert raised.status_code == 201 and "customer_id" not in raised.json()
    nid = raised.json()["id"]
    answers = [
        client.post(f"/v1/notices/{nid}/claim", headers=ana),
        client.post(f"/v1/notices/{nid}/release", headers=ana),
        client.post(f"/v1/notices/{nid}/claim", headers=ana),
        client.get(f"/v1/notices/{nid}/customer", headers=ana),
        client.post(f"/v1/notices/{nid}/outcome", json={"outcome": "served"}, headers=ana),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "customer_id" not in answer.json() and MEMBER not in answer.text
    assert answers[3].json()["greeting_name"] == "Ady"  # what the claimer needs stays
    admin = client.post("/v1/notices", json=raise_body(), headers=login("admin"))
    assert admin.status_code == 201 and MEMBER not in admin.text


class _StillClock:
    """A clock on which no sleep ever ends: only what happens, not time, closes sockets."""

    def now(self) -> datetime:
        return T0

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


def _revoke(engine: Engine, username: str, how: str) -> None:
    with engine.begin() as conn:
        if how == "disabled":
            accounts.set_active(conn, username, False)
        elif how == "password reset":
            accounts.set_password(conn, username, "another horse battery staple")
        elif how == "role changed":
            accounts.set_role(conn, username, accounts.Role.analyst)
        else:
            accounts.delete_user(conn, username)


@pytest.mark.parametrize("how", ["disabled", "password reset", "role changed", "deleted"])
def test_a_revoked_persons_socket_closes_before_the_next_notice(
    client: TestClient, shop: Floor, engine: Engine, how: str
) -> None:
    """Revocation reaches an open socket: the next notice is not sent, the socket closes
    with 4401, as HTTP refuses the same token at once. Notices go to every staff login
    here, so without the check the revoked person would be sent this one; time never
    passes (the periodic check has its own test in tests/api/test_socket_revocation.py)."""
    client.app.state.notice_desk.audience_mode = "all_staff"  # type: ignore[attr-defined]
    client.app.state.clock = _StillClock()  # type: ignore[attr-defined]
    name = shop.staff()
    shop.clock("in", name, at=T0 - timedelta(hours=1))
    headers = shop.token(name)
    with client.websocket_connect(f"/v1/stores/{STORE}/notices/ws", headers=headers) as ws:
        assert ws.receive_json()["type"] == "hello"
        _revoke(engine, name, how)
        assert client.get("/v1/auth/me", headers=headers).status_code == 401
        _raise(client, shop)
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 4401 and closed.value.reason == "signed out: sign in again"


def test_the_claimer_view_ends_with_the_claimers_shift(
    client: TestClient, shop: Floor, clock: Clock
) -> None:
    """A claim never lapsed: a salesperson who claimed a member and never recorded an
    outcome could read their visits and purchases after clocking out, days later, from
    home (security review). The view now needs the claimer on shift in the notice's
    store, as the claim itself did; closing the claim still works off shift."""
    (ana,) = _on_shift(shop, 1)
    name = client.get("/v1/auth/me", headers=ana).json()["name"]
    nid = _raise(client, shop)
    assert client.post(f"/v1/notices/{nid}/claim", headers=ana).status_code == 200
    assert client.get(f"/v1/notices/{nid}/customer", headers=ana).status_code == 200
    shop.clock("out", name, at=T0 + timedelta(minutes=5))
    clock.now = T0 + timedelta(minutes=10)
    r = client.get(f"/v1/notices/{nid}/customer", headers=ana)
    assert r.status_code == 403 and "on shift" in r.json()["detail"], r.text
    assert "Ady" not in r.text
    done = client.post(f"/v1/notices/{nid}/outcome", json={"outcome": "served"}, headers=ana)
    assert done.status_code == 200


def test_a_forgotten_claim_does_not_silence_the_member_for_good(
    client: TestClient, shop: Floor, clock: Clock
) -> None:
    """A claim nobody closed kept the member "being served" for ever: every later
    arrival got the old claimed notice back (200) and no colleague was told. Once the
    claimer is off shift (here: their clock-in is older than shift_max_hours), the
    member is announced afresh."""
    (ana,) = _on_shift(shop, 1)
    nid = _raise(client, shop)
    assert client.post(f"/v1/notices/{nid}/claim", headers=ana).status_code == 200
    clock.now = T0 + timedelta(days=2)
    colleague = shop.staff()
    shop.clock("in", colleague, at=clock.now - timedelta(hours=1))
    ben = shop.token(colleague)
    r = client.post("/v1/notices", json=raise_body(), headers=shop.scanner())
    assert r.status_code == 201 and r.json()["id"] != nid, r.text
    assert client.post(f"/v1/notices/{r.json()['id']}/claim", headers=ben).status_code == 200
