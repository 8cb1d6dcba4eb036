"""A heat grid must fit its store's floor plan, over HTTP and MQTT alike.

Insights leave out grids of a shape other than the floor plan's, but only when they
are read; a grid of another shape was stored without a word, and one that crafted
many of them could make the "most common shape" vote drop every camera. A store with
a layout now refuses such a grid on its own, naming the field, like any other
invalid event; a store without one takes any shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens import stores
from storelens.core.events import heat_cell_limit
from storelens.ingest.deadletters import list_dead_letters
from storelens.ingest.mqtt_messages import ReceivedMessage
from storelens.ingest.mqtt_writer import store_messages
from storelens.samples import sample_layout_path
from storelens.storage.eventlog import EventLog, EventQuery

RawEvent = Callable[..., dict[str, Any]]
DeviceKey = Callable[..., dict[str, str]]

CAFE_ROWS, CAFE_COLS = 18, 28  # the café's 14 x 9 m floor in 0.5 m cells


def _heat(raw_event: RawEvent, rows: int, cols: int, **envelope: Any) -> dict[str, Any]:
    payload = {"period_s": 900, "cell_m": 0.5, "rows": rows, "cols": cols,
               "values": [1.0] * (rows * cols)}  # fmt: skip
    return raw_event("vision.heatmap", source="vision", payload=payload, **envelope)


def _cafe_with_layout(engine: Engine) -> None:
    with engine.begin() as conn:
        stores.load_layout_file(conn, sample_layout_path())  # store cafe-01


def test_a_grid_that_does_not_fit_the_floor_plan_is_refused_naming_the_field(
    client: TestClient, engine: Engine, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    _cafe_with_layout(engine)
    fits = _heat(raw_event, CAFE_ROWS, CAFE_COLS)
    short = _heat(raw_event, CAFE_ROWS - 1, CAFE_COLS)
    narrow = _heat(raw_event, CAFE_ROWS, 2)
    r = client.post("/v1/events", json=[fits, short, narrow], headers=device_key())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["rejected"]) == (1, 2)
    errors = {e["index"]: e["errors"] for e in body["errors"]}
    assert [(e["loc"], e["type"]) for e in errors[1]] == [("payload.rows", "floor_plan")]
    assert [(e["loc"], e["type"]) for e in errors[2]] == [("payload.cols", "floor_plan")]
    assert "18 x 28" in errors[1][0]["msg"] and "14 x 9 m" in errors[1][0]["msg"]
    assert [str(e.id) for e in EventLog(engine).query(EventQuery())] == [fits["id"]]


def test_a_store_without_a_layout_takes_any_shape(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    r = client.post("/v1/events", json=[_heat(raw_event, 1, 2)], headers=device_key())
    assert r.json()["accepted"] == 1, r.text


def test_a_cell_claiming_more_people_than_fit_is_refused(
    client: TestClient, device_key: DeviceKey, raw_event: RawEvent
) -> None:
    crowd = _heat(raw_event, 1, 2)
    crowd["payload"]["values"] = [0, heat_cell_limit(0.5) * 900 + 1]
    body = client.post("/v1/events", json=[crowd], headers=device_key()).json()
    assert body["rejected"] == 1
    [error] = body["errors"][0]["errors"]
    assert (error["loc"], error["type"]) == ("payload.values", "heat_cell_limit")


def test_the_mqtt_bridge_dead_letters_a_grid_that_does_not_fit(
    engine: Engine, raw_event: RawEvent
) -> None:
    _cafe_with_layout(engine)
    fits = _heat(raw_event, CAFE_ROWS, CAFE_COLS)
    short = _heat(raw_event, 1, CAFE_COLS)
    where = "p/cafe-01/vision/vision.heatmap"
    batch = [ReceivedMessage(where, orjson.dumps(e), 1, 1, 1) for e in (fits, short)]
    outcome = store_messages(EventLog(engine), "p", batch)
    assert (outcome.appended, outcome.dead_lettered) == (1, 1)
    [dead] = list_dead_letters(engine)
    assert f"invalid event {short['id']}: payload.rows:" in dead.reason
    assert "18 x 28" in dead.reason
