from __future__ import annotations

import json
from collections import Counter
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from storelens.core.events import event_adapter
from storelens.sim import run_simulation

BROWSE = {"new-arrivals", "denim", "womens", "mens", "accessories", "sale-rack"}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    layout = Path(str(files("storelens.samples").joinpath("layouts", "apparel.toml")))
    summary = run_simulation(layout, 2, 7, tmp_path_factory.mktemp("apparel"))
    lines = summary.events_path.read_text().splitlines()
    for line in lines[::50]:
        event_adapter.validate_json(line)
    return [json.loads(line) for line in lines], json.loads(summary.truth_path.read_text())


def test_shoppers_browse_then_some_queue_and_pay(
    shop: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, truth = shop
    types = Counter(e["type"] for e in events)
    assert not {"order.started", "order.ready", "staff.clock_in"} & set(types)
    assert truth["baristas"] == [] and truth["staff_tracks"] == []
    buyers = 0
    for visit in truth["visits"]:
        zones = [z["zone_id"] for z in visit["zones"]]
        assert zones[0] == zones[-1] == "entrance"
        browsed = [z for z in zones[1:-1] if z in BROWSE]
        assert 1 <= len(browsed) <= 4
        if "checkout" in zones:
            buyers += 1
            assert zones[-3:] == ["queue", "checkout", "entrance"]
    assert buyers == len(truth["orders"]) == types["pos.order_paid"]
    assert 0.28 < buyers / len(truth["visits"]) < 0.42
    for order in truth["orders"]:
        assert order["register_id"] in {"reg-1", "reg-2"} and order["drinks"] == 0
        assert order["started_at"] is None and order["fulfillment_s"] is None


def test_checkout_queue_is_fifo(shop: tuple[list[dict[str, Any]], dict[str, Any]]) -> None:
    _, truth = shop
    entries = sorted((q["queue_enter"], q["counter_enter"]) for q in truth["queue"])
    counters = [counter for _, counter in entries]
    assert counters == sorted(counters)
    assert all(q["wait_s"] >= 3.0 for q in truth["queue"])
