from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storelens.catalogue import DRINK_CATEGORIES, load_catalogue
from storelens.core.events import Event, event_adapter
from storelens.demo.sampleday import ZONE_LAYOUT, generate_day, load_customers, write_jsonl


@pytest.fixture(scope="module")
def day_events() -> list[Event]:
    return generate_day()


def test_same_seed_gives_identical_events(day_events: list[Event]) -> None:
    again = generate_day()
    assert [e.model_dump_json() for e in again] == [e.model_dump_json() for e in day_events]


def test_different_seed_gives_different_events(day_events: list[Event]) -> None:
    other = generate_day(seed=8)
    assert {e.id for e in other}.isdisjoint({e.id for e in day_events})
    assert [e.model_dump_json() for e in other] != [e.model_dump_json() for e in day_events]


def test_other_store_same_seed_has_distinct_ids(day_events: list[Event]) -> None:
    other = generate_day(store_id="cafe-02")
    assert {e.id for e in other}.isdisjoint({e.id for e in day_events})
    assert {e.store_id for e in other if e.store_id} == {"cafe-02"}


def test_sorted_and_within_opening_hours(day_events: list[Event]) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    opens = datetime.combine(date(2026, 11, 2), time(7), tzinfo=berlin)
    closes = datetime.combine(date(2026, 11, 2), time(19), tzinfo=berlin)
    stamps = [e.ts for e in day_events]
    assert stamps == sorted(stamps)
    assert all(opens <= ts <= closes for ts in stamps)
    assert all(ts.tzinfo is not None and ts.utcoffset() == timedelta(0) for ts in stamps)
    assert len({e.id for e in day_events}) == len(day_events)


def test_volume_and_types(day_events: list[Event]) -> None:
    types = {e.type for e in day_events}
    assert types == {
        "pos.order_paid",
        "order.started",
        "order.ready",
        "order.handed_off",
        "sensor.espresso_shot",
        "vision.track",
        "vision.zone_enter",
        "vision.zone_exit",
        "customer.upserted",
        "web.event",
        "consent.changed",
    }
    visits = [
        e for e in day_events if e.type == "vision.zone_enter" and e.payload.zone_id == "entrance"
    ]
    assert 300 <= len(visits) <= 500
    assert sum(e.type == "customer.upserted" for e in day_events) == len(load_customers())


def test_every_handoff_follows_its_payment(day_events: list[Event]) -> None:
    paid = {
        (e.store_id, e.payload.order_id): e.ts for e in day_events if e.type == "pos.order_paid"
    }
    handoffs = [e for e in day_events if e.type == "order.handed_off"]
    assert len(handoffs) == len(paid)
    for event in handoffs:
        delay = event.ts - paid[(event.store_id, event.payload.order_id)]
        assert timedelta(seconds=30) <= delay <= timedelta(minutes=20)


def test_espresso_shots_match_the_drinks(day_events: list[Event]) -> None:
    shots_per_product = {
        p.product_id: int(p.attributes.get("espresso_shots", 0)) for p in load_catalogue()
    }
    expected = sum(
        shots_per_product[line.product_id] * line.qty
        for e in day_events
        if e.type == "pos.order_paid"
        for line in e.payload.lines
    )
    assert sum(e.type == "sensor.espresso_shot" for e in day_events) == expected


def test_every_event_round_trips(day_events: list[Event]) -> None:
    for event in day_events:
        assert event_adapter.validate_json(event.model_dump_json()) == event


def test_customer_ids_are_known_loyalty_ids(day_events: list[Event]) -> None:
    loyalty_ids = {row["loyalty_id"] for row in load_customers() if row["loyalty_id"]}
    orders = [e for e in day_events if e.type == "pos.order_paid"]
    members = [e for e in orders if e.payload.customer_id is not None]
    assert members, "some visits should be made by loyalty members"
    for event in members:
        assert event.payload.customer_id in loyalty_ids
        assert event.subject == event.payload.customer_id
    assert all(e.subject is None for e in orders if e.payload.customer_id is None)
    consents = [e for e in day_events if e.type == "consent.changed"]
    assert consents
    assert all(e.subject in loyalty_ids for e in consents)


def test_chain_wide_events_have_no_store(day_events: list[Event]) -> None:
    for event in day_events:
        if event.type in ("web.event", "customer.upserted", "consent.changed"):
            assert event.store_id is None
        else:
            assert event.store_id == "cafe-01"


def test_customers_param_sets_visit_count() -> None:
    events = generate_day(customers=20, seed=3)
    assert sum(e.type == "pos.order_paid" for e in events) == 20


def test_timezone_shifts_utc_timestamps() -> None:
    events = generate_day(customers=5, tz="UTC")
    opens = datetime(2026, 11, 2, 7, tzinfo=UTC)
    assert min(e.ts for e in events) == opens


def test_catalogue() -> None:
    catalogue = load_catalogue()
    assert len(catalogue) >= 25
    assert len({p.product_id for p in catalogue}) == len(catalogue)
    assert all(p.price > 0 for p in catalogue)
    drinks = [p for p in catalogue if p.category in DRINK_CATEGORIES]
    assert drinks
    for drink in drinks:
        shots = drink.attributes.get("espresso_shots")
        assert isinstance(shots, int)
        assert not isinstance(shots, bool)
        assert shots in (0, 1, 2)


def test_customers_export_has_near_duplicates() -> None:
    rows = load_customers()
    assert 50 <= len(rows) <= 80
    assert len({r["source_record_id"] for r in rows}) == len(rows)
    assert all(r["email"].endswith(("@example.com", "@example.org")) for r in rows)
    phones = [r["phone"] for r in rows if r["phone"]]
    assert len(phones) != len(set(phones)), "some records should share a phone number"


def test_write_jsonl_round_trips(day_events: list[Event], tmp_path: Path) -> None:
    target = tmp_path / "day.jsonl"
    assert write_jsonl(iter(day_events), target) == len(day_events)
    lines = target.read_text(encoding="utf-8").splitlines()
    assert [event_adapter.validate_json(line) for line in lines] == day_events


def test_zones_mirror_the_cafe_layout(day_events: list[Event]) -> None:
    layout_path = Path(__file__).parents[2] / "src/storelens/samples/layouts/cafe.toml"
    layout = tomllib.loads(layout_path.read_text(encoding="utf-8"))
    boxes = {
        zone["id"]: (
            min(x for x, _ in zone["polygon"]),
            min(y for _, y in zone["polygon"]),
            max(x for x, _ in zone["polygon"]),
            max(y for _, y in zone["polygon"]),
        )
        for zone in layout["zones"]
    }
    covers = {camera["id"]: set(camera["covers"]) for camera in layout["cameras"]}
    for zone_id, (camera, box) in ZONE_LAYOUT.items():
        assert boxes[zone_id] == box
        assert camera is None or zone_id in covers[camera]
    width, height = layout["floor"]["width_m"], layout["floor"]["height_m"]
    points = [e.payload for e in day_events if e.type == "vision.track"]
    assert all(0 <= p.x <= width and 0 <= p.y <= height for p in points)
    entered = {e.payload.zone_id for e in day_events if e.type == "vision.zone_enter"}
    assert entered == set(ZONE_LAYOUT)
