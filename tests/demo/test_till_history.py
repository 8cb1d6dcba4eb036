"""The demo's till history: the members' orders of the months before the simulated days."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from storelens.catalogue import load_catalogue
from storelens.core.events import OrderPaidEvent
from storelens.demo.sampleday import generate_day, write_jsonl
from storelens.demo.till_history import TillHistoryConfig, read_week, till_history
from storelens.samples import sample_layout_path
from storelens.sim import run_simulation

TZ = ZoneInfo("Europe/Berlin")


@pytest.fixture(scope="module")
def week_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two simulated café days: the CRM's 600 members, of whom many stay away."""
    sim = run_simulation(sample_layout_path(), 2, 7, tmp_path_factory.mktemp("week"))
    return sim.events_path


def test_the_same_seed_gives_the_same_orders_and_another_seed_others(week_file: Path) -> None:
    catalogue = load_catalogue()
    first = till_history(week_file, catalogue, TZ, TillHistoryConfig(weeks=8, seed=3))
    again = till_history(week_file, catalogue, TZ, TillHistoryConfig(weeks=8, seed=3))
    other = till_history(week_file, catalogue, TZ, TillHistoryConfig(weeks=8, seed=4))
    assert [e.model_dump_json() for e in first] == [e.model_dump_json() for e in again]
    assert [e.id for e in first] != [e.id for e in other]
    assert len({e.id for e in first}) == len(first) > 100  # ids unique: nothing deduplicated
    assert len({e.payload.order_id for e in first}) == len(first)


def test_orders_fall_before_the_week_in_its_opening_hours_at_catalogue_prices(
    week_file: Path,
) -> None:
    week = read_week(week_file, TZ)
    catalogue = {p.product_id: p for p in load_catalogue()}
    orders = till_history(week_file, catalogue.values(), TZ, TillHistoryConfig(weeks=12))
    assert all(isinstance(e, OrderPaidEvent) for e in orders)
    assert orders == sorted(orders, key=lambda e: e.ts)
    assert orders[-1].ts < week.start <= week.end
    assert orders[0].ts >= week.start - timedelta(weeks=12)
    # Local hours the café was seen open, across the change from summer time.
    assert {e.ts.astimezone(TZ).hour for e in orders} <= set(week.local_hours)
    summer = [e for e in orders if e.ts.astimezone(TZ).utcoffset() == timedelta(hours=2)]
    assert summer  # twelve weeks before November reach into summer time
    for event in orders:
        assert event.subject == event.payload.customer_id and event.subject in week.members
        assert event.store_id == week.store_id
        for line in event.payload.lines:
            product = catalogue[line.product_id]
            assert (line.unit_price, line.name) == (product.price, product.name)


def test_regulars_of_the_week_buy_more_and_stay_and_absent_members_may_have_lapsed(
    week_file: Path,
) -> None:
    week = read_week(week_file, TZ)
    config = TillHistoryConfig(weeks=26, seed=5)
    orders = till_history(week_file, load_catalogue(), TZ, config)
    per_member = Counter(e.subject for e in orders)
    last = {e.subject: e.ts for e in orders}
    regulars = [m for m, w in week.members.items() if w.orders >= 2]
    absent = [m for m, w in week.members.items() if w.orders == 0 and m in per_member]
    assert len(regulars) >= 20 and len(absent) >= 20
    mean = {
        name: sum(per_member[m] for m in group) / len(group)
        for name, group in (("regulars", regulars), ("absent", absent))
    }
    assert mean["regulars"] > 1.5 * mean["absent"]
    # A member who bought in the week never left: most bought in the history's last
    # month. Members absent from it include some whose last order is months old.
    recent = week.start - timedelta(weeks=4)
    assert sum(last.get(m, week.start) >= recent for m in regulars) > 0.8 * len(regulars)
    lapsed = [m for m in absent if last[m] < week.start - timedelta(weeks=8)]
    assert len(lapsed) >= 5
    # Their baskets lean on what they bought in the week.
    staples = sum(
        line.product_id in week.members[e.subject].products
        for e in orders
        if e.subject in regulars
        for line in e.payload.lines
    )
    lines = sum(len(e.payload.lines) for e in orders if e.subject in regulars)
    assert staples > 0.6 * lines


def test_a_week_without_paid_orders_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    crm_only = [e for e in generate_day() if e.type == "customer.upserted"]
    write_jsonl(crm_only, path)
    with pytest.raises(ValueError, match="no paid orders to follow"):
        till_history(path, load_catalogue(), TZ)
