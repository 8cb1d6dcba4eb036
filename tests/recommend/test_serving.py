"""Recommendations through the API: consent, stock, purchases, explanations, bad input.

Runs on SQLite and PostgreSQL. Orders arrive as ``pos.order_paid`` events and reach
the candidates through the same projections the server runs; the engine's clock is
injected, so "the last two months" is a fixed window.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from storelens import stores
from storelens.catalogue import upsert_products
from storelens.config import Settings
from storelens.core.events import event_adapter
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer
from storelens.processors import RECOMMEND_PROJECTION, default_projections, run_projections
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.engine import RecommendationEngine
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import order_lines, orders, recommend_impressions

Login = Callable[[str], dict[str, str]]
NOW = datetime(2026, 11, 30, 8, 30, tzinfo=UTC)  # a Monday morning
CATALOGUE = [
    ("flat-white", "coffee"),
    ("latte", "coffee"),
    ("espresso", "coffee"),
    ("cappuccino", "coffee"),
    ("croissant", "bakery"),
    ("muffin", "bakery"),
    ("oat-cookie", "bakery"),
    ("orange-juice", "cold-drinks"),
    ("rare-tea", "tea"),
]


class World:
    """The test store: a clock, the app's engine swapped for one on that clock."""

    def __init__(self, client: TestClient, engine: Engine, settings: Settings) -> None:
        self.client, self.engine, self.now = client, engine, NOW
        self.candidates = MemoryCandidates(600)
        self.reco = RecommendationEngine(engine, settings, self.candidates, clock=lambda: self.now)
        client.app.state.recommendations = self.reco  # type: ignore[attr-defined]
        self.log = EventLog(engine)
        with engine.begin() as conn:
            stores.create_store(conn, "cafe-01", "Café", timezone="UTC", kind="cafe")
            rows = [
                {"product_id": p, "name": p.replace("-", " ").title(), "category": c, "price": 3.0}
                for p, c in CATALOGUE
            ]
            stored, errors = upsert_products(conn, rows)
            assert stored == len(CATALOGUE), errors
        self.n = 0

    def order(self, customer: str | None, products: list[str], at: datetime) -> None:
        self.n += 1
        event = {
            "id": str(uuid.uuid4()),
            "type": "pos.order_paid",
            "ts": at.isoformat(),
            "source": "pos",
            "store_id": "cafe-01",
            "subject": customer,
            "payload": {
                "order_id": f"o-{self.n}",
                "customer_id": customer,
                "lines": [{"product_id": p, "qty": 1, "unit_price": 3.0} for p in products],
            },
        }
        self.log.append([event_adapter.validate_python(event)])

    def consent(self, customer: str, granted: bool, at: datetime) -> None:
        self.log.append(
            [
                event_adapter.validate_python(
                    {
                        "id": str(uuid.uuid4()),
                        "type": "consent.changed",
                        "ts": at.isoformat(),
                        "source": "app",
                        "subject": customer,
                        "payload": {"purpose": "personalization", "granted": granted},
                    }
                )
            ]
        )

    def project(self) -> None:
        wanted = {"orders", "consent", "recommend-withdrawals", RECOMMEND_PROJECTION}  # no ops
        every = default_projections(recommendations=self.reco)
        run_projections(self.log, [p for p in every if p.name in wanted])

    def get(self, headers: dict[str, str], customer: str, **params: Any) -> Any:
        query = {"store": "cafe-01", "k": 10, **params}
        return self.client.get(
            f"/v1/customers/{customer}/recommendations", params=query, headers=headers
        )


@pytest.fixture
def world(client: TestClient, engine: Engine, settings: Settings) -> Iterator[World]:
    w = World(client, engine, settings)
    # The crowd: everyone buys coffee and croissants in the morning.
    for i in range(30):
        w.order(f"crowd-{i}", ["latte", "croissant"], NOW - timedelta(days=3, minutes=i))
        w.order(f"crowd-{i}", ["espresso", "muffin"], NOW - timedelta(days=5, minutes=i))
    # Ada: a flat white six times in the last two months, twice long before,
    # orange juice with it, and once a rare tea that nobody else buys.
    for days in (4, 10, 17, 24, 31, 45):
        w.order("ada", ["flat-white", "orange-juice"], NOW - timedelta(days=days))
    for days in (120, 150):
        w.order("ada", ["flat-white"], NOW - timedelta(days=days))
    w.consent("ada", True, NOW - timedelta(days=200))
    w.project()
    yield w
    w.reco.close()  # its queued impressions land in this test's database, not the next


def test_consent_off_means_no_personal_recommendations(world: World, login: Login) -> None:
    staff = login("analyst")
    world.consent("ada", False, NOW - timedelta(days=1))
    world.project()
    body = world.get(staff, "ada", k=4).json()
    assert body["personalized"] is False
    assert body["reason"] == "no personalization consent on record for this id"
    assert {r["source"] for r in body["data"]} == {"popularity"}
    # Her favourite is in only 4 of the store's 64 morning orders: not in the top 4.
    assert "flat-white" not in {r["product_id"] for r in body["data"]}

    world.consent("ada", True, NOW - timedelta(hours=1))
    world.project()
    body = world.get(staff, "ada").json()
    assert body["personalized"] is True
    assert body["data"][0]["product_id"] == "flat-white"


def test_unknown_customer_gets_store_popularity(world: World, login: Login) -> None:
    body = world.get(login("analyst"), "nobody-knows-me").json()
    assert body["personalized"] is False
    # A new user's review: "no personalization consent" read as a claim about a person;
    # the reason is true of an id nobody holds as well.
    assert body["reason"] == "no personalization consent on record for this id"
    top = [r["product_id"] for r in body["data"]]
    # 64 morning orders in 28 days (60 of the crowd, 4 of Ada's); latte, croissant,
    # espresso and muffin were in 30 each.
    assert set(top[:4]) == {"latte", "croissant", "espresso", "muffin"}
    first = body["data"][0]
    assert first["evidence"] == {
        "orders_with_item": 30,
        "orders": 64,
        "days": 28,
        "daypart": "morning",
    }
    assert first["explanation"] == (
        "popular at this store in the morning: in 30 of 64 orders in the last 28 days"
    )


def test_explanation_counts_are_true(world: World, login: Login, engine: Engine) -> None:
    body = world.get(login("analyst"), "ada").json()
    flat = next(r for r in body["data"] if r["product_id"] == "flat-white")
    since = NOW - timedelta(days=60)
    with engine.connect() as conn:
        in_window = conn.execute(
            select(func.count())
            .select_from(orders.join(order_lines, orders.c.order_id == order_lines.c.order_id))
            .where(
                orders.c.customer_id == "ada",
                order_lines.c.product_id == "flat-white",
                orders.c.ts >= since,
            )
        ).scalar_one()
    assert in_window == 6
    assert flat["evidence"]["times_bought"] == in_window
    assert flat["evidence"]["times_bought_ever"] == 8
    assert flat["explanation"] == "you bought this 6 times in the last 2 months"
    assert 0 < flat["confidence"] < 1


def test_out_of_stock_is_never_returned(world: World, login: Login) -> None:
    admin, staff = login("admin"), login("analyst")
    before = {r["product_id"] for r in world.get(staff, "ada").json()["data"]}
    assert {"flat-white", "latte"} <= before
    r = world.client.put(
        "/v1/stores/cafe-01/stock",
        json={"items": {"flat-white": False, "latte": False, "croissant": True}},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    for customer in ("ada", "stranger"):
        for daypart in ("morning", "evening"):
            got = world.get(staff, customer, context=f"daypart:{daypart}", k=50).json()["data"]
            assert not {"flat-white", "latte"} & {x["product_id"] for x in got}


def test_a_store_cannot_mark_more_items_out_than_its_limit(
    world: World, login: Login, engine: Engine
) -> None:
    """A security review's analyst key marked a million made-up ids out of stock: every
    worker reloads the list each second, and a customer with one decline waited 2.9 s.
    Items back in stock now lose their row, and a write past the limit changes nothing."""
    from storelens.recommend.shortlist import Blocked
    from storelens.storage.tables import store_stock

    admin, staff = login("admin"), login("analyst")
    state = world.client.app.state  # type: ignore[attr-defined]
    most = 5
    state.settings = state.settings.model_copy(update={"recommend_stock_max_out": most})

    def out() -> set[str]:
        with engine.connect() as conn:
            return set(conn.execute(select(store_stock.c.product_id)).scalars())

    put = lambda items: world.client.put(  # noqa: E731
        "/v1/stores/cafe-01/stock", json={"items": items}, headers=admin
    )
    assert put({"latte": False, "junk-1": False, "junk-2": True}).status_code == 200
    assert out() == {"latte", "junk-1"}  # "true" keeps no row: no row means available
    assert put({"junk-1": True}).status_code == 200 and out() == {"latte"}
    flood = {f"junk-{i}": False for i in range(most)}  # with latte: one over the limit
    r = put(flood)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "items"]
    assert "STORELENS_RECOMMEND_STOCK_MAX_OUT" in r.text and out() == {"latte"}
    # A store already over the limit (rows from before it) can still mark items back.
    with engine.begin() as conn:
        conn.execute(
            store_stock.insert(),
            [{"store_id": "cafe-01", "product_id": f"old-{i}", "in_stock": False,
              "updated_at": NOW} for i in range(most + 3)],
        )  # fmt: skip
    assert put({"old-0": True, "old-1": True}).status_code == 200
    assert len(out()) == most + 2  # latte and the old rows less two: still over
    assert put({"old-2": False}).status_code == 422  # nothing new out while over it
    # A customer with a decline: the store's set is consulted, not copied
    world.client.post(
        "/v1/customers/ada/declined-items", json={"product_id": "muffin"}, headers=staff
    )
    got = {x["product_id"] for x in world.get(staff, "ada", k=50).json()["data"]}
    assert not {"latte", "muffin"} & got
    either = Blocked({"latte", "tea"}, frozenset({"muffin", "tea"}))
    assert {"latte", "muffin", "tea"} <= either and "juice" not in either
    assert sorted(either) == ["latte", "muffin", "tea"] and len(either) == 3


def test_two_stock_writes_at_once_cannot_pass_the_limit_together(
    world: World, engine: Engine
) -> None:
    """Two writes of 9 items out, against a limit of 10: each counted before the other
    committed, and both passed on PostgreSQL (18 out; a review). Writers of one store
    now take turns, so the second counts the first's rows and is refused."""
    import threading

    from storelens.core.errors import InvalidInput
    from storelens.recommend import evidence

    first = engine.connect()
    tx = first.begin()
    evidence.set_stock(first, "cafe-01", {f"a{i}": False for i in range(9)}, NOW, most_out=10)
    outcome: list[object] = []

    def second() -> None:
        try:
            with engine.begin() as conn:
                batch = {f"b{i}": False for i in range(9)}
                outcome.append(evidence.set_stock(conn, "cafe-01", batch, NOW, most_out=10))
        except InvalidInput as exc:
            outcome.append(exc)

    racing = threading.Thread(target=second)
    racing.start()
    racing.join(timeout=1.0)  # it waits for the first write's commit, or ends on its own
    tx.commit()
    first.close()
    racing.join()
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidInput)
    with engine.connect() as conn:
        assert len(evidence.out_of_stock(conn, "cafe-01")) == 9


def test_a_purchase_changes_the_next_answer(world: World, login: Login) -> None:
    staff = login("analyst")
    first = world.get(staff, "ada").json()["data"]
    assert "rare-tea" not in {r["product_id"] for r in first}
    assert world.candidates.get("ada") is not None  # cached by that request
    world.order("ada", ["rare-tea", "rare-tea"], NOW - timedelta(days=2))
    world.project()  # the server's loop does this every second
    cached = world.candidates.get("ada")
    assert cached is not None and "rare-tea" in cached.items  # applied, not rebuilt
    second = world.get(staff, "ada").json()["data"]
    tea = next(r for r in second if r["product_id"] == "rare-tea")
    assert tea["evidence"]["times_bought"] == 1
    assert tea["source"] == "repeat"


def test_bought_today_is_not_suggested_unless_a_staple(world: World, login: Login) -> None:
    staff = login("analyst")
    world.order("ada", ["orange-juice", "rare-tea"], NOW - timedelta(hours=2))
    world.project()
    got = {r["product_id"] for r in world.get(staff, "ada", k=50).json()["data"]}
    assert "rare-tea" not in got  # bought once, two hours ago
    assert "orange-juice" in got  # bought in 7 orders: a staple


def test_declined_items_and_category_caps(world: World, login: Login) -> None:
    staff = login("analyst")
    r = world.client.post(
        "/v1/customers/ada/declined-items", json={"product_id": "orange-juice"}, headers=staff
    )
    assert r.status_code == 200, r.text
    unknown = world.client.post(
        "/v1/customers/nobody/declined-items", json={"product_id": "latte"}, headers=staff
    )
    assert unknown.status_code == 404
    got = world.get(staff, "ada", k=50).json()["data"]
    assert "orange-juice" not in {x["product_id"] for x in got}
    coffees = [
        x for x in got if x["product_id"] in {"flat-white", "latte", "espresso", "cappuccino"}
    ]
    assert len(coffees) == 3  # recommend_category_cap


def test_zone_context_reranks(world: World, login: Login, engine: Engine) -> None:
    staff = login("analyst")
    plain = [r["product_id"] for r in world.get(staff, "x").json()["data"]]
    with engine.begin() as conn:
        upsert_products(
            conn,
            [{"product_id": "muffin", "name": "Muffin", "category": "bakery", "price": 3.0,
              "zone_id": "pastry-case"}],
        )  # fmt: skip
    world.reco._shared.clear()  # the catalogue is cached a minute
    boosted = [
        r["product_id"] for r in world.get(staff, "x", context="zone:pastry-case").json()["data"]
    ]
    assert boosted[0] == "muffin" and plain[0] != "muffin"


def test_bad_input(world: World, login: Login) -> None:
    staff = login("analyst")
    assert (
        world.client.get(
            "/v1/customers/ada/recommendations", params={"store": "nowhere"}, headers=staff
        ).status_code
        == 404
    )
    for k in (0, 51, -3):
        r = world.get(staff, "ada", k=k)
        assert r.status_code == 422, (k, r.text)
        assert r.json()["detail"][0]["loc"] == ["query", "k"]
    cases = {
        "daypart:brunch": ["query", "context", "daypart"],
        "colour:blue": ["query", "context", "colour"],
        "daypart": ["query", "context"],
        "zone:a,zone:b": ["query", "context", "zone"],
        "zone:has space": ["query", "context", "zone"],
    }
    for text, loc in cases.items():
        r = world.get(staff, "ada", context=text)
        assert r.status_code == 422, (text, r.text)
        assert r.json()["detail"][0]["loc"] == loc, text
    r = world.client.post(
        "/v1/personalize",
        json={
            "requests": [{"customer_id": "ada", "store": "cafe-01", "context": {"dow": "funday"}}]
        },
        headers=staff,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][:5] == ["body", "requests", 0, "context", "dow"]
    r = world.client.post("/v1/personalize", json={"requests": []}, headers=staff)
    assert r.status_code == 422
    items = [{"customer_id": "ada", "store": s} for s in ("cafe-01", "no-such-store")]
    r = world.client.post("/v1/personalize", json={"requests": items}, headers=staff)
    assert r.status_code == 404  # and says which item (a review: it did not)
    assert r.json()["detail"] == "requests[1]: no store 'no-such-store'"
    for loose in (True, "7", 2.0):  # read as numbers without a word before
        item = {"customer_id": "ada", "store": "cafe-01", "k": loose}
        r = world.client.post("/v1/personalize", json={"requests": [item]}, headers=staff)
        assert r.status_code == 422, loose
        assert r.json()["detail"][0]["loc"] == ["body", "requests", 0, "k"]


def test_personalize_batch_answers_in_order(world: World, login: Login) -> None:
    r = world.client.post(
        "/v1/personalize",
        json={
            "requests": [
                {"customer_id": "ada", "store": "cafe-01", "k": 3},
                {
                    "customer_id": "crowd-1",
                    "store": "cafe-01",
                    "k": 2,
                    "context": {"daypart": "evening"},
                },
            ]
        },
        headers=login("analyst"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert [b["customer_id"] for b in body] == ["ada", "crowd-1"]
    assert [b["count"] for b in body] == [3, 2]
    assert body[0]["personalized"] is True and body[1]["personalized"] is False
    assert body[1]["context"]["daypart"] == "evening"


def test_impressions_are_logged_and_erased(world: World, login: Login, engine: Engine) -> None:
    staff = login("analyst")
    shown = world.get(staff, "ada", k=4).json()["data"]
    assert world.reco.impressions.pending() == 1  # queued off the request path
    assert world.reco.impressions.flush() == 1
    with engine.connect() as conn:
        [row] = conn.execute(
            select(recommend_impressions).where(recommend_impressions.c.customer_id == "ada")
        ).all()
    assert [i["rank"] for i in row.shown] == [1, 2, 3, 4]
    assert [i["product_id"] for i in row.shown] == [s["product_id"] for s in shown]
    assert [round(i["confidence"], 6) for i in row.shown] == [s["confidence"] for s in shown]
    assert (row.store_id, row.personalized) == ("cafe-01", True)
    assert world.candidates.get("ada") is not None
    erase_customer(engine, "ada", audit.SYSTEM, "test erasure")
    with engine.connect() as conn:
        left = conn.execute(
            select(func.count()).where(recommend_impressions.c.customer_id == "ada")
        ).scalar_one()
    assert left == 0
    assert world.candidates.get("ada") is None


def test_staff_cannot_decline_by_customer_id_and_nothing_is_written(
    world: World, login: Login, engine: Engine
) -> None:
    """Reviews: declining by id told staff which ids are customers (a 404, then the
    time a write took), and then which id was the customer in front of them (the
    claimer view stopped suggesting the item). Staff now decline through their claimed
    notice only (tests/staff/test_notice_declines.py); by id they get 403 and nothing is
    written or looked up. Analysts and admins decline by id, with the 404."""
    from storelens.storage.tables import audit_log, recommend_declines

    staff = login("staff")
    for customer in ("ada", "nobody-7"):
        r = world.client.post(
            f"/v1/customers/{customer}/declined-items", json={"product_id": "latte"},
            headers=staff,
        )  # fmt: skip
        assert r.status_code == 403
    analyst = login("analyst")
    miss = world.client.post(
        "/v1/customers/nobody-7/declined-items", json={"product_id": "latte"}, headers=analyst
    )
    assert miss.status_code == 404
    with engine.connect() as conn:
        kept = conn.execute(select(recommend_declines.c.customer_id)).scalars().all()
        audited = (
            conn.execute(select(audit_log.c.action).where(audit_log.c.resource_id == "nobody-7"))
            .scalars()
            .all()
        )
    assert kept == []
    assert audited == ["recommendations.decline.not_found"]  # the analyst's
