"""The pure parts of notices: suggestion ranking, shift state, the hub's audience,
the greeting rule and the visit list."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from storelens.sales import Order
from storelens.staff.claimer_view import greeting, last_visits
from storelens.staff.hub import StoreHub
from storelens.staff.shifts import on_shift_state
from storelens.staff.suggestions import rank_suggestions


def _order(day: int, *items: str, store: str = "cafe-01", total: float = 3.0) -> Order:
    return Order(
        store_id=store,
        order_id=f"o-{day}-{len(items)}",
        ts=datetime(2026, 11, day, 9, tzinfo=UTC),
        channel="in_store",
        total=total,
        currency="EUR",
        customer_id="L-1",
        lines=[{"product_id": i, "qty": 1, "unit_price": 1.0} for i in items],
    )


def test_usual_then_complement_alternating_and_never_a_repeat_as_new() -> None:
    history = [_order(20, "latte"), _order(10, "latte", "scone"), _order(5, "tea")]
    companions = {"latte": {"scone": 9, "cookie": 6, "bagel": 3}, "scone": {"jam": 2}}
    baskets_with = {"latte": 10, "scone": 4}
    names = {"latte": "Latte", "cookie": "Cookie"}
    out = rank_suggestions(history, companions, baskets_with, names, limit=5)
    assert [(s.product_id, s.source) for s in out] == [
        ("latte", "usual"),
        ("cookie", "complement"),  # scone is already theirs: not offered as new
        ("scone", "usual"),
        ("jam", "complement"),
        ("tea", "usual"),
    ]
    assert out[0].reason == "their usual: bought 2 times, last on 20 Nov 2026"
    assert out[1].reason == "goes with their usual: in 60% of baskets with Latte"
    assert out[3].name == "jam"  # unnamed products keep their id
    assert out[3].reason == "goes with their usual: in 50% of baskets with scone"


def test_no_history_no_suggestions_and_limits_hold() -> None:
    assert rank_suggestions([], {"x": {"y": 1}}, {"x": 1}, {}, limit=3) == []
    history = [_order(3, "a", "b", "c", "d")]
    assert len(rank_suggestions(history, {}, {}, {}, limit=2)) == 2
    assert rank_suggestions(history, {}, {}, {}, limit=0) == []
    # an anchor seen in no other basket divides by nothing: no complement, no error
    assert [s.source for s in rank_suggestions(history, {"a": {"z": 1}}, {}, {}, 9)] == [
        "usual"
    ] * 4


def test_shift_state_follows_the_last_event_per_person() -> None:
    events = [
        ("staff.clock_in", "ana"),
        ("staff.clock_in", "ben"),
        ("staff.clock_out", "ana"),  # a break
        ("staff.clock_out", "cy"),  # out without in: still off
        ("staff.clock_in", "ana"),
        ("staff.clock_out", "ben"),
    ]
    assert on_shift_state(events) == {"ana"}
    assert on_shift_state([]) == set()


def test_hub_delivers_to_the_audience_only_and_strips_it() -> None:
    async def run() -> list[list[dict[str, Any]]]:
        hub = StoreHub()
        hub.bind(asyncio.get_running_loop())
        queues = [
            hub.subscribe("s1", "ana"),
            hub.subscribe("s1", "ben"),
            hub.subscribe("s1"),  # anonymous (an alert screen)
            hub.subscribe("s2", "ana"),
        ]
        hub.publish(
            [
                {"type": "notice", "store_id": "s1", "n": 1, "audience": ["ana"]},
                {"type": "notice", "store_id": "s1", "n": 2, "audience": None},
                {"type": "notice", "store_id": "s1", "n": 3, "audience": []},
            ]
        )
        await asyncio.sleep(0.01)
        return [[q.get_nowait() for _ in range(q.qsize())] for q in queues]

    ana, ben, anonymous, elsewhere = asyncio.run(run())
    assert ana == [
        {"type": "notice", "store_id": "s1", "n": 1},
        {"type": "notice", "store_id": "s1", "n": 2},
    ]
    assert ben == anonymous == [{"type": "notice", "store_id": "s1", "n": 2}]
    assert elsewhere == []


def test_greeting_prefers_the_chosen_name_then_a_first_name() -> None:
    rec = SimpleNamespace
    assert greeting(
        [rec(greeting_name=None, first_name="Ada"), rec(greeting_name=" Ady ", first_name="A")]
    ) == ("Ady", "chosen")
    assert greeting(
        [rec(greeting_name="  ", first_name=""), rec(greeting_name=None, first_name="Ada")]
    ) == ("Ada", "first_name")
    assert greeting([rec(greeting_name=None, first_name=None)]) == (None, None)
    assert greeting([]) == (None, None)


def test_visits_are_store_days_newest_first_and_bounded() -> None:
    history = [
        _order(20, "latte", total=3.5),
        _order(20, "scone", total=2.25),
        _order(20, "tea", store="cafe-02", total=2.0),
        _order(18, "latte", total=3.5),
        _order(10, "latte", total=3.5),
    ]
    visits = last_visits(history, {"cafe-01": "Café"}, limit=3)
    assert [(v["date"], v["store_name"], v["orders"], v["spent"]) for v in visits] == [
        ("2026-11-20", "Café", 2, 5.75),
        ("2026-11-20", "cafe-02", 1, 2.0),
        ("2026-11-18", "Café", 1, 3.5),
    ]
