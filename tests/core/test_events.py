"""The envelope: every type validates, and every bad case names the field at fault."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from storelens.core.events import (
    EVENT_TYPES,
    STORE_BOUND_TYPES,
    OrderPaidEvent,
    event_adapter,
    make_event,
)
from storelens.ingest.batch import validate_items

RawEvent = Callable[..., dict[str, Any]]


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
def test_every_type_validates(raw_event: RawEvent, type_: str) -> None:
    event = event_adapter.validate_python(raw_event(type_))
    assert event.type == type_
    assert isinstance(event, EVENT_TYPES[type_])


def test_timestamps_are_normalised_to_utc(raw_event: RawEvent) -> None:
    event = event_adapter.validate_python(raw_event(ts="2026-11-02T09:30:00+01:00"))
    assert event.ts == datetime(2026, 11, 2, 8, 30, tzinfo=UTC)
    assert event.ts.utcoffset() is not None and event.ts.utcoffset().total_seconds() == 0


def test_make_event_fills_id_and_time() -> None:
    event = make_event(
        "sensor.espresso_shot", {"machine_id": "m-1"}, source="m-1", store_id="cafe-01"
    )
    assert event.id.version == 4
    assert (datetime.now(UTC) - event.ts).total_seconds() < 5


def test_order_total() -> None:
    event = event_adapter.validate_python(
        {
            "id": "6f1f2c3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f",
            "type": "pos.order_paid",
            "ts": "2026-11-02T08:00:00Z",
            "source": "pos",
            "store_id": "s",
            "payload": {
                "order_id": "o",
                "lines": [
                    {"product_id": "a", "qty": 2, "unit_price": 1.25},
                    {"product_id": "b", "qty": 1, "unit_price": 3},
                ],
            },
        }
    )
    assert isinstance(event, OrderPaidEvent)
    assert event.payload.total == 5.5


def _errors(item: dict[str, Any]) -> list[tuple[str, str]]:
    valid, rejected = validate_items([item])
    assert valid == []
    assert len(rejected) == 1
    return [(e.loc, e.type) for e in rejected[0].errors]


BAD_CASES: list[tuple[str, str, dict[str, Any], str, str]] = [
    # (name, type, overrides, expected loc, expected error type)
    ("unknown type", "pos.order_paid", {"type": "pos.refund"}, "(event)", "union_tag_invalid"),
    ("naive timestamp", "pos.order_paid", {"ts": "2026-11-02T08:30:00"}, "ts", "timezone_aware"),
    ("bad uuid", "pos.order_paid", {"id": "not-a-uuid"}, "id", "uuid_parsing"),
    ("store event without store", "order.ready", {"store_id": None}, "store_id", "string_type"),
    ("blank source", "web.event", {"source": ""}, "source", "string_too_short"),
    ("id with spaces", "web.event", {"subject": "two words"}, "subject", "string_pattern_mismatch"),
    ("unknown envelope field", "web.event", {"colour": "red"}, "colour", "extra_forbidden"),
    ("consent without subject", "consent.changed", {"subject": None}, "subject", "string_type"),
]


@pytest.mark.parametrize(
    ("name", "type_", "overrides", "loc", "err"), BAD_CASES, ids=[c[0] for c in BAD_CASES]
)
def test_bad_envelope_names_the_field(
    raw_event: RawEvent, name: str, type_: str, overrides: dict[str, Any], loc: str, err: str
) -> None:
    assert (loc, err) in _errors(raw_event(type_, **overrides))


BAD_PAYLOADS: list[tuple[str, str, dict[str, Any], str, str]] = [
    (
        "zero quantity",
        "pos.order_paid",
        {"order_id": "o", "lines": [{"product_id": "a", "qty": 0, "unit_price": 1}]},
        "payload.lines.0.qty",
        "greater_than",
    ),
    (
        "negative price",
        "pos.order_paid",
        {"order_id": "o", "lines": [{"product_id": "a", "qty": 1, "unit_price": -2}]},
        "payload.lines.0.unit_price",
        "greater_than_equal",
    ),
    (
        # two such lines made an order total of infinity, served as null (a fuzz find)
        "price past any till's",
        "pos.order_paid",
        {"order_id": "o", "lines": [{"product_id": "a", "qty": 2, "unit_price": 1e308}]},
        "payload.lines.0.unit_price",
        "less_than_equal",
    ),
    ("no lines", "pos.order_paid", {"order_id": "o", "lines": []}, "payload.lines", "too_short"),
    (
        "bad currency",
        "pos.order_paid",
        {
            "order_id": "o",
            "currency": "euro",
            "lines": [{"product_id": "a", "qty": 1, "unit_price": 1}],
        },
        "payload.currency",
        "string_pattern_mismatch",
    ),
    (
        "typo in payload",
        "order.handed_off",
        {"order_id": "o", "staf_id": "x"},
        "payload.staf_id",
        "extra_forbidden",
    ),
    ("handoff without staff", "order.handed_off", {"order_id": "o"}, "payload.staff_id", "missing"),
    (
        "nan position",
        "vision.track",
        {"camera_id": "c", "track_id": "t", "x": "nan", "y": 1},
        "payload.x",
        "finite_number",
    ),
    (
        "line crossed sideways",
        "vision.line_crossed",
        {"line_id": "door", "track_id": "t", "direction": "sideways"},
        "payload.direction",
        "literal_error",
    ),
    (
        "heatmap of the wrong shape",
        "vision.heatmap",
        {"period_s": 60, "cell_m": 0.5, "rows": 2, "cols": 2, "values": [1, 2, 3]},
        "payload",
        "value_error",
    ),
    (
        "bad email",
        "customer.upserted",
        {"source_system": "crm", "source_record_id": "1", "email": "nope"},
        "payload.email",
        "value_error",
    ),
    (
        "unknown web action",
        "web.event",
        {"session_id": "s", "action": "dance"},
        "payload.action",
        "literal_error",
    ),
    (
        "unknown consent purpose",
        "consent.changed",
        {"purpose": "selling", "granted": True},
        "payload.purpose",
        "literal_error",
    ),
]


@pytest.mark.parametrize(
    ("name", "type_", "payload", "loc", "err"), BAD_PAYLOADS, ids=[c[0] for c in BAD_PAYLOADS]
)
def test_bad_payload_names_the_field(
    raw_event: RawEvent, name: str, type_: str, payload: dict[str, Any], loc: str, err: str
) -> None:
    assert (loc, err) in _errors(raw_event(type_, payload=payload))


def test_missing_type_is_reported() -> None:
    assert _errors({"id": "x"}) == [("(event)", "union_tag_not_found")]


def test_non_object_item_is_rejected_not_crashing() -> None:
    valid, rejected = validate_items([42, "text", None])
    assert valid == []
    assert [r.index for r in rejected] == [0, 1, 2]


def test_one_bad_item_does_not_sink_the_batch(raw_event: RawEvent) -> None:
    items = [raw_event(), raw_event(ts="yesterday"), raw_event("web.event")]
    valid, rejected = validate_items(items)
    assert [e.type for e in valid] == ["pos.order_paid", "web.event"]
    assert [(r.index, r.errors[0].loc) for r in rejected] == [(1, "ts")]
    assert rejected[0].id == items[1]["id"]


def test_store_scope_rejects_other_stores(raw_event: RawEvent) -> None:
    valid, rejected = validate_items(
        [raw_event(store_id="cafe-01"), raw_event(store_id="cafe-02")], store_scope="cafe-01"
    )
    assert [e.store_id for e in valid] == ["cafe-01"]
    assert rejected[0].index == 1 and rejected[0].errors[0].type == "store_scope"


def test_store_bound_types_are_the_in_store_ones() -> None:
    assert "pos.order_paid" in STORE_BOUND_TYPES and "vision.track" in STORE_BOUND_TYPES
    assert "customer.upserted" not in STORE_BOUND_TYPES and "web.event" not in STORE_BOUND_TYPES


def test_events_are_immutable(raw_event: RawEvent) -> None:
    event = event_adapter.validate_python(raw_event())
    with pytest.raises(ValidationError):
        event.source = "other"  # type: ignore[misc]
