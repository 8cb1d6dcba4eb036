"""The claimer view's suggestions come from the recommendations engine and its segments
from the last scoring run, through the API, on SQLite and PostgreSQL.

The engine runs on the test's clock, so "the last 2 months" is a fixed window, and
every count an explanation cites is recounted here from the orders table.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, and_, func, insert, select

from storelens.api.app import create_app
from storelens.api.claimer_sources import EngineSuggester
from storelens.api.deps import current_time
from storelens.config import Settings
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.engine import RecommendationEngine
from storelens.storage.tables import (
    customer_scores,
    order_lines,
    orders,
    recommend_impressions,
    segment_members,
    segments,
)

from .conftest import MEMBER, T0, Floor, raise_body

PERSONALIZATION = "personalization"


@pytest.fixture
def shop(suggesting_shop: Floor) -> Floor:
    return suggesting_shop


def _claimed_view(client: TestClient, floor: Floor) -> tuple[dict[str, object], str]:
    name = floor.staff()
    floor.clock("in", name, at=T0 - timedelta(hours=1))
    headers = floor.token(name)
    raised = client.post("/v1/notices", json=raise_body(), headers=floor.scanner())
    nid = raised.json()["id"]
    assert client.post(f"/v1/notices/{nid}/claim", headers=headers).status_code == 200
    view = client.get(f"/v1/notices/{nid}/customer", headers=headers)
    assert view.status_code == 200, view.text
    return view.json(), name


def _orders_with(engine: Engine, since: datetime, *products: str, customer: str | None) -> int:
    """Orders since ``since`` holding every one of ``products`` (of ``customer`` if given)."""
    with engine.connect() as conn:
        keys: set[tuple[str, str]] | None = None
        for product in products:
            stmt = (
                select(orders.c.store_id, orders.c.order_id)
                .join(
                    order_lines,
                    and_(
                        order_lines.c.store_id == orders.c.store_id,
                        order_lines.c.order_id == orders.c.order_id,
                    ),
                )
                .where(order_lines.c.product_id == product, orders.c.ts >= since)
            )
            if customer is not None:
                stmt = stmt.where(orders.c.customer_id == customer)
            found = {(str(r[0]), str(r[1])) for r in conn.execute(stmt)}
            keys = found if keys is None else keys & found
        return len(keys or set())


def _orders_since(engine: Engine, since: datetime) -> int:
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).where(orders.c.ts >= since)).scalar()
    return int(count or 0)


def test_the_app_wires_the_engine_into_the_claimer_view(settings: Settings, engine: Engine) -> None:
    app = create_app(settings, engine=engine, run_projections=False)
    assert isinstance(app.state.suggester, EngineSuggester)


def test_consented_member_hears_the_engines_explanations_and_their_counts_are_true(
    client: TestClient, shop: Floor, engine: Engine, settings: Settings
) -> None:
    shop.consent(MEMBER, PERSONALIZATION, True, T0 - timedelta(days=200))
    view, staff_name = _claimed_view(client, shop)
    suggestions = view["suggestions"]
    assert isinstance(suggestions, list) and suggestions
    first = suggestions[0]
    assert (first["product_id"], first["source"]) == ("flat-white", "repeat")
    assert first["name"] == "Flat white"
    window = T0 - timedelta(days=settings.recommend_history_days)
    recent = _orders_with(engine, window, "flat-white", customer=MEMBER)
    ever = _orders_with(engine, T0 - timedelta(days=3650), "flat-white", customer=MEMBER)
    assert (recent, ever) == (3, 4)  # the window matters: the day -100 order is outside it
    assert first["reason"] == f"you bought this {recent} times in the last 2 months"

    # Every count any explanation cites, recounted from the orders table.
    for item in suggestions:
        repeat = re.fullmatch(
            r"you bought this (once|twice|\d+ times) in the last 2 months", item["reason"]
        )
        popular = re.fullmatch(
            r"popular at this store in the morning: in (\d+) of (\d+) orders in the last "
            r"(\d+) days",
            item["reason"],
        )
        if repeat is not None:
            mine = _orders_with(engine, window, item["product_id"], customer=MEMBER)
            said = {"once": 1, "twice": 2}.get(repeat[1]) or int(repeat[1].split()[0])
            assert said == mine, item
        elif popular is not None:  # every order here is at 09:00 UTC: the morning
            since = T0 - timedelta(days=int(popular[3]))
            holding = _orders_with(engine, since, item["product_id"], customer=None)
            assert (int(popular[1]), int(popular[2])) == (holding, _orders_since(engine, since))
        else:
            pytest.fail(f"an explanation this test cannot check: {item['reason']}")
    assert [s["source"] for s in suggestions] == ["repeat", "popularity", "repeat"]
    assert suggestions[2]["reason"] == "you bought this once in the last 2 months"

    with engine.connect() as conn:
        shown = conn.execute(select(recommend_impressions)).all()
    assert len(shown) == 1  # one row: the list shown
    assert [i["product_id"] for i in shown[0].shown] == [s["product_id"] for s in suggestions]
    assert {(r.customer_id, r.store_id, r.actor, r.personalized) for r in shown} == {
        (MEMBER, "cafe-01", staff_name, True)
    }


def test_without_consent_the_claimer_sees_nothing_personal(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    shop.consent(MEMBER, PERSONALIZATION, True, T0 - timedelta(days=200))
    shop.consent(MEMBER, PERSONALIZATION, False, T0 - timedelta(days=1))  # withdrawn
    view, _ = _claimed_view(client, shop)
    suggestions = view["suggestions"]
    assert isinstance(suggestions, list) and suggestions
    assert {s["source"] for s in suggestions} == {"popularity"}
    assert not any("you bought" in s["reason"] or "usual" in s["reason"] for s in suggestions)
    assert view["orders_total"] == 4  # the history is still shown: it is the service itself
    with engine.connect() as conn:
        flags = {r.personalized for r in conn.execute(select(recommend_impressions))}
    assert flags == {False}


def test_consented_member_the_engine_knows_nothing_of_gets_purchase_history(
    client: TestClient, floor: Floor, engine: Engine, settings: Settings
) -> None:
    """Orders under a merged-in id (the CRM record key) are the member's history, but the
    engine keys candidates by the canonical id: the purchase-history suggester speaks."""
    client.app.dependency_overrides[current_time] = lambda: T0  # type: ignore[attr-defined]
    reco = RecommendationEngine(engine, settings, MemoryCandidates(600), clock=lambda: T0)
    client.app.state.recommendations = reco  # type: ignore[attr-defined]
    floor.store()
    floor.member()
    floor.catalogue()
    for days in (20, 9, 3):
        floor.order(f"crm:r-{MEMBER}", T0 - timedelta(days=days), "oat-latte")
    for n in range(4):
        floor.order(None, T0 - timedelta(days=n + 1), "oat-latte", "brownie")
    floor.consent(MEMBER, PERSONALIZATION, True, T0 - timedelta(days=200))
    view, _ = _claimed_view(client, floor)
    suggestions = view["suggestions"]
    assert isinstance(suggestions, list)
    assert [(s["product_id"], s["source"]) for s in suggestions[:2]] == [
        ("oat-latte", "usual"),
        ("brownie", "complement"),
    ]
    assert suggestions[0]["reason"].startswith("their usual: bought 3 times")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(recommend_impressions)).scalar() == 0


def _scoring_run(engine: Engine, customer_id: str) -> None:
    """What ``predict.store.write_run`` leaves for one customer: scores and memberships."""
    with engine.begin() as conn:
        conn.execute(
            insert(customer_scores),
            {"customer_id": customer_id, "as_of": T0, "model_version": "v1", "clv": 120.0,
             "p_alive": 0.9, "churn_risk": 0.1, "expected_purchases": 3.0, "rfm": "555",
             "rfm_segment": "champions", "cluster": "cluster-2"},
        )  # fmt: skip
        conn.execute(
            insert(segments),
            [
                {"id": "rfm:champions", "kind": "rfm", "name": "Champions",
                 "description": "Bought recently, buy often and spend the most.",
                 "customers": 1, "revenue_share": 0.4, "as_of": T0, "model_version": "v1"},
                {"id": "cluster:cluster-2", "kind": "cluster", "name": "Morning regulars",
                 "description": "Weekday mornings, coffee and a pastry.",
                 "customers": 1, "revenue_share": 0.3, "as_of": T0, "model_version": "v1"},
            ],
        )  # fmt: skip
        conn.execute(
            insert(segment_members),
            [
                {"segment_id": "cluster:cluster-2", "customer_id": customer_id},
                {"segment_id": "rfm:champions", "customer_id": customer_id},
            ],
        )


def test_the_claimer_sees_the_stored_segments_rfm_first(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    _scoring_run(engine, MEMBER)
    view, _ = _claimed_view(client, shop)
    assert view["segment"] == "Champions"
    assert view["segment_description"] == "Bought recently, buy often and spend the most."
    assert [(s["id"], s["kind"], s["name"]) for s in view["segments"]] == [  # type: ignore[attr-defined]
        ("rfm:champions", "rfm", "Champions"),
        ("cluster:cluster-2", "cluster", "Morning regulars"),
    ]


def test_segments_of_another_customer_are_not_shown(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    _scoring_run(engine, "L-someone-else")
    view, _ = _claimed_view(client, shop)
    assert (view["segment"], view["segment_description"], view["segments"]) == (None, None, [])


def test_staff_cannot_read_any_customers_history_through_recommendations(
    client: TestClient, shop: Floor
) -> None:
    """The claimer view is gated (a device raised the notice, the staff member claimed
    it, is on shift, one read audited), and no staff answer carries a customer id. The
    recommendations route gives any staff login, for any id it types (a loyalty card
    number) and any store, without a notice or a shift, the canonical customer id,
    whether they consented to personalization, and what they bought ("bought 3 times
    in the last 2 months"), with no audit row."""
    shop.consent(MEMBER, PERSONALIZATION, True, T0 - timedelta(days=200))
    off_shift = shop.token(shop.staff())  # never clocked in, no notice raised
    r = client.get(
        f"/v1/customers/{MEMBER}/recommendations", params={"store": "cafe-01"}, headers=off_shift
    )
    assert r.status_code == 403, r.json()
    batch = {"requests": [{"customer_id": MEMBER, "store": "cafe-01"}]}
    r = client.post("/v1/personalize", json=batch, headers=off_shift)
    assert r.status_code == 403, r.json()
    assert "purchase" not in r.text and MEMBER not in r.text
