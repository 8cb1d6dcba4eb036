"""Bad input gives a 4xx with a field-level ``loc``, never a 500 (issue 17, Medium 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from storelens.storage.tables import stores

Login = Callable[[str], dict[str, str]]
HUGE = str(2**63)  # one past SQLite's largest integer


@pytest.mark.parametrize(
    ("path", "param"),
    [
        ("/v1/customers", "offset"),
        ("/v1/products", "offset"),
        ("/v1/audit", "offset"),
        ("/v1/dead-letters", "offset"),
        ("/v1/events", "after"),
    ],
)
def test_huge_offsets_are_422(client: TestClient, login: Login, path: str, param: str) -> None:
    r = client.get(path, params={param: HUGE}, headers=login("admin"))
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert (error["loc"], error["type"]) == (["query", param], "less_than_equal")


def test_largest_allowed_offset_still_answers(client: TestClient, login: Login) -> None:
    r = client.get("/v1/customers", params={"offset": 2**62}, headers=login("admin"))
    assert r.status_code == 200 and r.json()["data"] == []


@pytest.fixture
def cafe(client: TestClient, login: Login) -> dict[str, str]:
    admin = login("admin")
    r = client.post("/v1/stores", json={"id": "cafe-01", "name": "Café"}, headers=admin)
    assert r.status_code == 201
    return admin


@pytest.mark.parametrize(
    ("params", "loc"),
    [
        ({"from": "0001-01-01T00:00:00+14:00", "to": "9999-12-31T23:59:59-14:00"}, "from"),
        ({"from": "2026-11-02T00:00:00Z", "to": "9999-12-31T23:59:59Z"}, "to"),
        ({"from": "2026-11-02T00:00:00"}, "from"),  # naive: ambiguous
        ({"from": "2026-11-03T00:00:00Z", "to": "2026-11-02T00:00:00Z"}, "to"),  # reversed
    ],
)
def test_ops_time_range_is_checked(
    client: TestClient, cafe: dict[str, str], params: dict[str, str], loc: str
) -> None:
    r = client.get("/v1/stores/cafe-01/ops", params=params, headers=cafe)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", loc]


def test_ops_widest_range_answers(client: TestClient, cafe: dict[str, str]) -> None:
    params = {"from": "1970-01-01T00:00:00Z", "to": "2200-01-01T00:00:00Z"}
    r = client.get("/v1/stores/cafe-01/ops", params=params, headers=cafe)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == ("1970-01-01T00:00:00Z", "2200-01-01T00:00:00Z")
    assert body["fulfillment"]["orders"] == 0


@pytest.mark.parametrize("kind", ["customers", "products"])
def test_csv_field_over_the_csv_limit_is_422_naming_the_line(
    client: TestClient, login: Login, kind: str
) -> None:
    huge = "x" * 131_073
    csv_text = f"source_record_id,product_id,name\nr1,p1,ok\nr2,p2,{huge}\n"
    r = client.post(
        f"/v1/{kind}/import",
        params={"source": "crm"} if kind == "customers" else {},
        content=csv_text.encode(),
        headers={**login("admin"), "Content-Type": "text/csv"},
    )
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["body", 3] and error["type"] == "csv"
    assert error["msg"].startswith("CSV line 3: field larger than field limit (131072)")


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "", "Europe/"])
def test_store_time_zone_must_be_real(client: TestClient, login: Login, zone: str) -> None:
    admin = login("admin")
    r = client.post(
        "/v1/stores", json={"id": "cafe-01", "name": "Café", "timezone": zone}, headers=admin
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "timezone"]
    client.post("/v1/stores", json={"id": "cafe-01", "name": "Café"}, headers=admin)
    r = client.patch("/v1/stores/cafe-01", json={"timezone": zone}, headers=admin)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "timezone"]


def test_a_stored_bad_zone_does_not_break_ops(
    client: TestClient, cafe: dict[str, str], engine: Engine
) -> None:
    with engine.begin() as conn:  # saved before zones were checked
        conn.execute(update(stores).where(stores.c.id == "cafe-01").values(timezone="Mars/Base"))
    r = client.get("/v1/stores/cafe-01/ops", headers=cafe)
    assert r.status_code == 200 and r.json()["timezone"] == "UTC"


SUB_ROUTES: list[tuple[str, str, Any]] = [
    ("get", "", None),
    ("patch", "", {"name": "x"}),
    ("delete", "", None),
    ("get", "/layout", None),
    ("put", "/layout", {"store": {"id": "gone", "name": "x"}}),
    ("get", "/ops", None),
    ("get", "/alerts", None),
    ("get", "/alert-rules", None),
    ("put", "/alert-rules", []),
    ("delete", "/alert-rules", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), SUB_ROUTES)
def test_deleted_and_unknown_stores_are_404_everywhere(
    client: TestClient, login: Login, method: str, suffix: str, body: Any
) -> None:
    admin = login("admin")
    client.post("/v1/stores", json={"id": "gone", "name": "Gone"}, headers=admin)
    assert client.delete("/v1/stores/gone", headers=admin).status_code == 204
    for store in ("gone", "never"):
        r = client.request(method, f"/v1/stores/{store}{suffix}", json=body, headers=admin)
        assert r.status_code == 404, (store, r.text)


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/v1/products", {"category": "d#\x00"}, ["query", "category"]),
        ("/v1/dead-letters", {"channel": "\x00"}, ["query", "channel"]),
        ("/v1/customers", {"q": "ada\x00"}, ["query", "q"]),
        ("/v1/stores/cafe%00-01", {}, ["path"]),
    ],
)
def test_a_nul_character_is_422_on_both_backends(
    client: TestClient, login: Login, path: str, params: dict[str, str], loc: list[str]
) -> None:
    """PostgreSQL text cannot hold U+0000: found by schemathesis as a 500 there."""
    r = client.get(path, params=params, headers=login("admin"))
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert (error["loc"], error["type"]) == (loc, "string_nul")


def test_a_key_id_past_32_bits_is_422_not_a_database_error(
    client: TestClient, login: Login
) -> None:
    """SQLAlchemy casts the id to PostgreSQL's 32-bit integer, which then overflows."""
    admin = login("admin")
    r = client.delete(f"/v1/api-keys/{2**31}", headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["path", "key_id"]
    assert client.delete(f"/v1/api-keys/{2**31 - 1}", headers=admin).status_code == 404


def test_nul_in_an_event_is_refused_per_item_on_both_backends(
    client: TestClient, login: Login, raw_event: Callable[..., dict[str, Any]]
) -> None:
    good = raw_event("order.started")
    bad_store = raw_event("order.started", store_id="cafe\x00")
    bad_payload = raw_event("order.started")
    bad_payload["payload"] = {"order_id": "o-\x00", "staff_id": "barista-ana"}
    r = client.post("/v1/events", json=[good, bad_store, bad_payload], headers=login("admin"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    assert [e["index"] for e in body["errors"]] == [1, 2]
    assert {err["type"] for e in body["errors"] for err in e["errors"]} == {"string_nul"}


@pytest.mark.parametrize(
    ("method", "path", "body", "content_type"),
    [
        ("POST", "/v1/stores", b'{"id": "cafe-09", "name": "Caf\\u0000"}', "application/json"),
        ("POST", "/v1/products/import", b"product_id,name\r\nlatte,La\x00tte\r\n", "text/csv"),
        ("POST", "/v1/users", b'{"username": "a\\u0000", "password": "x"}', "application/json"),
    ],
)
def test_a_nul_in_a_body_is_422_on_both_backends(
    client: TestClient, login: Login, method: str, path: str, body: bytes, content_type: str
) -> None:
    headers = {**login("admin"), "Content-Type": content_type}
    r = client.request(method, path, content=body, headers=headers)
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == [
        {"loc": ["body"], "msg": "must not contain a NUL character (U+0000)", "type": "string_nul"}
    ]


def test_a_bare_number_is_not_a_query_time(client: TestClient, login: Login) -> None:
    """pydantic would read ``since=2159`` as Unix seconds; the schema says ISO 8601."""
    r = client.get("/v1/events", params={"since": "2159"}, headers=login("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["query", "since"]
    ok = client.get("/v1/events", params={"since": "2026-11-02T08:00:00Z"}, headers=login("admin"))
    assert ok.status_code == 200, ok.text


def test_a_nul_in_a_sign_in_form_is_422_on_both_backends(client: TestClient) -> None:
    """Percent-encoded in a form body: found by the longer schemathesis sweep as a
    PostgreSQL 500 on sign-in."""
    r = client.post(
        "/v1/auth/token",
        content=b"username=a%002&password=a%002",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["type"] == "string_nul"


def test_an_unknown_event_type_filter_is_422_naming_it(client: TestClient, login: Login) -> None:
    r = client.get("/v1/events", params={"type": "pos.order_payed"}, headers=login("admin"))
    assert r.status_code == 422, r.text
    [error] = r.json()["detail"]
    assert error["loc"] == ["query", "type", 0]
    assert "pos.order_payed" in error["msg"]
    ok = client.get("/v1/events", params={"type": "pos.order_paid"}, headers=login("admin"))
    assert ok.status_code == 200, ok.text


def test_a_key_flag_must_be_a_real_boolean(client: TestClient, login: Login) -> None:
    body = {"name": "till", "consent_source": 0}
    r = client.post("/v1/api-keys", json=body, headers=login("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "consent_source"]


def test_a_csv_row_longer_than_its_header_is_refused_on_its_own(
    client: TestClient, login: Login
) -> None:
    """A blank first line made every value a surplus field, which reached the event
    builder under a ``None`` key: a 500 found by the longer schemathesis sweep."""
    body = b"\nada,lovelace\nsource_record_id,first_name\n"
    headers = {**login("admin"), "Content-Type": "text/csv"}
    r = client.post("/v1/customers/import", params={"source": "crm"}, content=body, headers=headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["accepted"], report["rejected"]) == (0, 2)
    locs = {e["loc"] for item in report["errors"] for e in item["errors"]}
    assert "payload.(fields beyond the header)" in locs


def test_an_event_nested_as_deep_as_json_allows_is_refused_on_its_own(
    client: TestClient, login: Login, raw_event: Callable[..., dict[str, Any]]
) -> None:
    """The NUL check walked events recursively: nesting the JSON parser accepts (about
    1,000 levels) hit Python's recursion limit and the whole batch answered 500."""
    good = raw_event("order.started")
    deep = raw_event("order.started")
    depth = 1000
    body = orjson.dumps([good, deep]).replace(
        b'"staff_id":"barista-ana"}}]', b'"staff_id":' + b"[" * depth + b"]" * depth + b"}}]"
    )
    assert body.count(b"[") == depth + 1
    r = client.post(
        "/v1/events", content=body, headers={**login("admin"), "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert [(e["index"], e["errors"][0]["loc"]) for e in answer["errors"]] == [
        (1, "payload.staff_id")
    ]
