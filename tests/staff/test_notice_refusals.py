"""A device key whose notices keep being refused is stopped from testing ids.

A refused notice answers 422 (an unknown customer, or recognition not allowed for the
member) where a known member gets 201: a stolen device key could test as many ids as it
liked (listed as open in docs/staff-app.md). Past ``notice_refusals_per_hour`` refusals
the key gets 429 for every notice, known member or not, so it learns nothing more, and
a till that mistypes a card now and then never gets near the limit."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storelens.api.app import create_app
from storelens.api.ratelimit import MemoryLimiter, RedisLimiter
from storelens.config import Settings

from .conftest import STORE, Floor, raise_body


def _client(settings: Settings, engine: Engine, **update: object) -> TestClient:
    tight = settings.model_copy(update={"notice_refusals_per_hour": 3, **update})
    return TestClient(create_app(tight, engine=engine, run_projections=False))


def _statuses(client: TestClient, key: dict[str, str], ids: list[str]) -> list[int]:
    return [
        client.post("/v1/notices", json=raise_body(customer_id=i), headers=key).status_code
        for i in ids
    ]


def test_past_the_limit_a_key_gets_429_for_known_and_unknown_ids_alike(
    settings: Settings, engine: Engine, floor: Floor
) -> None:
    client = _client(settings, engine)
    floor.store()
    member = floor.member()
    key, other_key = floor.scanner(), floor.scanner()
    assert _statuses(client, key, ["L-x1", "L-x2", "L-x3"]) == [422, 422, 422]
    assert _statuses(client, key, ["L-x4", member]) == [429, 429]  # no oracle left
    refused = client.post("/v1/notices", json=raise_body(customer_id="L-x5"), headers=key)
    assert refused.headers["retry-after"] == "3600"
    assert "too many notices refused" in refused.json()["detail"]
    assert "L-x5" not in refused.text
    assert _statuses(client, other_key, [member]) == [201]  # another key is not held


def test_announcing_known_members_never_counts(
    settings: Settings, engine: Engine, floor: Floor
) -> None:
    client = _client(settings, engine)
    floor.store()
    members = [floor.member(f"L-m{i}", first=f"M{i}") for i in range(6)]
    key = floor.scanner()
    assert _statuses(client, key, members) == [201] * 6
    assert _statuses(client, key, members[:2]) == [200, 200]  # already waiting
    assert _statuses(client, key, ["L-typo", "L-typo2"]) == [422, 422]
    assert _statuses(client, key, members[2:3]) == [200]  # two refusals of three: still served


def test_admins_are_not_counted(
    settings: Settings, engine: Engine, floor: Floor, login: object
) -> None:
    """Admins read every profile anyway; the limit is for keys, which can be stolen."""
    client = _client(settings, engine)
    floor.store()
    with engine.begin() as conn:
        from storelens import accounts

        accounts.create_user(conn, "boss", "correct horse battery staple", accounts.Role.admin)
    token = client.post(
        "/v1/auth/token", data={"username": "boss", "password": "correct horse battery staple"}
    ).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    assert _statuses(client, admin, [f"L-n{i}" for i in range(5)]) == [422] * 5


def test_parallel_probes_cannot_all_slip_under_the_limit(
    settings: Settings, engine: Engine, floor: Floor
) -> None:
    """The attempt is counted before the lookup: counted after, a burst of probes sent
    together would all have been looked up before the first one was counted."""
    client = _client(settings, engine)
    floor.store()
    key = floor.scanner()
    ids = [f"L-burst{i}" for i in range(12)]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda i: _statuses(client, key, [i])[0], ids))
    assert sorted(got) == [422] * 3 + [429] * 9


def test_the_window_passes_and_a_refund_lowers_only_a_count_that_exists() -> None:
    now = [0.0]
    limiter = MemoryLimiter(limit=2, window_s=3600, clock=lambda: now[0])
    assert [limiter.hit("k") for _ in range(3)] == [True, True, False]
    now[0] = 3599.0
    assert not limiter.hit("k")
    now[0] = 3600.0  # the hour opened at the first attempt is up
    assert limiter.hit("k")
    limiter.refund("k")
    limiter.refund("k")  # never below zero: a refund cannot buy extra attempts
    limiter.refund("never-seen")
    assert [limiter.hit("k") for _ in range(3)] == [True, True, False]


@pytest.mark.redis
def test_in_redis_two_api_processes_share_the_count(
    settings: Settings, engine: Engine, floor: Floor, redis_url: str
) -> None:
    a = _client(settings, engine, redis_url=redis_url)
    b = _client(settings, engine, redis_url=redis_url)
    floor.store()
    member = floor.member()
    key = floor.scanner()  # a new key: its count is its own in a Redis other runs share
    assert _statuses(a, key, ["L-r1"]) + _statuses(b, key, ["L-r2", member]) == [422, 422, 201]
    assert _statuses(a, key, ["L-r3", member]) == [422, 429]
    assert _statuses(b, key, [member]) == [429]


@pytest.mark.redis
def test_a_redis_refund_never_leaves_a_count_without_expiry(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, limit=2, window_s=60, prefix=f"t:{uuid.uuid4().hex}")
    limiter.refund("k")  # nothing counted: nothing written (a DECR would leave -1 forever)
    assert limiter.client.exists(f"{limiter.prefix}:k") == 0
    assert limiter.hit("k") and limiter.hit("k") and not limiter.hit("k")
    limiter.refund("k")
    limiter.refund("k")  # the refused third attempt counted too: two refunds free one
    assert limiter.hit("k") and not limiter.hit("k")
    assert 0 < limiter.client.ttl(f"{limiter.prefix}:k") <= 60
    limiter.reset("k")


def test_the_store_id_is_checked_before_anything_is_counted(
    settings: Settings, engine: Engine, floor: Floor
) -> None:
    """A key scoped to one store is refused another store's notices (403) uncounted."""
    client = _client(settings, engine)
    floor.store()
    floor.store("cafe-02", "Other")
    member = floor.member()
    key = floor.scanner(STORE)
    for _ in range(5):
        wrong = client.post(
            "/v1/notices", json=raise_body(store_id="cafe-02", customer_id="L-z"), headers=key
        )
        assert wrong.status_code == 403
    assert _statuses(client, key, [member]) == [201]


def test_a_burst_of_members_never_locks_an_honest_key_out(
    settings: Settings, engine: Engine, floor: Floor
) -> None:
    """A review: a request answered 429 stayed counted, so members' notices arriving
    together past the limit locked the key for the hour without a single refusal."""
    client = _client(settings, engine)
    floor.store()
    members = [floor.member(f"L-b{i}", first=f"B{i}") for i in range(8)]
    key = floor.scanner()
    with ThreadPoolExecutor(8) as pool:
        burst = list(pool.map(lambda m: _statuses(client, key, [m])[0], members))
    assert set(burst) <= {201, 429} and burst.count(201) >= 3  # in flight, at most 3 held
    late = [m for m, s in zip(members, burst, strict=True) if s == 429]
    assert _statuses(client, key, late) == [201] * len(late)  # nothing was held back
    assert _statuses(client, key, ["L-u1", "L-u2", "L-u3", "L-u4"]) == [422, 422, 422, 429]


def test_take_counts_only_under_the_limit() -> None:
    now = [0.0]
    limiter = MemoryLimiter(limit=2, window_s=60, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(4)] == [True, True, False, False]
    limiter.refund("k")  # the refused ones were never counted: one refund frees one
    assert [limiter.take("k") for _ in range(2)] == [True, False]
    now[0] = 60.0
    assert limiter.take("k")


@pytest.mark.redis
def test_in_redis_take_counts_only_under_the_limit_and_sets_the_window(redis_url: str) -> None:
    limiter = RedisLimiter(redis_url, limit=2, window_s=60, prefix=f"t:{uuid.uuid4().hex}")
    assert [limiter.take("k") for _ in range(4)] == [True, True, False, False]
    assert int(limiter.client.get(f"{limiter.prefix}:k")) == 2
    assert 0 < limiter.client.ttl(f"{limiter.prefix}:k") <= 60
    limiter.reset("k")


def test_with_redis_unreachable_notices_still_come_through() -> None:
    """Fails open, logged: refusing every notice would stop the staff app (a review
    found a 500 for a known member while Redis was down)."""
    limiter = RedisLimiter("redis://127.0.0.1:1/0", limit=1, window_s=60)
    assert limiter.take("k") and limiter.take("k")
    limiter.refund("k")  # no error either
