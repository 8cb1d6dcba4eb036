"""The orders projection: a re-sent order keeps its first payment, lines included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, select

from storelens.core.events import event_adapter
from storelens.processors import TableProjection
from storelens.sales import ORDER_TYPES, orders_of_customer, project_orders
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import order_lines, orders

RawEvent = Callable[..., dict[str, Any]]
LATTE = {"product_id": "latte", "qty": 1, "unit_price": 3.0}
WHISKY = {"product_id": "whisky", "qty": 50, "unit_price": 90.0}


def _paid(raw_event: RawEvent, lines: list[dict[str, Any]], **payload: Any) -> Any:
    event = raw_event(payload={"order_id": "o-9", "lines": lines, **payload})
    return event_adapter.validate_python(event)


def _project(log: EventLog) -> None:
    TableProjection("orders", ORDER_TYPES, project_orders).run(log)


def _stored(engine: Engine) -> tuple[list[Any], list[Any]]:
    with engine.connect() as conn:
        heads = conn.execute(select(orders.c.order_id, orders.c.total)).all()
        lines = conn.execute(select(order_lines.c.line_no, order_lines.c.product_id)).all()
    return heads, lines


@pytest.mark.parametrize("same_batch", [False, True])
def test_a_resent_order_adds_no_lines_to_the_first_payment(
    engine: Engine, raw_event: RawEvent, same_batch: bool
) -> None:
    """A second ``pos.order_paid`` for an order (a new event id, more lines) used to
    leave the head alone but insert its extra lines: the customer's order then held 50
    whiskies its total never charged for."""
    log = EventLog(engine)
    first = _paid(raw_event, [LATTE], customer_id="C-1")
    again = _paid(raw_event, [LATTE, WHISKY], customer_id="C-1")
    log.append([first])
    if not same_batch:
        _project(log)
    log.append([again])
    _project(log)

    heads, lines = _stored(engine)
    assert heads == [("o-9", 3.0)]
    assert lines == [(1, "latte")]
    with engine.connect() as conn:
        [order] = orders_of_customer(conn, ["C-1"])
    assert sum(li["qty"] * li["unit_price"] for li in order.lines) == order.total


def test_the_same_order_id_in_two_stores_is_two_orders(engine: Engine, raw_event: RawEvent) -> None:
    log = EventLog(engine)
    log.append(
        [
            _paid(raw_event, [LATTE]),
            event_adapter.validate_python(
                raw_event(store_id="cafe-02", payload={"order_id": "o-9", "lines": [WHISKY]})
            ),
        ]
    )
    _project(log)
    heads, lines = _stored(engine)
    assert sorted(heads) == [("o-9", 3.0), ("o-9", 4500.0)]
    assert sorted(lines) == [(1, "latte"), (1, "whisky")]
