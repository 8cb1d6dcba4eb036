"""The hot lane answers exactly as the route would, and leaves the route everything else.

Each request is sent twice: first with one more query parameter, which the route
ignores (FastAPI drops parameters it does not declare) and the lane does not take, so
the route answers; then as it is, when the lane answers what it can. Status, headers
and bytes must be the same. The lane's own record of what it answered shows the
comparison was not between two route answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.recommend.test_serving import NOW, Login, World, world  # noqa: F401

from storelens.api import recommendations_lane
from storelens.config import Settings

STORE = {"store": "cafe-01"}


@pytest.fixture
def lane_answers(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """True for each request the lane answered itself, False for each it passed on."""
    seen: list[bool] = []
    warm = recommendations_lane.RecommendationsLane._warm

    async def spy(self: Any, scope: Any, customer_id: str) -> bytes | None:
        body = await warm(self, scope, customer_id)
        seen.append(body is not None)
        return body

    monkeypatch.setattr(recommendations_lane.RecommendationsLane, "_warm", spy)
    return seen


def _twice(client: TestClient, path: str, params: Any, headers: dict[str, str]) -> tuple[Any, Any]:
    pairs = list(params.items()) if isinstance(params, dict) else list(params)
    routed = client.get(path, params=[*pairs, ("via", "route")], headers=headers)
    return routed, client.get(path, params=pairs, headers=headers)


def _same(first: Any, second: Any) -> None:
    assert second.status_code == first.status_code
    assert second.content == first.content
    drop = {"date", "x-request-id"}
    assert {k: v for k, v in second.headers.items() if k not in drop} == {
        k: v for k, v in first.headers.items() if k not in drop
    }


ANSWERED = [
    pytest.param("ada", STORE, id="personal"),
    pytest.param("ada", {**STORE, "k": "3", "context": "daypart:morning,zone:bakery"}, id="ctx"),
    pytest.param("ada", {**STORE, "k": "50"}, id="k-max"),  # recommend_max_k
    pytest.param("crowd-3", {**STORE, "context": " channel:app "}, id="no-consent"),
    pytest.param("ad%61", STORE, id="percent-encoded-id"),
]


@pytest.mark.parametrize(("customer", "params"), ANSWERED)
def test_a_warm_answer_is_the_routes_answer_byte_for_byte(
    world: World,  # noqa: F811
    client: TestClient,
    login: Login,
    engine: Engine,
    lane_answers: list[bool],
    customer: str,
    params: dict[str, str],
) -> None:
    headers = login("analyst")
    path = f"/v1/customers/{customer}/recommendations"
    world.get(headers, customer.replace("%61", "a"))  # warm the engine's caches
    lane_answers.clear()
    first, second = _twice(client, path, params, headers)
    assert first.status_code == 200, first.json()
    _same(first, second)
    assert lane_answers == [False, True]  # the route, then the lane


PASSED_ON = [
    pytest.param("ada", {"store": "cafe-01", "k": "0"}, "analyst", 422, id="k-zero"),
    pytest.param("ada", {"store": "cafe-01", "k": "51"}, "analyst", 422, id="k-over-setting"),
    pytest.param("ada", {"store": "cafe-01", "k": "501"}, "analyst", 422, id="k-over"),
    pytest.param("ada", {"store": "cafe-01", "k": "ten"}, "analyst", 422, id="k-word"),
    pytest.param("ada", {"store": "cafe-01", "k": "010"}, "analyst", 200, id="k-leading-zero"),
    pytest.param("ada", {"store": "cafe-01", "k": " 7"}, "analyst", None, id="k-space"),
    pytest.param("ada", {"k": "3"}, "analyst", 422, id="no-store"),
    pytest.param("ada", {"store": ""}, "analyst", 422, id="empty-store"),
    pytest.param("ada", {"store": "s" * 65}, "analyst", 422, id="long-store"),
    pytest.param("ada", {"store": "nowhere"}, "analyst", 404, id="unknown-store"),
    pytest.param("ada", {**STORE, "context": "daypart"}, "analyst", 422, id="ctx-no-colon"),
    pytest.param("ada", {**STORE, "context": "mood:happy"}, "analyst", 422, id="ctx-unknown"),
    pytest.param("ada", {**STORE, "context": "x" * 501}, "analyst", 422, id="ctx-long"),
    pytest.param("ada", {**STORE, "extra": "1"}, "analyst", 200, id="unknown-param"),
    pytest.param("ada", [("store", "nowhere"), ("store", "cafe-01")], "analyst", None, id="twice"),
    pytest.param("c" * 129, STORE, "analyst", 422, id="long-customer"),
    pytest.param("ada", STORE, "staff", 403, id="staff"),
    # Not a customer: no entry is kept for them, so every answer reads the database.
    pytest.param("nobody-knows-me", STORE, "analyst", 200, id="unknown-customer"),
    pytest.param("ada", STORE, None, 401, id="no-token"),
]


@pytest.mark.parametrize(("customer", "params", "role", "status"), PASSED_ON)
def test_what_the_lane_cannot_answer_goes_to_the_route(
    world: World,  # noqa: F811
    client: TestClient,
    login: Login,
    lane_answers: list[bool],
    customer: str,
    params: Any,
    role: str | None,
    status: int | None,
) -> None:
    headers = {} if role is None else login(role)
    first, second = _twice(client, f"/v1/customers/{customer}/recommendations", params, headers)
    if status is not None:
        assert first.status_code == status, first.text
    _same(first, second)
    assert not any(lane_answers)  # every one of these was the route's


def test_an_api_key_and_a_second_authorization_header_go_to_the_route(
    world: World,  # noqa: F811
    client: TestClient,
    login: Login,
    lane_answers: list[bool],
) -> None:
    headers = login("analyst")
    path = "/v1/customers/ada/recommendations"
    both = {**headers, "X-API-Key": "slk_not-a-key"}
    first, second = _twice(client, path, STORE, both)
    assert first.status_code == 401  # the key is checked first, as the route does
    _same(first, second)
    raw = [(b"authorization", headers["Authorization"].encode())] * 2
    lane_answers.clear()
    r = client.get(path, params=STORE, headers=raw)  # type: ignore[arg-type]
    assert r.status_code == 200 and lane_answers == [False]


def test_a_purchase_and_a_withdrawal_reach_the_lanes_next_answer(
    world: World,  # noqa: F811
    client: TestClient,
    login: Login,
    engine: Engine,
    settings: Settings,
    lane_answers: list[bool],
) -> None:
    """The lane reads the same engine state as the route: nothing of its own to go stale."""
    headers = login("analyst")

    def lane_get() -> Any:
        """After a write the first answer may be cold (the route's thread fills the
        entry); the next is the lane's, from the same state."""
        first = world.get(headers, "ada", k=50).json()
        lane_answers.clear()
        body = world.get(headers, "ada", k=50).json()
        assert lane_answers == [True] and body == first
        return body

    before = lane_get()
    assert "rare-tea" not in {r["product_id"] for r in before["data"]}
    world.order("ada", ["rare-tea"], NOW - timedelta(days=1, hours=2))
    world.order("ada", ["rare-tea"], NOW - timedelta(days=2))
    world.project()
    after = lane_get()
    assert "rare-tea" in {r["product_id"] for r in after["data"]}
    world.consent("ada", False, NOW - timedelta(hours=1))
    world.project()
    gone = lane_get()
    assert (
        gone["personalized"] is False
        and gone["reason"] == "no personalization consent on record for this id"
    )
