"""The Today page's live counts: who is in the store, and which orders are waiting.

"In the store" is customers past the door, or in the doorway now.

Someone who steps into the entrance zone and straight back out (a look through the
door, a passer-by clipping the zone) never came in; their track stays open for the
visit timeout (30 min) in case they do, and was counted as a customer in the store
all that time.

"Waiting now" is paid orders not yet handed off: the fulfillment percentiles count only
served orders, so a bar falling behind showed nothing until the backlog was served."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from storelens import stores
from storelens.core.events import event_adapter
from storelens.instore.processor import OpsProcessor
from storelens.sim import default_layout_path
from storelens.storage.eventlog import EventLog
from storelens.web.today import today_view

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def _raw(seconds: float, type_: str, **payload: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "ts": (T0 + timedelta(seconds=seconds)).isoformat(),
        "source": "test",
        "store_id": "cafe-01",
        "payload": payload,
    }


def _zone(seconds: float, enter: bool, zone: str, track: str) -> dict[str, Any]:
    kind = "vision.zone_enter" if enter else "vision.zone_exit"
    return _raw(seconds, kind, zone_id=zone, track_id=track)


def test_a_look_through_the_door_is_not_a_customer_in_the_store(engine: Engine) -> None:
    raws = [
        _zone(0, True, "entrance", "came-in"),
        _zone(4, False, "entrance", "came-in"),
        _zone(4, True, "seating", "came-in"),  # sits down
        _zone(10, True, "entrance", "looked-in"),
        _zone(14, False, "entrance", "looked-in"),  # turned round at the door
        _zone(100, True, "entrance", "arriving"),  # in the doorway now
        _raw(120, "sensor.espresso_shot", machine_id="m"),
    ]
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    log = EventLog(engine)
    log.append([event_adapter.validate_python(r) for r in raws])
    OpsProcessor().run(log, batch=100)
    view = today_view(engine, "cafe-01")
    assert view.as_of == T0 + timedelta(seconds=120)
    assert view.occupancy == 2  # came-in and arriving; it was 3 with looked-in


def _order(seconds: float, type_: str, order: str) -> dict[str, Any]:
    if type_ == "pos.order_paid":
        line = {"product_id": "latte", "qty": 1, "unit_price": 3.0}
        return _raw(seconds, type_, order_id=order, register_id="reg-1", lines=[line])
    return _raw(seconds, type_, order_id=order, staff_id="barista-ana")


def _view_after(engine: Engine, raws: list[dict[str, Any]]) -> Any:
    with engine.begin() as conn:
        stores.load_layout_file(conn, default_layout_path())
    log = EventLog(engine)
    log.append([event_adapter.validate_python(r) for r in raws])
    OpsProcessor().run(log, batch=100)
    return today_view(engine, "cafe-01")


def test_orders_waiting_now_are_shown_beside_the_percentiles(engine: Engine) -> None:
    raws = [
        _order(0, "pos.order_paid", "served"),
        _order(90, "order.handed_off", "served"),
        _order(100, "pos.order_paid", "slow"),
        _order(160, "order.started", "slow"),  # being made, still waiting
        _order(400, "pos.order_paid", "new"),
        _order(500, "order.started", "unpaid"),  # the till has not sent its payment
        _raw(700, "sensor.espresso_shot", machine_id="m"),
    ]
    view = _view_after(engine, raws)
    assert view.as_of == T0 + timedelta(seconds=700)
    assert (view.orders_waiting, view.longest_wait_s) == (2, 600.0)
    assert view.fulfillment_p90_s == 90.0  # only the served order: hence the backlog figure


def test_no_order_waiting_says_none_not_zero_seconds(engine: Engine) -> None:
    raws = [_order(0, "pos.order_paid", "o"), _order(60, "order.handed_off", "o")]
    view = _view_after(engine, raws)
    assert (view.orders_waiting, view.longest_wait_s) == (0, None)


def test_a_shop_without_an_order_screen_has_no_waiting_figure(engine: Engine) -> None:
    """Tills only: nothing is ever handed off, so every sale would "wait" for hours."""
    raws = [_order(0, "pos.order_paid", "a"), _order(600, "pos.order_paid", "b")]
    view = _view_after(engine, [*raws, _raw(3600, "sensor.espresso_shot", machine_id="m")])
    assert view.orders == 2
    assert (view.orders_waiting, view.longest_wait_s) == (None, None)


def test_at_opening_the_first_orders_wait_in_a_store_that_hands_off(engine: Engine) -> None:
    """Judged by today's hand-offs alone, a store with an order screen showed no figure
    at opening: the first queue built up before anything was handed off."""
    day = timedelta(days=1).total_seconds()
    yesterday = [_order(0, "pos.order_paid", "y"), _order(60, "order.handed_off", "y")]
    opening = [_order(day, "pos.order_paid", "first"), _order(day + 20, "pos.order_paid", "2nd")]
    view = _view_after(engine, [*yesterday, *opening, _raw(day + 300, "sensor.espresso_shot",
                                                          machine_id="m")])  # fmt: skip
    assert view.day == (T0 + timedelta(days=1)).date() and view.orders == 2
    assert (view.orders_waiting, view.longest_wait_s) == (2, 300.0)


def test_a_hand_off_weeks_ago_does_not_make_tills_an_order_screen(engine: Engine) -> None:
    long_ago = -20 * timedelta(days=1).total_seconds()
    old = [_order(long_ago, "pos.order_paid", "y"), _order(long_ago + 60, "order.handed_off", "y")]
    view = _view_after(engine, [*old, _order(0, "pos.order_paid", "a"),
                                _raw(600, "sensor.espresso_shot", machine_id="m")])  # fmt: skip
    assert (view.orders, view.orders_waiting) == (1, None)


def _sale(seconds: float, order: str, product: str, category: str) -> dict[str, Any]:
    line = {"product_id": product, "qty": 1, "unit_price": 3.0, "category": category}
    return _raw(seconds, "pos.order_paid", order_id=order, register_id="reg-1", lines=[line])


def test_a_pastry_sold_at_the_till_does_not_wait_where_only_drinks_are_handed_off(
    engine: Engine,
) -> None:
    """A croissant served at the till is never handed off at the bar: it "waited" until
    the order timeout, four hours, and held the longest wait all morning."""
    raws = [
        _sale(0, "latte-1", "latte", "coffee"),
        _order(60, "order.handed_off", "latte-1"),
        _sale(100, "croissant", "croissant", "bakery"),
        _sale(400, "latte-2", "latte", "coffee"),
        _raw(700, "sensor.espresso_shot", machine_id="m"),
    ]
    view = _view_after(engine, raws)
    assert (view.orders_waiting, view.longest_wait_s) == (1, 300.0)  # the second latte


def test_where_food_is_handed_off_at_the_bar_a_pastry_waits_too(engine: Engine) -> None:
    raws = [
        _sale(0, "toastie", "toastie", "food"),
        _order(60, "order.handed_off", "toastie"),
        _sale(100, "croissant", "croissant", "bakery"),
        _raw(700, "sensor.espresso_shot", machine_id="m"),
    ]
    view = _view_after(engine, raws)
    assert (view.orders_waiting, view.longest_wait_s) == (1, 600.0)
