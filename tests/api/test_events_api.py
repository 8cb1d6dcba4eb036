"""POST /v1/events and GET /v1/events: counts, per-item errors, and no 500 for bad input."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

RawEvent = Callable[..., dict[str, Any]]
Login = Callable[[str], dict[str, str]]
DeviceKey = Callable[..., dict[str, str]]


def test_batch_counts_accepted_duplicate_rejected(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    key = device_key()
    good = [raw_event() for _ in range(5)]
    bad = raw_event(
        payload={"order_id": "o", "lines": [{"product_id": "a", "qty": -1, "unit_price": 1}]}
    )
    r = client.post("/v1/events", json=[*good, bad], headers=key)
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (5, 0, 1)
    assert body["errors"] == [
        {
            "index": 5,
            "id": bad["id"],
            "errors": [
                {
                    "loc": "payload.lines.0.qty",
                    "msg": "Input should be greater than 0",
                    "type": "greater_than",
                }
            ],
        }
    ]
    again = client.post("/v1/events", json=good, headers=key).json()
    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 5, 0)


def test_an_id_another_store_used_first_is_a_conflict_not_a_duplicate(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent, login: Login
) -> None:
    """A key of store A used to be able to take an id that store B's device would send:
    B's event then came back as a "duplicate" and was lost without a word. Now it is
    rejected as ``id_conflict``, its index and id named, so B's device can send it
    again under a new id; the answer is 200, the rest of the batch stored."""
    theirs = raw_event(store_id="cafe-a")
    taken = client.post("/v1/events", json=[theirs], headers=device_key("cafe-a")).json()
    assert taken["accepted"] == 1
    ours = raw_event(id=theirs["id"], store_id="cafe-b")
    other = raw_event(store_id="cafe-b")
    b_key = device_key("cafe-b")
    r = client.post("/v1/events", json=[other, ours], headers=b_key)
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["rejected"], body["conflicts"]) == (
        1,
        0,
        1,
        1,
    )
    assert body["errors"] == [
        {
            "index": 1,
            "id": theirs["id"],
            "errors": [
                {
                    "loc": "id",
                    "msg": "this id already names a different event in the log; this event "
                    "was not stored: send it again under a new id",
                    "type": "id_conflict",
                }
            ],
        }
    ]
    again = client.post("/v1/events", json=[{**ours, "id": str(uuid.uuid4())}], headers=b_key)
    assert again.json()["accepted"] == 1
    stored = client.get("/v1/events", params={"store_id": "cafe-b"}, headers=login("analyst"))
    assert len(stored.json()["data"]) == 2
    text = client.get("/metrics").text
    assert 'storelens_events_total{outcome="conflict"} 1.0' in text
    assert 'storelens_events_total{outcome="rejected"} 0.0' in text


def test_an_exact_replay_from_the_same_device_is_still_a_duplicate(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    key = device_key("cafe-a")
    batch = [raw_event(store_id="cafe-a") for _ in range(3)]
    assert client.post("/v1/events", json=batch, headers=key).json()["accepted"] == 3
    again = client.post("/v1/events", json=batch, headers=key).json()
    assert (again["accepted"], again["duplicates"], again["rejected"], again["conflicts"]) == (
        0,
        3,
        0,
        0,
    )


class _Loop:
    """Stands in for the projection loop (its thread is not started by TestClient here);
    it only counts wake-ups."""

    def __init__(self) -> None:
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1


def test_accepted_events_wake_the_projection_loop_and_duplicates_do_not(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    loop = _Loop()
    client.app.state.projection_loop = loop  # type: ignore[attr-defined]
    key = device_key()
    events = [raw_event() for _ in range(3)]
    assert client.post("/v1/events", json=events, headers=key).json()["accepted"] == 3
    assert loop.wakes == 1
    assert client.post("/v1/events", json=events, headers=key).json()["duplicates"] == 3
    assert loop.wakes == 1  # nothing new: no extra pass


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"events": []}', 422, "JSON array"),
        (b'"text"', 422, "JSON array"),
        (b"", 400, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_client_errors(
    client: TestClient, device_key: DeviceKey, body: bytes, status: int, detail: str
) -> None:
    r = client.post(
        "/v1/events", content=body, headers={**device_key(), "Content-Type": "application/json"}
    )
    assert r.status_code == status
    [error] = r.json()["detail"]
    assert error["loc"] == ["body"] and detail in error["msg"]


def test_garbage_items_are_rejected_one_by_one(client: TestClient, device_key: DeviceKey) -> None:
    junk: list[Any] = [
        None,
        1,
        "x",
        [],
        {},
        {"type": None},
        {"type": "pos.order_paid"},
        {"type": "pos.order_paid", "payload": "x", "ts": 5, "id": 7},
    ]
    r = client.post("/v1/events", json=junk, headers=device_key())
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 0 and body["rejected"] == len(junk)
    assert [e["index"] for e in body["errors"]] == list(range(len(junk)))
    assert all(e["errors"] for e in body["errors"])


def test_batch_over_the_limit_is_refused(
    settings: Any, engine: Any, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    from storelens.api.app import create_app

    small = settings.model_copy(update={"max_batch": 3})
    client = TestClient(create_app(small, engine=engine, run_projections=False))
    r = client.post("/v1/events", json=[raw_event() for _ in range(4)], headers=device_key())
    assert r.status_code == 413
    assert r.json()["detail"] == [
        {
            "loc": ["body"],
            "msg": "batch of 4 events is over the limit of 3",
            "type": "too_long",
        }
    ]


def test_store_scoped_key(client: TestClient, device_key: DeviceKey, raw_event: RawEvent) -> None:
    r = client.post(
        "/v1/events",
        json=[raw_event(store_id="cafe-01"), raw_event(store_id="x")],
        headers=device_key("cafe-01"),
    )
    body = r.json()
    assert body["accepted"] == 1 and body["rejected"] == 1
    assert body["errors"][0]["errors"][0]["loc"] == "store_id"


def test_get_events_filters_pages_and_is_audited(
    client: TestClient, device_key: DeviceKey, login: Login, raw_event: RawEvent
) -> None:
    key = device_key()
    events = [raw_event(ts=f"2026-11-02T0{h}:00:00+00:00") for h in range(1, 7)]
    events.append(raw_event("web.event", store_id=None))
    client.post("/v1/events", json=events, headers=key)
    analyst = login("analyst")
    r = client.get(
        "/v1/events",
        params={
            "store_id": "cafe-01",
            "type": "pos.order_paid",
            "since": "2026-11-02T02:00:00+00:00",
            "until": "2026-11-02T05:00:00+00:00",
        },
        headers=analyst,
    )
    assert r.status_code == 200
    assert [e["ts"][11:13] for e in r.json()["data"]] == ["02", "03", "04"]
    first = client.get("/v1/events", params={"limit": 4}, headers=analyst).json()["data"]
    rest = client.get("/v1/events", params={"after": first[-1]["seq"]}, headers=analyst).json()[
        "data"
    ]
    assert len(first) + len(rest) == 7
    naive = client.get("/v1/events", params={"since": "2026-11-02T02:00:00"}, headers=analyst)
    assert naive.status_code == 422
    audit = client.get("/v1/audit", params={"action": "events.read"}, headers=login("admin")).json()
    assert audit["count"] >= 3 and audit["data"][0]["role"] == "analyst"


def test_metrics_count_outcomes(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    client.post("/v1/events", json=[raw_event(), raw_event(ts="bad")], headers=device_key())
    text = client.get("/metrics").text
    assert 'storelens_events_total{outcome="accepted"} 1.0' in text
    assert 'storelens_events_total{outcome="rejected"} 1.0' in text
    assert 'route="/v1/events",status="200"' in text


def test_request_timings_keep_each_route_and_status_apart(client: TestClient) -> None:
    """The middleware keeps each series' child between requests: two statuses of one
    route, and an unmatched path, must still land in series of their own."""
    for _ in range(3):
        assert client.get("/health").status_code == 200
    assert client.get("/v1/stores").status_code == 401
    assert client.get("/no/such/path").status_code == 404
    text = client.get("/metrics").text
    count = 'storelens_http_request_duration_seconds_count{{method="GET",route="{}",status="{}"}}'
    assert count.format("/health", 200) + " 3.0" in text
    assert count.format("/v1/stores", 401) + " 1.0" in text
    assert count.format("unmatched", 404) + " 1.0" in text


def test_health(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["database"] == "ok"


def test_openapi_documents_the_event_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["type"] == "array"
    assert "OrderPaidEvent" in spec["components"]["schemas"]


def test_cors_only_when_configured(client: TestClient, settings: Any, engine: Any) -> None:
    from storelens.api.app import create_app

    preflight = {"Origin": "https://dash.example.com", "Access-Control-Request-Method": "GET"}
    assert "access-control-allow-origin" not in client.options("/health", headers=preflight).headers
    open_to = settings.model_copy(update={"cors_origins": ["https://dash.example.com"]})
    other = TestClient(create_app(open_to, engine=engine, run_projections=False))
    r = other.options("/health", headers=preflight)
    assert r.headers["access-control-allow-origin"] == "https://dash.example.com"
