"""Event times are bounded per item: a far-future or pre-floor event is refused alone.

One event stamped 2099 used to lock a store's database for minutes and leave the ops
watermark in 2099 for good; one stamped ``0001-01-01T00:00:00+14:00`` (no UTC time
exists for it) failed the whole batch with a 500.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens.api.app import create_app
from storelens.api.deps import current_time
from storelens.config import Settings

RawEvent = Callable[..., dict[str, Any]]
DeviceKey = Callable[..., dict[str, str]]
NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def _client(settings: Settings, engine: Engine) -> TestClient:
    app = create_app(settings, engine=engine, run_projections=False)
    app.dependency_overrides[current_time] = lambda: NOW
    return TestClient(app)


@pytest.mark.parametrize(
    ("ts", "type_"),
    [
        ("2099-01-01T00:00:00Z", "event_time_in_future"),
        ("2026-11-02T12:05:01+00:00", "event_time_in_future"),
        ("1999-12-31T23:59:59Z", "event_time_too_early"),
        ("0001-01-01T00:00:00+14:00", "event_time_out_of_range"),
        ("9999-12-31T23:59:59-14:00", "event_time_out_of_range"),
    ],
)
def test_out_of_bounds_time_is_refused_for_that_item_only(
    settings: Settings,
    engine: Engine,
    device_key: DeviceKey,
    raw_event: RawEvent,
    ts: str,
    type_: str,
) -> None:
    client = _client(settings, engine)
    good = [raw_event(), raw_event(ts="2026-11-02T12:05:00+00:00")]
    bad = raw_event(ts=ts)
    r = client.post("/v1/events", json=[good[0], bad, good[1]], headers=device_key())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (2, 1)
    [item] = body["errors"]
    assert item["index"] == 1 and item["id"] == bad["id"]
    [error] = item["errors"]
    assert (error["loc"], error["type"]) == ("ts", type_)


def test_message_names_the_limit(
    settings: Settings, engine: Engine, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    client = _client(settings, engine)
    r = client.post("/v1/events", json=[raw_event(ts="2099-01-01T00:00:00Z")], headers=device_key())
    [error] = r.json()["errors"][0]["errors"]
    assert error["msg"] == (
        "event time 2099-01-01T00:00:00+00:00 is more than 300 s ahead of the server clock "
        "(2026-11-02T12:00:00+00:00)"
    )


def test_bounds_come_from_settings(
    settings: Settings, engine: Engine, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    tight = settings.model_copy(
        update={"event_max_future_skew_s": 0.0, "event_min_date": datetime(2026, 11, 2).date()}
    )
    client = _client(tight, engine)
    events = [
        raw_event(ts="2026-11-02T12:00:00+00:00"),  # exactly now: accepted
        raw_event(ts="2026-11-02T12:00:01+00:00"),  # one second ahead
        raw_event(ts="2026-11-01T23:59:59+00:00"),  # the day before the floor
    ]
    body = client.post("/v1/events", json=events, headers=device_key()).json()
    assert body["accepted"] == 1
    assert [(e["index"], e["errors"][0]["type"]) for e in body["errors"]] == [
        (1, "event_time_in_future"),
        (2, "event_time_too_early"),
    ]


def test_nested_times_are_bounded_too(
    settings: Settings, engine: Engine, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    client = _client(settings, engine)
    visit = raw_event(
        "vision.visit",
        ts="2026-11-02T11:00:00+00:00",
        payload={"visit_id": "v-1", "started_at": "2099-01-01T00:00:00Z", "dwell_s": 10.0},
    )
    body = client.post("/v1/events", json=[visit], headers=device_key()).json()
    assert body["errors"][0]["errors"][0]["loc"] == "payload.started_at"
