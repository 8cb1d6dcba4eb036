"""A staff member declines a suggestion for the customer in front of them through the
notice they claimed, never by customer id. A review: declining by a guessed id and
reloading the claimer view showed whether the guess was the customer's id, which the
view keeps from staff. SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from storelens.storage.tables import audit_log, recommend_declines

from .conftest import MEMBER, T0, Floor, raise_body


@pytest.fixture
def shop(suggesting_shop: Floor) -> Floor:
    suggesting_shop.consent(MEMBER, "personalization", True, T0 - timedelta(days=200))
    return suggesting_shop


def _on_shift(floor: Floor) -> dict[str, str]:
    name = floor.staff()
    floor.clock("in", name, at=T0 - timedelta(hours=1))
    return floor.token(name)


def _suggested(client: TestClient, nid: str, headers: dict[str, str]) -> list[str]:
    view = client.get(f"/v1/notices/{nid}/customer", headers=headers)
    assert view.status_code == 200, view.text
    return [s["product_id"] for s in view.json()["suggestions"]]


def _decline(client: TestClient, nid: str, headers: dict[str, str], item: str) -> Any:
    return client.post(
        f"/v1/notices/{nid}/declined-items", json={"product_id": item}, headers=headers
    )


def test_the_claimer_declines_for_the_customer_in_front_of_them(
    client: TestClient, shop: Floor, engine: Engine
) -> None:
    ana, ben = _on_shift(shop), _on_shift(shop)
    nid = client.post("/v1/notices", json=raise_body(), headers=shop.scanner()).json()["id"]
    assert _decline(client, nid, ana, "flat-white").status_code == 409  # nobody's claim yet
    assert client.post(f"/v1/notices/{nid}/claim", headers=ana).status_code == 200
    first = _suggested(client, nid, ana)[0]
    assert _decline(client, nid, ben, first).status_code == 403  # not the claimer
    done = _decline(client, nid, ana, first)
    assert done.status_code == 200, done.text
    assert done.json() == {"notice_id": nid, "product_id": first}  # no customer id
    assert first not in _suggested(client, nid, ana)
    # By id, staff get 403 whatever the id: no guess can be checked against the view
    for guess in (MEMBER, "nobody-7"):
        r = client.post(
            f"/v1/customers/{guess}/declined-items", json={"product_id": "brownie"}, headers=ana
        )
        assert r.status_code == 403
    with engine.connect() as conn:
        stored = conn.execute(
            select(recommend_declines.c.customer_id, recommend_declines.c.product_id)
        ).all()
        trail = conn.execute(
            select(audit_log.c.resource_id, audit_log.c.detail).where(
                audit_log.c.action == "recommendations.decline"
            )
        ).all()
    assert [tuple(r) for r in stored] == [(MEMBER, first)]
    assert [(r.resource_id, r.detail) for r in trail] == [
        (MEMBER, {"product_id": first, "notice_id": nid, "customers": 1})
    ]
    closed = client.post(f"/v1/notices/{nid}/outcome", json={"outcome": "served"}, headers=ana)
    assert closed.status_code == 200
    assert _decline(client, nid, ana, "brownie").status_code == 409  # the claim has closed


def test_bad_declines_are_refused_by_field(client: TestClient, shop: Floor) -> None:
    ana = _on_shift(shop)
    nid = client.post("/v1/notices", json=raise_body(), headers=shop.scanner()).json()["id"]
    client.post(f"/v1/notices/{nid}/claim", headers=ana)
    for body in ({}, {"product_id": ""}, {"product_id": "x", "customer_id": MEMBER}):
        r = client.post(f"/v1/notices/{nid}/declined-items", json=body, headers=ana)
        assert r.status_code == 422
        assert r.json()["detail"][0]["loc"][0] == "body"
    assert _decline(client, "no-such-notice", ana, "brownie").status_code == 404
