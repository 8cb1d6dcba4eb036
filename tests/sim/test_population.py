from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from storelens.catalogue import load_catalogue
from storelens.sim.menu import Menu
from storelens.sim.population import Population, build_population

if TYPE_CHECKING:
    from conftest import SimRun


def _population(seed: int = 3) -> tuple[Population, Menu]:
    menu = Menu(load_catalogue())
    return build_population(random.Random(seed), 1500, 0.4, menu.primary, menu.secondary), menu


def test_population_is_stable_for_a_seed_and_has_unique_identities() -> None:
    first, _ = _population()
    again, _ = _population()
    assert first == again
    members = first.members
    assert len(first.people) == 1500 and len(members) == 600
    ids = [p.loyalty_id for p in members]
    assert len(set(ids)) == 600 and all(re.fullmatch(r"L\d{6}", i or "") for i in ids)
    assert len({p.email for p in first.people}) == 1500
    assert all(p.email.endswith("@example.com") for p in first.people)
    other, _ = _population(seed=4)
    assert [p.loyalty_id for p in other.members] != ids


def test_favourites_come_from_the_catalogue_drink_first() -> None:
    population, menu = _population()
    drinks = {p.product_id for p in menu.primary}
    catalogue = {p.product_id for p in menu.catalogue}
    for person in population.people:
        assert person.favourites[0] in drinks
        assert set(person.favourites) <= catalogue


def test_picks_are_skewed_towards_regulars() -> None:
    population, _ = _population()
    rng = random.Random(1)
    visits = Counter(population.pick(rng).index for _ in range(450 * 7))
    top = sum(count for _, count in visits.most_common(120))  # the 8% regulars
    assert top > 0.2 * 450 * 7


def test_regulars_recur_across_the_week(week: SimRun) -> None:
    days: dict[str, set[str]] = defaultdict(set)
    for visit in week.truth["visits"]:
        if visit["customer_id"]:
            days[visit["customer_id"]].add(visit["enter"][:10])
    daily = [member for member, seen in days.items() if len(seen) >= 5]
    assert len(daily) >= 20


def test_members_order_their_favourites(week: SimRun) -> None:
    """Recommendations need signal: a member's most bought product recurs in their orders."""
    bought: dict[str, Counter[str]] = defaultdict(Counter)
    for event in week.of("pos.order_paid"):
        customer = event["payload"]["customer_id"]
        if customer:
            for line in event["payload"]["lines"]:
                bought[customer][line["product_id"]] += 1
    frequent = [counts for counts in bought.values() if sum(counts.values()) >= 8]
    assert frequent
    share = sum(c.most_common(1)[0][1] / sum(c.values()) for c in frequent) / len(frequent)
    assert share > 0.3
