"""Zone traffic against sales and the findings drawn from it, on hand-made facts."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from storelens.core.dayparts import daypart_of_hour
from storelens.instore.facts import ZoneVisit
from storelens.instore.insights import (
    cold_zones,
    find_insights,
    high_traffic_low_sales,
    new_product_spots,
    points_of_interest,
    store_insights,
)
from storelens.instore.insights_settings import InsightSettings
from storelens.instore.zone_traffic import FloorZone, SaleLine, ZoneTraffic, zone_traffic

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)
ZONES = [
    FloorZone("entrance", "Entrance", "entrance", 4.0),
    FloorZone("shelf-a", "Shelf A", "fixture", 6.0),
    FloorZone("aisle-b", "Aisle B", "aisle", 10.0),
    FloorZone("bar", "Bar", "staff_only", 8.0),
]


def at(hour: int, minute: int = 0, day: int = 2) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=BERLIN)


def visit(track: str, zone: str, enter: datetime, dwell_s: float, staff: bool = False) -> ZoneVisit:
    return ZoneVisit("s1", track, zone, enter, enter + timedelta(seconds=dwell_s), staff)


def test_zone_rows_count_visits_stoppers_and_placed_sales_exactly() -> None:
    visits = [
        visit("t1", "shelf-a", at(9), 5),
        visit("t1", "shelf-a", at(9, 5), 20),
        visit("t2", "shelf-a", at(10), 30),
        visit("staff-1", "shelf-a", at(10), 300, staff=True),  # staff are not customers
        visit("staff-1", "bar", at(10), 3000, staff=True),
        visit("t2", "aisle-b", at(10, 1), 9.9),
    ]
    sales = [
        SaleLine(at(9, 10), "p-a", 2, 7.0),
        SaleLine(at(9, 11), "p-a", 1, 3.5, channel="mobile"),  # chosen away from the shelf
        SaleLine(at(9, 12), "p-loose", 4, 4.0),  # placed nowhere
    ]
    placed = {"p-a": "shelf-a", "p-loose": None, "p-bar": "bar"}
    rows = {r.zone_id: r for r in zone_traffic(ZONES, visits, sales, placed, timezone=TZ)}

    assert set(rows) == {"entrance", "shelf-a", "aisle-b"}
    shelf = rows["shelf-a"]
    assert (shelf.visits, shelf.unique_visitors) == (3, 2)
    assert (shelf.mean_dwell_s, shelf.median_dwell_s) == (18.3, 20.0)
    assert (shelf.passers_by, shelf.stoppers) == (1, 2)
    assert (shelf.units, shelf.revenue, shelf.merchandised) == (2, 7.0, True)
    assert shelf.sales_per_100_visits == 66.67
    assert shelf.revenue_per_visitor_minute == round(7.0 / (55 / 60), 4)
    aisle = rows["aisle-b"]
    assert (aisle.visits, aisle.stoppers, aisle.passers_by) == (1, 0, 1)
    assert aisle.merchandised is False and aisle.sales_per_100_visits is None
    entrance = rows["entrance"]
    assert (entrance.visits, entrance.mean_dwell_s, entrance.median_dwell_s) == (0, None, None)


def test_rows_by_daypart_and_day_follow_the_store_clock_and_the_window() -> None:
    visits = [
        visit("t1", "aisle-b", at(7, 30), 60),  # morning
        visit("t2", "aisle-b", at(12), 60),  # midday
        visit("t3", "aisle-b", at(23), 60),  # night: outside every daypart
        visit("t4", "aisle-b", at(8, day=3), 60),
        visit("t5", "aisle-b", at(8, day=4), 60),  # after the window
    ]
    since, until = at(0), at(0, day=4)
    parts = zone_traffic(ZONES, visits, [], {}, timezone=TZ, by="daypart", since=since, until=until)
    got = [(r.period, r.visits) for r in parts if r.zone_id == "aisle-b"]
    assert got == [("morning", 2), ("midday", 1), ("night", 1)]
    days = zone_traffic(ZONES, visits, [], {}, timezone=TZ, by="day", since=since, until=until)
    got = [(r.period, r.visits) for r in days if r.zone_id == "aisle-b"]
    assert got == [("2026-11-02", 3), ("2026-11-03", 1)]
    assert [daypart_of_hour(h) for h in (5, 6, 10, 11, 14, 17, 21, 22)] == [
        "night", "morning", "morning", "midday", "afternoon", "evening", "evening", "night",
    ]  # fmt: skip
    with pytest.raises(ValueError, match="by must be"):
        zone_traffic(ZONES, visits, [], {}, timezone=TZ, by="week")


def row(
    zone: str, kind: str, visits: int, stoppers: int, units: int, placed: bool = True
) -> ZoneTraffic:
    return ZoneTraffic(
        zone, zone.title(), kind, "all", visits, visits, visits * 30.0, 30.0, 30.0,
        visits - stoppers, stoppers, placed, units, units * 10.0,
    )  # fmt: skip


ROWS = [
    row("entrance", "entrance", 900, 0, 0, placed=False),
    row("lure", "fixture", 600, 500, 3),  # busiest shelf, sells least per visit
    row("denim", "aisle", 400, 300, 80),
    row("womens", "aisle", 380, 200, 120),
    row("mens", "aisle", 360, 350, 20),  # sells little, but is not busy
    row("tees", "fixture", 300, 250, 90),
    row("sale", "fixture", 90, 80, 40),  # far below the typical shelf
]


def test_findings_name_exactly_the_zones_the_thresholds_pick() -> None:
    settings = InsightSettings()
    assert [f.zone_id for f in high_traffic_low_sales(ROWS, settings)] == ["lure"]
    # browse-zone visits: 600 400 380 360 300 90 -> median 370, cold below 185
    cold = cold_zones(ROWS, settings)
    assert [f.zone_id for f in cold] == ["sale"]
    assert cold[0].numbers == {"visits": 90, "median_zone_visits": 370, "share_of_median": 0.2432}
    assert "Sale is a cold zone: 90 visits against 370" in cold[0].sentence
    # says what the median is over (a newcomer read "a typical zone" as the whole floor)
    assert "the median of the store's 6 aisle and fixture zones (24% of it" in cold[0].sentence
    assert [f.zone_id for f in points_of_interest(ROWS, settings)] == ["lure", "mens", "denim"]
    assert [f.zone_id for f in new_product_spots(ROWS, settings)] == ["lure", "tees"]
    kinds = [f.kind for f in find_insights(ROWS, settings)]
    assert kinds[:2] == ["high_traffic_low_sales", "cold_zone"]


def test_thresholds_are_settings() -> None:
    loose = InsightSettings(cold_share=0.9, poi_count=1, placement_count=1, stop_s=5)
    assert [f.zone_id for f in cold_zones(ROWS, loose)] == ["sale", "tees"]
    assert [f.zone_id for f in points_of_interest(ROWS, loose)] == ["lure"]
    # Too few visits anywhere: no verdict on sales, however low.
    assert high_traffic_low_sales(ROWS, InsightSettings(min_visits=1000)) == []
    assert high_traffic_low_sales(ROWS[:3], InsightSettings()) == []  # two shelves: no typical one
    for bad in ({"cold_share": 0}, {"stop_s": -1}, {"poi_count": 0}):
        with pytest.raises(ValueError):
            InsightSettings(**bad)  # type: ignore[arg-type]


def test_store_insights_bundles_tables_and_findings_as_json() -> None:
    visits = [visit(f"t{i}", "shelf-a", at(9, i), 12) for i in range(5)]
    result = store_insights(
        store_id="s1",
        store_name="Shop",
        timezone=TZ,
        since=at(0),
        until=at(0, day=3),
        zones=ZONES,
        visits=visits,
        sales=[SaleLine(at(9, 30), "p-a", 1, 2.5)],
        product_zones={"p-a": "shelf-a"},
    )
    data = result.as_dict()
    assert data["since"] == "2026-11-02T00:00:00+01:00"
    assert [z["zone_id"] for z in data["zones"]] == ["entrance", "shelf-a", "aisle-b"]
    assert [
        (z["period"], z["visits"]) for z in data["by_daypart"] if z["zone_id"] == "shelf-a"
    ] == [("morning", 5)]
    found = [(f["kind"], f["zone_id"]) for f in data["findings"]]
    assert found == [
        ("cold_zone", "aisle-b"),  # nobody went there: a zero is cold, not missing
        ("point_of_interest", "shelf-a"),
        ("new_product_spot", "shelf-a"),
    ]
    assert data["findings"][1]["numbers"]["stoppers"] == 5
    assert np.isclose(data["zones"][1]["revenue_per_visitor_minute"], 2.5)


def test_ranks_alone_are_no_verdict_on_a_fixture() -> None:
    """Four shelves within a few visits and a few sales of each other: the busiest one
    was also in the bottom half by sales per visit, so the old rule (top third by
    visits, bottom third by sales) said it "draws people but does not sell" at 101
    visits against a typical 98 and 27.7 sold per 100 visits against a typical 29.5.
    Ordinary day-to-day noise; a manager would move stock for nothing."""
    even = [
        row("tops", "fixture", 101, 90, 28),
        row("denim", "aisle", 99, 90, 31),
        row("womens", "aisle", 97, 90, 31),
        row("mens", "aisle", 95, 90, 25),
    ]
    assert high_traffic_low_sales(even, InsightSettings()) == []


def test_high_traffic_low_sales_needs_a_clear_gap_on_both_counts() -> None:
    shelves = [
        row("lure", "fixture", 250, 200, 10),  # 2.5x the typical visits, 4 sold per 100
        row("denim", "aisle", 100, 90, 30),
        row("womens", "aisle", 100, 90, 30),
        row("mens", "aisle", 120, 90, 36),  # busy and selling: not a finding
    ]
    (finding,) = high_traffic_low_sales(shelves, InsightSettings())
    assert finding.zone_id == "lure"
    assert finding.numbers == {
        "visits": 250,
        "median_zone_visits": 110.0,
        "units": 10,
        "revenue": 100.0,
        "sales_per_100_visits": 4.0,
        "median_sales_per_100_visits": 30.0,
    }
    assert finding.sentence.startswith(
        "Lure draws people but does not sell: 250 visits (2.3x the typical zone's 110), "
        "yet only 4.0 items sold per 100 visits (13% of the typical zone's 30.0)."
    )
    # Half again as busy is not enough when the bar is twice as busy, and 13 % of the
    # typical sales is not low enough when the bar is 10 %.
    assert high_traffic_low_sales(shelves, InsightSettings(busy_share=2.5)) == []
    assert high_traffic_low_sales(shelves, InsightSettings(weak_share=0.1)) == []
    for bad in ({"busy_share": 1.0}, {"weak_share": 0}, {"weak_share": 1.0}):
        with pytest.raises(ValueError):
            InsightSettings(**bad)
