"""Store insights against planted truth: the simulator hides an attractive fixture whose
products rarely sell and a zone few people visit; the findings must name exactly those."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from storelens.core.layout import load_layout
from storelens.instore.insights import StoreInsights
from storelens.instore.insights_data import (
    InsightInputs,
    insights_of,
    local_period,
    sale_lines,
)
from storelens.instore.processor import batch_facts, read_event_file
from storelens.sim import default_layout_path, run_simulation
from storelens.sim.apparel import apparel_catalogue
from storelens.sim.config import SimConfig

APPAREL = Path(str(files("storelens.samples").joinpath("layouts", "apparel.toml")))
PLANTED = SimConfig(attractive_fixture="new-arrivals", cold_zone="sale-rack")


def simulated_insights(
    out: Path, config: SimConfig, days: int = 2
) -> tuple[StoreInsights, dict[str, Any]]:
    summary = run_simulation(APPAREL, days, 7, out, config=config)
    layout = load_layout(APPAREL)
    events = read_event_file(summary.events_path)
    facts, _ = batch_facts(events, [layout])
    last = config.start_date + timedelta(days=days - 1)
    since, until = local_period(config.start_date, last, layout.timezone)
    inputs = InsightInputs(
        layout=layout,
        since=since,
        until=until,
        visits=facts.zone_visits,
        sales=sale_lines(events, layout.store_id),
        product_zones={p.product_id: p.zone_id for p in apparel_catalogue()[0]},
        heat=[],
    )
    return insights_of(inputs), json.loads(summary.truth_path.read_text())


def named(insights: StoreInsights, kind: str) -> list[str]:
    return [f.zone_id for f in insights.findings if f.kind == kind]


def test_findings_name_the_planted_fixture_and_cold_zone_and_nothing_else(
    tmp_path: Path,
) -> None:
    insights, truth = simulated_insights(tmp_path, PLANTED)
    assert truth["planted"] == {"attractive_fixture": "new-arrivals", "cold_zone": "sale-rack"}
    assert named(insights, "high_traffic_low_sales") == [truth["planted"]["attractive_fixture"]]
    assert named(insights, "cold_zone") == [truth["planted"]["cold_zone"]]
    lure = next(z for z in insights.zones if z.zone_id == "new-arrivals")
    busiest_aisle = max(z.visits for z in insights.zones if z.kind == "aisle")
    assert lure.visits > 1.5 * busiest_aisle
    finding = insights.of_kind("high_traffic_low_sales")[0]
    assert finding.numbers["visits"] == lure.visits
    assert finding.sentence.startswith(
        f"New arrivals draws people but does not sell: {lure.visits:,}"
    )


def test_without_planting_the_same_store_has_neither_finding(tmp_path: Path) -> None:
    insights, truth = simulated_insights(tmp_path, SimConfig())
    assert "planted" not in truth
    assert named(insights, "high_traffic_low_sales") == []
    assert named(insights, "cold_zone") == []


def test_planting_a_zone_nobody_can_browse_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="planted zone 'checkout' is not an aisle or fixture"):
        run_simulation(APPAREL, 1, 7, tmp_path, config=replace(PLANTED, cold_zone="checkout"))
    with pytest.raises(ValueError, match="is a café: planting"):
        run_simulation(default_layout_path(), 1, 7, tmp_path, config=PLANTED)
    with pytest.raises(ValueError, match="both attractive and cold"):
        SimConfig(attractive_fixture="denim", cold_zone="denim")
    with pytest.raises(ValueError, match="shares must lie between 0 and 1"):
        SimConfig(attractive_share=1.5)
