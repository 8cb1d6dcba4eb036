"""``storelens recommend train`` on the orders table: evaluation figures and precomputed
candidates, and a refusal when there is nothing to learn from."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from storelens.cli import app
from storelens.core.events import event_adapter
from storelens.processors import default_projections, run_projections
from storelens.recommend.training import history_from_orders
from storelens.storage.eventlog import EventLog

START = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def _orders(engine: Engine, customers: int, per_customer: int, consent: bool = False) -> None:
    """Orders of ``customers`` loyalty members; with ``consent``, each grants
    personalization first (train learns only from those who do)."""
    rng = random.Random(2)
    events = []
    if consent:
        events += [
            event_adapter.validate_python(
                {"id": str(uuid.uuid4()), "type": "consent.changed",
                 "ts": (START - timedelta(days=1)).isoformat(), "source": "app",
                 "subject": f"L{c}", "payload": {"purpose": "personalization", "granted": True}}
            )
            for c in range(customers)
        ]  # fmt: skip
    for c in range(customers):
        staples = [f"p{rng.randrange(12)}" for _ in range(2)]
        for n in range(per_customer):
            basket = set(staples[: 1 + n % 2]) | {f"p{rng.randrange(30)}"}
            events.append(
                event_adapter.validate_python(
                    {"id": str(uuid.uuid4()), "type": "pos.order_paid",
                     "ts": (START + timedelta(days=3 * n, minutes=c)).isoformat(),
                     "source": "pos", "store_id": "cafe-01", "subject": f"L{c}",
                     "payload": {"order_id": f"o-{c}-{n}", "customer_id": f"L{c}",
                                 "lines": [{"product_id": p, "qty": 1, "unit_price": 2.0}
                                           for p in sorted(basket)]}}
                )
            )  # fmt: skip
    log = EventLog(engine)
    log.append(events)
    run_projections(log, [p for p in default_projections() if p.name in ("orders", "consent")])


def test_train_reports_and_precomputes(engine: Engine, db_url: str) -> None:
    _orders(engine, customers=40, per_customer=6, consent=True)
    result = CliRunner().invoke(app, ["recommend", "train", "--database-url", db_url, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["users"] == 40
    assert report["train_baskets"] == 40 * 5  # each customer's last order held out
    blend = report["methods"]["blend"]
    assert 0 < blend["recall@10"] <= 1
    assert "candidates: not precomputed" in result.stderr  # memory ends with the command


def test_train_precomputes_candidates_into_redis(
    engine: Engine, db_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from storelens.recommend.candidate_store import RedisCandidates

    _orders(engine, customers=40, per_customer=6, consent=True)
    monkeypatch.setenv("STORELENS_RECOMMEND_CANDIDATE_STORE", "redis")
    monkeypatch.setenv("STORELENS_REDIS_URL", redis_url)
    result = CliRunner().invoke(app, ["recommend", "train", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "40 customers' candidates written to Redis" in result.stderr
    shared = RedisCandidates(redis_url, 60, 1.0)
    try:
        assert shared.get("L0") is not None
    finally:
        shared.delete([f"L{i}" for i in range(40)])
        shared.close()


def test_orders_carry_their_context(engine: Engine) -> None:
    """Days since the customer's prior order, weekday and hour come from payment times,
    the cart position from the till's line numbers."""
    _orders(engine, customers=3, per_customer=4, consent=True)
    with engine.connect() as conn:
        history = history_from_orders(conn)
    assert history.users == ("L0", "L1", "L2")
    when = history.order_context(1)
    assert np.isnan(when[0, 0]) and when[1:, 0] == pytest.approx([3.0, 3.0, 3.0])
    paid = START + timedelta(days=3, minutes=1)
    assert when[1, 1:].tolist() == [paid.weekday(), paid.hour]
    assert sorted(history.cart_positions(1, 1).tolist()) == list(
        range(1, len(history.baskets[1][1]) + 1)
    )


def test_train_refuses_without_repeat_customers(engine: Engine, db_url: str) -> None:
    _orders(engine, customers=5, per_customer=1, consent=True)
    result = CliRunner().invoke(app, ["recommend", "train", "--database-url", db_url])
    assert result.exit_code == 2
    assert "no customer who consents to personalization has two orders" in result.output


def test_train_refuses_when_nobody_consents(engine: Engine, db_url: str) -> None:
    _orders(engine, customers=5, per_customer=4)  # repeat customers, none consenting
    result = CliRunner().invoke(app, ["recommend", "train", "--database-url", db_url])
    assert result.exit_code == 2
    assert "consents to personalization" in result.output


pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")
