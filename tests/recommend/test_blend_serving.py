"""Serving by the learned blend: the stored scores order a consenting customer's list,
the rules still apply on top, consent and erasure reach the scores, and ``recommend
train`` writes them for consenting customers only."""

from __future__ import annotations

import math
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, func, select
from tests.recommend.test_serving import NOW, Login, World, world
from tests.recommend.test_train_command import START
from tests.recommend.test_train_command import _orders as train_orders

from storelens.config import Settings
from storelens.core.errors import InvalidInput
from storelens.core.events import event_adapter
from storelens.privacy import audit
from storelens.privacy.erasure import erase_customer, export_customer
from storelens.processors import default_projections, run_projections
from storelens.recommend.baskets import BasketLine, history_from_lines, history_from_rows
from storelens.recommend.blend_scores import (
    BlendScores,
    expected_context,
    score_next_baskets,
    write_blend,
)
from storelens.recommend.candidate_store import CustomerCandidates
from storelens.recommend.ranker import SourceParams
from storelens.recommend.training import history_from_orders, store_blend_scores
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import recommend_blend

__all__ = ["world"]  # the fixture, imported to be found

SCORED_AT = NOW - timedelta(hours=2)


def _store_blend(engine: Engine, w: World, lists: dict[str, list[tuple[str, float]]]) -> None:
    """As ``recommend train`` leaves things: rows written, entries rebuilt from tables."""
    with engine.begin() as conn:
        write_blend(conn, BlendScores("test-v1", SCORED_AT, lists), set(lists))
    w.candidates.delete(list(lists))


def _ids(body: dict[str, object]) -> list[str]:
    return [r["product_id"] for r in body["data"]]  # type: ignore[attr-defined, index]


def test_served_order_follows_the_blend(world: World, login: Login, engine: Engine) -> None:
    staff = login("analyst")
    by_counts = world.get(staff, "ada", k=10).json()
    assert _ids(by_counts)[0] == "flat-white"  # eight orders against six
    _store_blend(engine, world, {"ada": [("orange-juice", 0.9), ("muffin", 0.6),
                                         ("flat-white", 0.4)]})  # fmt: skip
    body = world.get(staff, "ada", k=4).json()
    assert body["personalized"] is True
    assert _ids(body)[:3] == ["orange-juice", "muffin", "flat-white"]
    assert [r["score"] for r in body["data"][:3]] == pytest.approx([0.9, 0.6, 0.4])
    # Items the blend did not score follow, by their calibrated counts.
    unscored = [p for p in _ids(by_counts) if p not in {"orange-juice", "muffin", "flat-white"}]
    assert _ids(body)[3] == unscored[0]
    # Explanations and confidence stay the evidence's true counts.
    juice = body["data"][0]
    assert juice["source"] == "repeat"
    assert juice["explanation"] == "you bought this 6 times in the last 2 months"
    before = next(r for r in by_counts["data"] if r["product_id"] == "flat-white")
    after = next(r for r in body["data"] if r["product_id"] == "flat-white")
    assert after["confidence"] == pytest.approx(before["confidence"])
    assert after["evidence"] == before["evidence"]


def test_rules_apply_on_top_of_the_blend(world: World, login: Login, engine: Engine) -> None:
    admin, staff = login("admin"), login("analyst")
    _store_blend(engine, world, {"ada": [("latte", 0.95), ("orange-juice", 0.9),
                                         ("flat-white", 0.8)]})  # fmt: skip
    assert _ids(world.get(staff, "ada", k=3).json()) == ["latte", "orange-juice", "flat-white"]
    r = world.client.put(
        "/v1/stores/cafe-01/stock", json={"items": {"latte": False}}, headers=admin
    )
    assert r.status_code == 200, r.text
    r = world.client.post(
        "/v1/customers/ada/declined-items", json={"product_id": "orange-juice"}, headers=staff
    )
    assert r.status_code == 200, r.text
    got = _ids(world.get(staff, "ada", k=50).json())
    assert got[0] == "flat-white"
    assert not {"latte", "orange-juice"} & set(got)


def test_bought_since_scoring_goes_through_the_recency_rule(
    world: World, login: Login, engine: Engine
) -> None:
    staff = login("analyst")
    _store_blend(engine, world, {"ada": [("muffin", 0.9), ("flat-white", 0.5)]})
    world.order("ada", ["muffin"], NOW - timedelta(hours=1))  # after the scoring run
    world.project()
    got = _ids(world.get(staff, "ada", k=5).json())
    assert "muffin" not in got  # bought an hour ago and not a staple
    assert got[0] == "flat-white"


def test_withdrawal_drops_the_blend_at_once(world: World, login: Login, engine: Engine) -> None:
    staff = login("analyst")
    _store_blend(engine, world, {"ada": [("orange-juice", 0.9)]})
    assert _ids(world.get(staff, "ada", k=1).json()) == ["orange-juice"]
    cached = world.candidates.get("ada")
    assert cached is not None and cached.blend == {"orange-juice": 0.9}
    world.consent("ada", False, NOW - timedelta(minutes=5))
    world.project()
    cached = world.candidates.get("ada")
    assert cached is not None and cached.blend == {} and cached.consent is False
    body = world.get(staff, "ada", k=4).json()
    assert body["personalized"] is False
    assert {r["source"] for r in body["data"]} == {"popularity"}
    assert "orange-juice" not in _ids(body)
    # The rows went with the withdrawal, not at the next train (a security review).
    with engine.connect() as conn:
        left = conn.execute(
            select(func.count())
            .select_from(recommend_blend)
            .where(recommend_blend.c.customer_id == "ada")
        ).scalar_one()
    assert left == 0
    world.candidates.delete(["ada"])
    assert world.get(staff, "ada", k=4).json()["personalized"] is False
    assert world.candidates.get("ada") is None  # fills refused for a grace after it
    with engine.connect() as conn:
        rebuilt = world.reco.build(conn, "ada")
    assert rebuilt is not None and rebuilt.blend == {} and rebuilt.consent is False


def test_erasure_removes_the_rows(world: World, engine: Engine) -> None:
    _store_blend(engine, world, {"ada": [("orange-juice", 0.9), ("muffin", 0.2)],
                                 "crowd-1": [("latte", 0.7)]})  # fmt: skip
    exported = export_customer(engine, "ada", audit.SYSTEM)
    rows = exported["stores"]["recommend_blend"]
    assert [(r["product_id"], r["rank"]) for r in rows] == [("orange-juice", 1), ("muffin", 2)]
    erase_customer(engine, "ada", audit.SYSTEM, "test erasure")
    with engine.connect() as conn:
        left = dict(
            conn.execute(
                select(recommend_blend.c.customer_id, func.count()).group_by(
                    recommend_blend.c.customer_id
                )
            ).all()
        )
    assert left == {"crowd-1": 1}


def _consent(engine: Engine, customer: str, granted: bool, at: datetime) -> None:
    log = EventLog(engine)
    log.append(
        [
            event_adapter.validate_python(
                {"id": str(uuid.uuid4()), "type": "consent.changed", "ts": at.isoformat(),
                 "source": "app", "subject": customer,
                 "payload": {"purpose": "personalization", "granted": granted}}
            )
        ]
    )  # fmt: skip
    run_projections(log, [p for p in default_projections() if p.name == "consent"])


def test_train_writes_rows_only_for_consenting_customers(engine: Engine) -> None:
    train_orders(engine, customers=30, per_customer=6)
    for c in range(0, 30, 3):  # L0, L3, ... grant; L1 grants then withdraws
        _consent(engine, f"L{c}", True, START)
    _consent(engine, "L1", True, START)
    _consent(engine, "L1", False, START + timedelta(days=1))
    settings = Settings(recommend_blend_top_n=5)
    with engine.connect() as conn:
        history = history_from_orders(conn)
    clock = lambda: datetime(2026, 12, 1, tzinfo=UTC)  # noqa: E731
    params = SourceParams(als_iterations=3)
    customers, rows = store_blend_scores(engine, settings, history, params, clock)
    with engine.connect() as conn:
        stored = conn.execute(select(recommend_blend)).all()
    granted = {f"L{c}" for c in range(0, 30, 3)}
    assert {r.customer_id for r in stored} == granted and customers == len(granted)
    assert rows == len(stored) and rows <= 5 * len(granted)
    for customer in granted:
        mine = sorted((r for r in stored if r.customer_id == customer), key=lambda r: r.rank)
        assert [r.rank for r in mine] == list(range(1, len(mine) + 1))
        assert [r.score for r in mine] == sorted((r.score for r in mine), reverse=True)
        assert all(0 < r.score <= 1 for r in mine)
        assert {r.scored_at for r in mine} == {clock()}
    # A withdrawal before the next train: that train drops the customer's rows.
    _consent(engine, "L0", False, START + timedelta(days=40))
    store_blend_scores(engine, settings, history, params, clock)
    with engine.connect() as conn:
        after = {r.customer_id for r in conn.execute(select(recommend_blend)).all()}
    assert after == granted - {"L0"}


def test_entry_carries_the_blend_through_json() -> None:
    entry = CustomerCandidates("ada", blend={"latte": 0.25}, blend_at=1.5e9, consent=True)
    back = CustomerCandidates.from_json(entry.to_json())
    assert back.blend == {"latte": 0.25} and back.blend_at == 1.5e9
    old = b'{"customer_id":"x","order_ids":[],"order_times":[],"items":{},"copurchase":{}}'
    assert CustomerCandidates.from_json(old).blend == {}  # written before it was kept
    back.withdraw(2e9)
    assert back.blend == {} and back.blend_at == 0.0


def test_expected_context_is_each_customers_usual() -> None:
    nan = float("nan")
    lines = [
        BasketLine("u", "o1", "a", 1, nan, nan, 2, 9),
        BasketLine("u", "o2", "a", 2, nan, 3.0, 2, 9),
        BasketLine("u", "o3", "a", 3, nan, 5.0, 4, 17),
        BasketLine("u", "o4", "a", 4, nan, 10.0, 2, 17),
        BasketLine("v", "o5", "b", 1, nan, nan, 6, 20),
    ]
    ctx = expected_context(history_from_lines(lines))
    assert ctx[0].tolist() == [5.0, 2.0, 9.0]  # median gap; weekday 2 thrice; 9 h vs 17 h tie
    assert math.isnan(ctx[1, 0]) and ctx[1, 1:].tolist() == [6.0, 20.0]  # one order: no gap
    blank = expected_context(history_from_rows([("u", "o1", "a", 1), ("u", "o2", "a", 2)]))
    assert np.isnan(blank).all()  # a basket file without context columns


@pytest.mark.parametrize("top_n", [0, -3, 501])
def test_bad_settings_are_rejected(top_n: int) -> None:
    with pytest.raises(ValidationError):
        Settings(recommend_blend_top_n=top_n)


def test_bad_scoring_arguments_are_rejected() -> None:
    history = history_from_rows([("u", "o1", "a", 1), ("u", "o2", "a", 2)])
    with pytest.raises(InvalidInput, match="top_n"):
        score_next_baskets(history, SourceParams(), 0, NOW)
    with pytest.raises(InvalidInput, match="timezone"):
        score_next_baskets(history, SourceParams(), 5, datetime(2026, 12, 1))


pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def test_a_score_that_is_not_a_number_is_never_stored_nor_served(engine: Engine) -> None:
    """NaN compares false both ways: in a list it made the order depend on how the list
    was built (a review found serving's merged ranking and the full one apart on it)."""
    from storelens.recommend.blend_scores import load_blend

    lists = {"ada": [("tea", 0.9), ("bun", math.nan), ("jam", math.inf), ("oat", 0.2)]}
    with engine.begin() as conn:
        assert write_blend(conn, BlendScores("test-v1", SCORED_AT, lists), {"ada"}) == 2
        ranks = conn.execute(
            select(recommend_blend.c.product_id, recommend_blend.c.rank)
            .order_by(recommend_blend.c.rank)
        ).all()  # fmt: skip
        assert [tuple(r) for r in ranks] == [("tea", 1), ("oat", 2)]
        if engine.dialect.name == "postgresql":  # it keeps NaN (SQLite refuses it: NULL)
            conn.execute(recommend_blend.insert().values(
                customer_id="ada", product_id="bun", score=math.nan, rank=3,
                model_version="test-v1", scored_at=SCORED_AT,
            ))  # fmt: skip
        scores, _ = load_blend(conn, "ada")
    assert scores == {"tea": 0.9, "oat": 0.2}


def _blend_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(
            conn.execute(  # type: ignore[arg-type]
                select(recommend_blend.c.customer_id, func.count()).group_by(
                    recommend_blend.c.customer_id
                )
            ).all()
        )


def test_an_erasure_while_train_scores_is_not_undone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A security review erased a customer while train scored, between its consent
    read and its write: the person's rows came back under their id, and a second
    erasure answered "no customer". Here one erasure runs during the scoring and a
    second starts right after train has read consent for its write: consent is read
    under the erasure lock, so that erasure waits for the write to commit and then
    deletes what it wrote (without the lock it commits first, and the write puts the
    person's rows back; the thread is given a second to get that far). And an id
    holding only such rows counts as held, so asking again erases them."""
    import storelens.recommend.training as training

    train_orders(engine, customers=12, per_customer=6)
    for c in range(12):
        _consent(engine, f"L{c}", True, START)
    with engine.connect() as conn:
        history = history_from_orders(conn)
    score = training.score_next_baskets

    def score_while_erased(*args: object, **kwargs: object) -> object:
        scored = score(*args, **kwargs)  # type: ignore[arg-type]
        assert "L3" in scored.lists
        erase_customer(engine, "L3", audit.SYSTEM, "request 42")
        return scored

    read = training.consenting
    racing: list[threading.Thread] = []

    def read_then_erase(conn: object, customers: list[str]) -> set[str]:
        allowed = read(conn, customers)  # type: ignore[arg-type]
        assert "L5" in allowed
        racing.append(
            threading.Thread(target=erase_customer, args=(engine, "L5", audit.SYSTEM, "r 43"))
        )
        racing[0].start()
        racing[0].join(timeout=1.0)  # with the lock it waits for this write to commit
        return allowed

    monkeypatch.setattr(training, "score_next_baskets", score_while_erased)
    monkeypatch.setattr(training, "consenting", read_then_erase)
    clock = lambda: datetime(2026, 12, 1, tzinfo=UTC)  # noqa: E731
    params = SourceParams(als_iterations=3)
    customers, _ = store_blend_scores(engine, Settings(), history, params, clock)
    racing[0].join()
    stored = _blend_rows(engine)
    assert "L3" not in stored and "L5" not in stored and customers == 11
    assert set(stored) == {f"L{c}" for c in range(12) if c not in (3, 5)}
    # Rows written under an id nobody else holds any more are found by asking again.
    with engine.begin() as conn:
        conn.execute(
            recommend_blend.insert(),
            {"customer_id": "L3", "product_id": "p1", "score": 0.5, "rank": 1,
             "model_version": "v", "scored_at": clock()},
        )  # fmt: skip
    exported = export_customer(engine, "L3", audit.SYSTEM)
    assert [r["product_id"] for r in exported["stores"]["recommend_blend"]] == ["p1"]
    erase_customer(engine, "L3", audit.SYSTEM, "request 42, again")
    assert "L3" not in _blend_rows(engine)


def test_train_learns_only_from_customers_who_consent(engine: Engine) -> None:
    """A security review: 495 of the demo's 570 training histories had no consent."""
    train_orders(engine, customers=12, per_customer=4)
    for c in range(0, 12, 2):
        _consent(engine, f"L{c}", True, START)
    _consent(engine, "L2", False, START + timedelta(days=1))  # granted, then withdrew
    with engine.connect() as conn:
        history = history_from_orders(conn)
    assert set(history.users) == {f"L{c}" for c in range(0, 12, 2)} - {"L2"}


def test_a_replayed_old_withdrawal_keeps_the_rows_of_a_later_grant(
    world: World, engine: Engine
) -> None:
    _store_blend(engine, world, {"ada": [("orange-juice", 0.9)]})
    world.consent("ada", True, NOW - timedelta(minutes=1))  # the latest decision: a grant
    world.consent("ada", False, NOW - timedelta(days=3))  # an old withdrawal, delivered late
    world.project()
    assert _blend_rows(engine) == {"ada": 1}


def test_a_merge_that_hands_over_a_withdrawal_removes_the_blend_rows(
    world: World, engine: Engine
) -> None:
    """The card granted personalization and was scored; a web account withdrew. Once
    resolution links the two, the person's latest decision is the withdrawal, so the
    registry's relink step deletes the card's rows (as it does the predictions')."""
    import uuid as uuid_module

    from storelens.privacy import registry
    from storelens.storage.tables import consent_records, customer_aliases

    _store_blend(engine, world, {"ada": [("orange-juice", 0.9)], "bob": [("latte", 0.4)]})
    with engine.begin() as conn:
        conn.execute(consent_records.insert(), {
            "subject": "web-ada", "purpose": "personalization", "granted": False,
            "channel": "app", "ts": NOW - timedelta(minutes=1),
            "event_id": uuid_module.uuid4()})  # fmt: skip
        assert registry.relinked(conn, frozenset({"ada", "web-ada"}))["recommend_blend"] == 0
        conn.execute(customer_aliases.insert(), {"alias": "web-ada", "customer_id": "ada"})
        assert registry.relinked(conn, frozenset({"ada", "web-ada"}))["recommend_blend"] == 1
    assert _blend_rows(engine) == {"bob": 1}
