from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

import pytest

from storelens.catalogue import DRINK_CATEGORIES, load_catalogue

if TYPE_CHECKING:
    from conftest import SimRun


def _by_order(run: SimRun, type_: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for event in run.of(type_):
        order_id = event["payload"]["order_id"]
        assert order_id not in found, f"two {type_} events for {order_id}"
        found[order_id] = event
    return found


def test_every_order_moves_forward_and_matches_truth(week: SimRun) -> None:
    paid = _by_order(week, "pos.order_paid")
    started = _by_order(week, "order.started")
    ready = _by_order(week, "order.ready")
    handed = _by_order(week, "order.handed_off")
    truth = {order["order_id"]: order for order in week.truth["orders"]}
    assert set(paid) == set(started) == set(ready) == set(handed) == set(truth)
    for order_id, order in truth.items():
        p, s, r, h = (e[order_id]["ms"] for e in (paid, started, ready, handed))
        assert p < s <= r <= h, order_id
        assert (week.ms(order["paid_at"]), week.ms(order["started_at"])) == (p, s)
        assert (week.ms(order["ready_at"]), week.ms(order["handed_off_at"])) == (r, h)
        assert round((h - p) / 1000, 3) == order["fulfillment_s"]
        assert started[order_id]["payload"]["staff_id"] == order["barista"]
        assert ready[order_id]["payload"]["staff_id"] == order["barista"]


def test_truth_counts_drinks_and_items_from_the_lines(week: SimRun) -> None:
    truth = {order["order_id"]: order for order in week.truth["orders"]}
    for event in week.of("pos.order_paid"):
        lines = event["payload"]["lines"]
        order = truth[event["payload"]["order_id"]]
        assert 1 <= len(lines) <= 4  # 1-3 picked, plus the odd bag of beans
        assert order["items"] == sum(line["qty"] for line in lines)
        drinks = sum(line["qty"] for line in lines if line["category"] in DRINK_CATEGORIES)
        assert order["drinks"] == drinks


def test_lines_carry_catalogue_names_categories_and_prices(week: SimRun) -> None:
    catalogue = {p.product_id: p for p in load_catalogue()}
    lines = Counter()
    for event in week.of("pos.order_paid"):
        payload = event["payload"]
        lines[len(payload["lines"])] += 1
        for line in payload["lines"]:
            product = catalogue[line["product_id"]]
            assert (line["name"], line["category"]) == (product.name, product.category)
            assert line["unit_price"] == product.price
    assert lines[1] > lines[2] > lines[3]  # weighted to one or two lines


def test_channels_registers_and_payment(week: SimRun) -> None:
    paid = week.of("pos.order_paid")
    channels = Counter(e["payload"]["channel"] for e in paid)
    assert set(channels) == {"in_store", "mobile"}
    assert 0.11 < channels["mobile"] / len(paid) < 0.19
    for event in paid:
        payload = event["payload"]
        if payload["channel"] == "mobile":
            assert payload["register_id"] is None
            assert payload["payment_method"] == "mobile"
        else:
            assert payload["register_id"] in {"reg-1", "reg-2"}
    registers = Counter(e["payload"]["register_id"] for e in paid)
    assert registers["reg-2"] > 0.1 * registers["reg-1"]  # the second register does serve


def test_customer_ids_are_loyalty_ids_known_to_the_crm(week: SimRun) -> None:
    upserted = {e["payload"]["loyalty_id"] for e in week.of("customer.upserted")}
    identified = 0
    for event in week.of("pos.order_paid"):
        customer = event["payload"]["customer_id"]
        assert event["subject"] == customer
        if customer is not None:
            identified += 1
            assert re.fullmatch(r"L\d{6}", customer)
            assert customer in upserted
    order_customers = {o["customer_id"] for o in week.truth["orders"]} - {None}
    assert order_customers <= upserted
    assert 0.25 < identified / len(week.of("pos.order_paid")) < 0.6


def test_espresso_shots_happen_during_their_order(week: SimRun) -> None:
    """One shot per espresso_shots x qty, by the order's barista, while it is being made."""
    shots_per_product = {
        p.product_id: int(p.attributes.get("espresso_shots", 0)) for p in load_catalogue()
    }
    windows: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    started = _by_order(week, "order.started")
    ready = _by_order(week, "order.ready")
    for event in week.of("pos.order_paid"):
        order_id = event["payload"]["order_id"]
        expected = sum(
            shots_per_product[line["product_id"]] * line["qty"]
            for line in event["payload"]["lines"]
        )
        staff = started[order_id]["payload"]["staff_id"]
        windows[staff].append((started[order_id]["ms"], ready[order_id]["ms"], expected))
    counted: Counter[tuple[str, int]] = Counter()
    for shot in week.of("sensor.espresso_shot"):
        payload = shot["payload"]
        assert shot["source"] == payload["machine_id"] in {"espresso-1", "espresso-2"}
        assert 22 <= payload["duration_s"] <= 30
        inside = [
            i
            for i, (start, end, _) in enumerate(windows[payload["staff_id"]])
            if start <= shot["ms"] - payload["duration_s"] * 1000 and shot["ms"] <= end
        ]
        assert len(inside) == 1, shot
        counted[(payload["staff_id"], inside[0])] += 1
    for staff, orders in windows.items():
        for i, (_, _, expected) in enumerate(orders):
            assert counted[(staff, i)] == expected


@pytest.mark.parametrize("channel", ["in_store", "mobile"])
def test_handoff_waits_for_ready_and_the_customer(week: SimRun, channel: str) -> None:
    """Hand-off is after the order is ready and while its customer stands at pickup."""
    handed = {e["payload"]["order_id"]: e["ms"] for e in week.of("order.handed_off")}
    pickups = []
    for visit in week.truth["visits"]:
        if visit["channel"] == channel:
            stay = next(z for z in visit["zones"] if z["zone_id"] == "pickup")
            pickups.append((week.ms(stay["enter"]), week.ms(stay["exit"])))
    times = sorted(handed[o["order_id"]] for o in week.truth["orders"] if o["channel"] == channel)
    assert len(times) == len(pickups)
    # Every hand-off falls inside some pickup stay of that channel's customers.
    for at in times:
        assert any(enter + 2000 <= at < leave for enter, leave in pickups)


def test_mobile_orders_are_paid_before_the_customer_arrives(week: SimRun) -> None:
    """Truth does not link orders to tracks; pair them by the hand-off inside a pickup stay."""
    mobile = [o for o in week.truth["orders"] if o["channel"] == "mobile"]
    handed = [(week.ms(o["handed_off_at"]), week.ms(o["paid_at"])) for o in mobile]
    leads = []
    for visit in week.truth["visits"]:
        if visit["channel"] != "mobile":
            continue
        assert [z["zone_id"] for z in visit["zones"][:2]] == ["entrance", "pickup"]
        stay = visit["zones"][1]
        enter, leave = week.ms(stay["enter"]), week.ms(stay["exit"])
        inside = [paid for at, paid in handed if enter <= at < leave]
        if len(inside) == 1:
            leads.append(week.ms(visit["enter"]) - inside[0])
    assert len(leads) > 0.8 * len(mobile)
    assert all(0 <= lead <= 600_000 for lead in leads)
    assert sum(1 for lead in leads if lead >= 120_000) > 0.95 * len(leads)  # unless at opening
