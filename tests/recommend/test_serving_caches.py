"""The serving caches stay true: consent, declines, stock and queued impressions.

A warm answer reads only the candidate entry and the engine's caches, so each way
the truth changes must reach them: a consent event, a decline through the API, a
stock change (through the API at once; written by someone else within the stock
TTL, on an injected clock), an erasure of rows still queued.
"""

from __future__ import annotations

import shutil
import threading
from datetime import timedelta
from pathlib import Path

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, select
from tests.recommend.test_serving import NOW, Login, World, world

from storelens.api.routers.recommendations import _public, answer_json
from storelens.config import Settings
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer
from storelens.recommend import evidence
from storelens.recommend.candidate_store import MemoryCandidates
from storelens.recommend.context import Context
from storelens.recommend.engine import STOCK_TTL_S, RecommendationEngine
from storelens.recommend.impression_log import ImpressionLog, queued_for
from storelens.storage.db import create_engine
from storelens.storage.tables import recommend_impressions

__all__ = ["world"]  # the fixture, shared with test_serving


def _ids(body: dict[str, object]) -> set[str]:
    return {r["product_id"] for r in body["data"]}  # type: ignore[attr-defined, index]


def test_consent_withdrawn_after_a_cached_answer(world: World, login: Login) -> None:
    staff = login("analyst")
    assert world.get(staff, "ada").json()["personalized"] is True
    cached = world.candidates.get("ada")
    assert cached is not None and cached.consent is True and "flat-white" in cached.items

    world.consent("ada", False, NOW - timedelta(hours=1))
    world.project()
    cached = world.candidates.get("ada")
    assert cached is not None and cached.consent is False
    assert cached.items == {} and cached.order_ids == ()  # no evidence kept without consent
    body = world.get(staff, "ada").json()
    assert body["personalized"] is False
    assert body["reason"] == "no personalization consent on record for this id"

    # A grant older than the withdrawal, arriving late, changes nothing.
    world.consent("ada", True, NOW - timedelta(days=2))
    world.project()
    assert world.get(staff, "ada").json()["personalized"] is False

    world.consent("ada", True, NOW - timedelta(minutes=5))
    world.project()
    body = world.get(staff, "ada").json()
    assert body["personalized"] is True
    assert body["data"][0]["product_id"] == "flat-white"


def test_decline_after_a_cached_answer(world: World, login: Login) -> None:
    staff = login("analyst")
    assert "orange-juice" in _ids(world.get(staff, "ada", k=50).json())
    r = world.client.post(
        "/v1/customers/ada/declined-items", json={"product_id": "orange-juice"}, headers=staff
    )
    assert r.status_code == 200, r.text
    assert "orange-juice" not in _ids(world.get(staff, "ada", k=50).json())
    # Also for an entry built afresh (from the table), and for the non-personal list.
    world.candidates.delete(["ada"])
    assert "orange-juice" not in _ids(world.get(staff, "ada", k=50).json())
    world.consent("ada", False, NOW - timedelta(hours=1))
    world.project()
    assert "orange-juice" not in _ids(world.get(staff, "ada", k=50).json())


def test_stock_change_after_a_cached_answer(world: World, login: Login) -> None:
    admin, staff = login("admin"), login("analyst")
    assert "latte" in _ids(world.get(staff, "stranger").json())
    r = world.client.put(
        "/v1/stores/cafe-01/stock", json={"items": {"latte": False}}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert "latte" not in _ids(world.get(staff, "stranger").json())
    r = world.client.put("/v1/stores/cafe-01/stock", json={"items": {"latte": True}}, headers=admin)
    assert "latte" in _ids(world.get(staff, "stranger").json())


def test_stock_written_elsewhere_shows_within_the_ttl(
    world: World, engine: Engine, settings: Settings
) -> None:
    """Another process wrote the table: this engine sees it once its stock cache ages."""
    tick = [100.0]
    reco = RecommendationEngine(
        engine, settings, MemoryCandidates(600), clock=lambda: NOW, monotonic=lambda: tick[0]
    )
    ids = lambda: {r.product_id for r in reco.recommend_for("x", "cafe-01", 10)}  # noqa: E731
    assert "croissant" in ids()
    with engine.begin() as conn:
        evidence.set_stock(conn, "cafe-01", {"croissant": False}, NOW)
    assert "croissant" in ids()  # still the cached stock
    tick[0] += STOCK_TTL_S + 0.01
    assert "croissant" not in ids()
    reco.close()


def test_queued_impressions_are_exported_and_erased(
    world: World, login: Login, engine: Engine
) -> None:
    world.get(login("analyst"), "ada", k=3)
    [queued] = queued_for({"ada"})
    assert [item["rank"] for item in queued["shown"]] == [1, 2, 3]
    erase_customer(engine, "ada", audit.SYSTEM, "test erasure")
    assert world.reco.impressions.pending() == 0
    world.reco.impressions.flush()
    with engine.connect() as conn:
        left = conn.execute(
            select(func.count()).where(recommend_impressions.c.customer_id == "ada")
        ).scalar_one()
    assert left == 0


def test_impression_log_loses_nothing(engine: Engine) -> None:
    """Past its bound the caller writes its own rows; close() writes the rest."""
    impressions = ImpressionLog(engine, every_s=3600.0, max_rows=3, write_at=4)
    row = {"ts": NOW, "store_id": "s", "personalized": True, "actor": "t"}

    def shown(customer: str, product: str) -> dict[str, object]:
        return {**row, "customer_id": customer, "shown": ((product, 0.5),)}

    impressions.add([shown("a", "p1"), shown("a", "p2")])
    assert impressions.pending() == 2
    impressions.add([shown("b", "p1"), shown("b", "p2")])  # over the bound
    assert impressions.pending() == 0
    impressions.add([shown("c", "p1")])
    impressions.close()
    with engine.connect() as conn:
        got = conn.execute(
            select(recommend_impressions.c.customer_id, recommend_impressions.c.shown).order_by(
                recommend_impressions.c.id
            )
        ).all()
    assert [(c, items[0]["product_id"]) for c, items in got] == [
        ("a", "p1"),
        ("a", "p2"),
        ("b", "p1"),
        ("b", "p2"),
        ("c", "p1"),
    ]
    impressions.add([shown("d", "p1")])  # after close: written at once
    assert impressions.pending() == 0


def test_an_erasure_during_a_blocked_write_leaves_no_row(
    sqlite_template: Path, tmp_path: Path
) -> None:
    """SQLite: the erasure's transaction holds the write lock while the writer thread's
    insert waits on it. The erasure cannot wait for the writer (that deadlocks), so the
    writer deletes the erased customer's rows once its insert commits."""
    target = tmp_path / "erase-race.db"
    shutil.copy(sqlite_template, target)
    engine = create_engine(f"sqlite:///{target}")
    impressions = ImpressionLog(engine, every_s=3600.0)
    row = {"ts": NOW, "store_id": "s", "personalized": True, "actor": "t",
           "shown": (("p", 0.5),)}  # fmt: skip
    impressions.add([{**row, "customer_id": "ada"}, {**row, "customer_id": "bob"}])
    column = recommend_impressions.c.customer_id
    with engine.begin() as erasure:  # as erase_customer: earlier stores' deletes take the lock
        erasure.execute(delete(recommend_impressions).where(column == "nobody"))
        writer = threading.Thread(target=impressions.flush)
        writer.start()
        for _ in range(2000):  # until the writer holds the batch (bounded; never timed)
            if impressions.pending() == 0:
                break
            threading.Event().wait(0.005)
        assert impressions.pending() == 0 and writer.is_alive()  # its insert waits on us
        assert impressions.forget({"ada"}) == 0  # nothing queued any more: a mark instead
        erasure.execute(delete(recommend_impressions).where(column == "ada"))
    writer.join()
    with engine.connect() as conn:
        left = conn.execute(select(column).order_by(column)).scalars().all()
    assert left == ["bob"]
    impressions.close()
    engine.dispose()


def test_fast_json_is_the_response_model(world: World, client: TestClient) -> None:
    for customer in ("ada", "stranger"):
        answer = world.reco.answer(
            customer, "cafe-01", 10, Context(zone="pastry-case"), log_impressions=False
        )
        assert answer.items
        # Byte for byte, twice: the second answer is written from the kept JSON text.
        expected = orjson.dumps(_public(answer).model_dump(mode="json"))
        assert answer_json(answer) == expected
        assert answer_json(answer) == expected
