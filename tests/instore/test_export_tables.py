"""The pure half of BI exports on hand-made facts: local hours on a daylight-saving day,
heat in people per m² with the zone under each cell, and empty days as empty tables of
the fixed schema."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from storelens.core.layout import load_layout
from storelens.instore.export_tables import (
    DayInputs,
    export_schema,
    heat_table,
    operations_table,
    zones_table,
)
from storelens.instore.facts import OpsFacts, OrderFact, ShiftFact, ZoneVisit
from storelens.instore.insights_data import local_period
from storelens.instore.insights_heat import HeatSample
from storelens.instore.zone_traffic import SaleLine
from storelens.sim import default_layout_path

BERLIN = ZoneInfo("Europe/Berlin")
LAYOUT = load_layout(default_layout_path())


def _day(day: date, **parts: object) -> DayInputs:
    since, until = local_period(day, day, LAYOUT.timezone)
    fields: dict[str, object] = {
        "visits": [],
        "sales": [],
        "product_zones": {},
        "heat": [],
        "facts": OpsFacts(),
        **parts,
    }
    return DayInputs(layout=LAYOUT, day=day, since=since, until=until, **fields)  # type: ignore[arg-type]


def _order(order_id: str, paid: datetime, minutes: float, register: str = "reg-1") -> OrderFact:
    done = paid + timedelta(minutes=minutes)
    return OrderFact(
        "cafe-01", order_id, "in_store", register, paid, paid, done, done, "barista-ana", 1, 1
    )


def test_hours_follow_the_local_clock_on_the_day_clocks_go_forward() -> None:
    day = date(2026, 3, 29)  # Berlin: 02:00 CET becomes 03:00 CEST
    paid = datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)
    shift = ShiftFact(
        "cafe-01",
        "barista-ana",
        datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN),
        datetime(2026, 3, 29, 5, 0, tzinfo=BERLIN),
    )
    facts = OpsFacts(orders=[_order("o-1", paid, 2), _order("o-2", paid, 4)], shifts=[shift])
    rows = operations_table(_day(day, facts=facts)).to_pylist()
    store = {r["hour"]: r for r in rows if r["dimension"] == "store"}
    assert set(store) == {None, 3, 4}  # hours with orders or someone on shift
    assert store[3]["orders"] == 2 and store[3]["fulfillment_p50_s"] == 180.0
    assert store[None]["on_shift_h"] == 2.0 and store[4]["on_shift_h"] == 1.0
    assert store[None]["drinks_per_barista_hour"] == 1.0  # 2 drinks in 2 shift hours
    ana = [r for r in rows if r["key"] == "barista-ana"]
    assert [r["hour"] for r in ana] == [None, 3, 4]
    registers = [r for r in rows if r["dimension"] == "register"]
    assert {(r["hour"], r["key"], r["fulfilled_orders"]) for r in registers} == {
        (None, "reg-1", 2),
        (3, "reg-1", 2),
    }


def test_heat_is_people_per_square_metre_with_the_zone_under_each_cell() -> None:
    day = date(2026, 11, 2)
    rows, cols, cell = 36, 56, 0.25
    values = np.zeros((rows, cols))
    values[10, 40] = 900.0  # x 10.125 m, y 2.625 m: the pickup counter
    values[30, 2] = 450.0  # x 0.625 m, y 7.625 m: the window seats
    ends = [datetime(2026, 11, 2, 8, 15, tzinfo=BERLIN), datetime(2026, 11, 2, 15, 15, tzinfo=UTC)]
    heat = [HeatSample(ts, 900.0, cell, values) for ts in ends]
    table = heat_table(_day(day, heat=heat))
    found = {(r["daypart"], r["zone_id"]): r["people_per_m2"] for r in table.to_pylist()}
    # all day: 1,800 person-seconds over 1,800 s of observation on a 0.0625 m² cell
    assert found["all", "pickup"] == pytest.approx(1800 / 1800 / 0.0625)
    assert found["all", "window-seats"] == pytest.approx(900 / 1800 / 0.0625)
    assert found["morning", "pickup"] == pytest.approx(900 / 900 / 0.0625)
    assert found["afternoon", "pickup"] == pytest.approx(900 / 900 / 0.0625)  # 16:00 local
    assert {d for d, _ in found} == {"all", "morning", "afternoon"}
    assert table.num_rows == 6  # two hot cells in three periods; empty cells left out


def test_zones_count_visits_and_sales_per_daypart_and_whole_day() -> None:
    day = date(2026, 11, 2)
    at = datetime(2026, 11, 2, 9, 0, tzinfo=BERLIN)
    visits = [
        ZoneVisit("cafe-01", f"t{i}", "counter", at, at + timedelta(seconds=5 + 10 * i), False)
        for i in range(3)
    ] + [ZoneVisit("cafe-01", "staff", "counter", at, at + timedelta(minutes=5), True)]
    sales = [SaleLine(at + timedelta(hours=4), "latte", 2, 7.0)]
    inputs = _day(day, visits=visits, sales=sales, product_zones={"latte": "counter"})
    rows = zones_table(inputs).to_pylist()
    counter = {r["daypart"]: r for r in rows if r["zone_id"] == "counter"}
    assert set(counter) == {"all", "morning", "midday"}
    assert (counter["all"]["visits"], counter["all"]["stoppers"]) == (3, 2)  # staff left out
    assert counter["morning"]["units"] == 0 and counter["midday"]["units"] == 2
    assert counter["all"]["sales_per_100_visits"] == pytest.approx(200 / 3, abs=0.01)
    assert "bar" not in {r["zone_id"] for r in rows}  # staff-only zones are not exported


def test_an_empty_day_gives_empty_tables_of_the_fixed_schema() -> None:
    empty = _day(date(2026, 11, 2))
    for name, table in (
        ("zones", zones_table(empty)),
        ("operations", operations_table(empty)),
        ("heat", heat_table(empty)),
    ):
        assert table.num_rows == 0
        assert table.schema.equals(export_schema(name), check_metadata=True)  # type: ignore[arg-type]
        units = {f.name: f.metadata[b"unit"] for f in table.schema if f.metadata}
        assert all(isinstance(u, bytes) for u in units.values())
