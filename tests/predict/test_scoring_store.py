"""Scoring runs end to end: consent decides who is scored, the registry keeps the models,
erasure removes features, scores and memberships, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, func, insert, select
from typer.testing import CliRunner

from storelens.cli import app
from storelens.predict.challenger import CANDIDATES
from storelens.predict.store import (
    consenting_customers,
    customer_prediction,
    customers_overview,
    list_segments,
    rescore,
    segment_page,
)
from storelens.privacy.audit import SYSTEM
from storelens.privacy.erasure import erase_customer
from storelens.sim.lifecycle import LifecycleConfig, simulate_lifecycles, weeks_after
from storelens.storage.tables import (
    consent_records,
    customer_features,
    customer_scores,
    orders,
    predict_models,
    segment_members,
)

CONFIG = LifecycleConfig(customers=300, weeks=40, join_weeks=30, seed=5)
AS_OF = weeks_after(CONFIG.start, 40)
NO_CONSENT = "S0000002"
WITHDRAWN = "S0000003"
SETTINGS = {"window_days": 60, "clv_months": 6, "monthly_discount": 0.01, "seeds": 3}


def _consent(subject: str, granted: bool, ts: datetime) -> dict[str, object]:
    return {
        "subject": subject,
        "purpose": "analytics",
        "granted": granted,
        "channel": "app",
        "ts": ts,
        "event_id": uuid.uuid4(),
    }


def _load(engine: Engine) -> pd.DataFrame:
    sim, _ = simulate_lifecycles(CONFIG)
    rows = [
        {
            "store_id": "cafe-01",
            "order_id": f"o-{i}",
            "ts": ts.to_pydatetime(),
            "channel": channel,
            "customer_id": cid,
            "total": float(amount),
            "currency": "EUR",
            "event_id": uuid.uuid4(),
        }
        for i, (cid, ts, amount, channel) in enumerate(
            sim[["customer_id", "ts", "amount", "channel"]].itertuples(index=False)
        )
    ]
    start = CONFIG.start
    consents = [
        _consent(c, True, start) for c in sorted(set(sim["customer_id"])) if c != NO_CONSENT
    ]
    consents.append(_consent(WITHDRAWN, False, start + timedelta(days=3)))
    with engine.begin() as conn:
        conn.execute(insert(orders), rows)
        conn.execute(insert(consent_records), consents)
    return sim


@pytest.fixture
def scored(engine: Engine) -> pd.DataFrame:
    sim = _load(engine)
    rescore(engine, AS_OF, threads=1, **SETTINGS)
    return sim


def test_only_customers_with_analytics_consent_are_scored(
    engine: Engine, scored: pd.DataFrame
) -> None:
    with engine.connect() as conn:
        consenting = consenting_customers(conn)
        scored_ids = set(conn.execute(select(customer_scores.c.customer_id)).scalars())
        featured = set(conn.execute(select(customer_features.c.customer_id)).scalars())
        members = set(conn.execute(select(segment_members.c.customer_id)).scalars())
        assert customer_prediction(conn, [NO_CONSENT]) is None
        assert customer_prediction(conn, [WITHDRAWN]) is None
    assert NO_CONSENT not in consenting and WITHDRAWN not in consenting
    bought = set(scored.loc[scored["ts"] < pd.Timestamp(AS_OF), "customer_id"])
    assert scored_ids == featured == members == bought & consenting
    assert len(scored_ids) > 250


def test_profile_scores_segments_and_registry(engine: Engine, scored: pd.DataFrame) -> None:
    with engine.connect() as conn:
        some = conn.execute(select(customer_scores.c.customer_id).limit(1)).scalar_one()
        prediction = customer_prediction(conn, [some])
        kinds = set(conn.execute(select(predict_models.c.kind)).scalars())
        model = conn.execute(select(predict_models).where(predict_models.c.kind == "clv")).one()
        segments = list_segments(conn)
        first = segment_page(conn, segments[0]["id"], None, 10)
        second = segment_page(conn, segments[0]["id"], first.next_cursor, 10)
        overview = customers_overview(conn)
    assert prediction is not None
    assert prediction["clv"] is not None and prediction["clv"] >= 0
    assert 0 <= prediction["churn_risk"] <= 1 and 0 <= prediction["p_alive"] <= 1
    assert {s["kind"] for s in prediction["segments"]} == {"rfm", "cluster"}
    assert kinds == {"clv", "churn", "rfm", "clusters"}
    assert model.data_to == AS_OF and model.data_from >= CONFIG.start
    assert set(model.params["bgnbd"]) == {"r", "alpha", "a", "b"}
    # The purchase model is the validation winner, named with its figures.
    validation = model.metrics["validation"]
    assert model.params["model"] in CANDIDATES and model.metrics["fallback_reason"] is None
    assert set(validation["candidates"]) == set(CANDIDATES)
    assert validation["winner"] == validation["candidates"][model.params["model"]]
    assert validation["to"] == (AS_OF - timedelta(microseconds=1)).date().isoformat()
    assert {s["kind"] for s in segments} == {"rfm", "cluster"}
    assert (
        sum(s["customers"] for s in segments if s["kind"] == "rfm") == overview["clv"]["customers"]
    )
    assert len(first.members) == min(10, segments[0]["customers"])
    if segments[0]["customers"] > 10:
        assert first.next_cursor == first.members[-1]["customer_id"]
        assert second.members[0]["customer_id"] > first.next_cursor
    assert overview["clv"]["quantiles"]["p50"] <= overview["clv"]["quantiles"]["p90"]
    assert all("mean_churn_risk" in s for s in overview["segments"])


def test_consent_withdrawn_means_no_score_on_the_next_run(
    engine: Engine, scored: pd.DataFrame
) -> None:
    with engine.connect() as conn:
        victim = conn.execute(select(customer_scores.c.customer_id).limit(1)).scalar_one()
    with engine.begin() as conn:
        conn.execute(insert(consent_records), [_consent(victim, False, AS_OF - timedelta(hours=1))])
    rescore(engine, AS_OF, threads=1, **SETTINGS)
    with engine.connect() as conn:
        assert customer_prediction(conn, [victim]) is None
        left = conn.execute(
            select(func.count())
            .select_from(segment_members)
            .where(segment_members.c.customer_id == victim)
        ).scalar_one()
        features = conn.execute(
            select(func.count())
            .select_from(customer_features)
            .where(customer_features.c.customer_id == victim)
        ).scalar_one()
    assert (left, features) == (0, 0)


def test_erasure_removes_features_scores_and_memberships(
    engine: Engine, scored: pd.DataFrame
) -> None:
    with engine.connect() as conn:
        victim = conn.execute(select(customer_scores.c.customer_id).limit(1)).scalar_one()
        before = conn.execute(select(func.count()).select_from(customer_scores)).scalar_one()
    erasure = erase_customer(engine, victim, SYSTEM, "request 14")
    assert erasure.erased["predictions"] >= 3  # features, scores, at least two memberships
    assert erasure.scan.total == 0, erasure.scan.traces
    with engine.connect() as conn:
        assert customer_prediction(conn, [victim]) is None
        after = conn.execute(select(func.count()).select_from(customer_scores)).scalar_one()
        for table in (customer_features, segment_members):
            assert not conn.execute(
                select(table.c.customer_id).where(table.c.customer_id == victim)
            ).all()
    assert after == before - 1


def test_score_command(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _load(engine)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            "score",
            "--as-of",
            AS_OF.strftime("%Y-%m-%d"),
            "--database-url",
            db_url,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["as_of"].startswith(AS_OF.strftime("%Y-%m-%d"))
    assert body["customers"] > 250
    assert {m["kind"] for m in body["models"]} == {"clv", "churn", "rfm", "clusters"}
    clv = next(m for m in body["models"] if m["kind"] == "clv")
    assert clv["model"] in CANDIDATES
    assert clv["metrics"]["validation"]["winner"]["mae"] >= 0
    text = CliRunner().invoke(
        app, ["predict", "score", "--as-of", AS_OF.strftime("%Y-%m-%d"), "--database-url", db_url]
    )
    assert text.exit_code == 0, text.output
    assert f"lifetime value: {clv['model']}, chosen on the validation window" in text.output


def test_segment_api_and_profile(
    client: TestClient,
    login: Callable[[str], dict[str, str]],
    engine: Engine,
    scored: pd.DataFrame,
) -> None:
    analyst = login("analyst")
    body = client.get("/v1/segments", headers=analyst).json()
    assert body["count"] == len(body["data"]) > 2
    biggest = max(body["data"], key=lambda s: s["customers"])
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 40, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/segments/{biggest['id']}/members", params=params, headers=analyst)
        assert page.status_code == 200, page.text
        seen += [m["customer_id"] for m in page.json()["data"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == biggest["customers"]
    assert seen == sorted(seen)
    assert client.get("/v1/segments/rfm:nobody/members", headers=analyst).status_code == 404
    assert (
        client.get(
            f"/v1/segments/{biggest['id']}/members", params={"limit": 0}, headers=analyst
        ).status_code
        == 422
    )
    profile = client.get(f"/v1/customers/{seen[0]}", headers=analyst)
    assert profile.status_code == 200, profile.text
    predictions = profile.json()["predictions"]
    assert predictions is not None and 0 <= predictions["churn_risk"] <= 1
    assert biggest["id"] in {s["id"] for s in predictions["segments"]}
    unscored = client.get(f"/v1/customers/{NO_CONSENT}", headers=analyst)
    assert unscored.status_code == 200 and unscored.json()["predictions"] is None
    # Why, in words: a bare null left a reader guessing (a new user's review)
    assert unscored.json()["predictions_missing"].startswith("no analytics consent")
    assert profile.json()["predictions_missing"] is None
    with engine.begin() as conn:  # consented, but not in the run (it came later)
        conn.execute(delete(customer_scores).where(customer_scores.c.customer_id == seen[0]))
    later = client.get(f"/v1/customers/{seen[0]}", headers=analyst).json()
    assert later["predictions"] is None
    assert later["predictions_missing"].startswith("not in the latest scoring run")


def test_a_run_below_the_clustering_minimum_is_written(engine: Engine) -> None:
    """Fewer customers than clustering needs: NA cluster labels, stored as no cluster."""
    small = LifecycleConfig(customers=25, weeks=10, join_weeks=5, seed=3)
    sim, _ = simulate_lifecycles(small)
    rows = [
        {
            "store_id": "cafe-01",
            "order_id": f"s-{i}",
            "ts": ts.to_pydatetime(),
            "channel": channel,
            "customer_id": cid,
            "total": float(amount),
            "currency": "EUR",
            "event_id": uuid.uuid4(),
        }
        for i, (cid, ts, amount, channel) in enumerate(
            sim[["customer_id", "ts", "amount", "channel"]].itertuples(index=False)
        )
    ]
    with engine.begin() as conn:
        conn.execute(insert(orders), rows)
        conn.execute(
            insert(consent_records),
            [_consent(c, True, small.start) for c in sorted(set(sim["customer_id"]))],
        )
    run = rescore(engine, weeks_after(small.start, 10), threads=1, **SETTINGS)
    with engine.connect() as conn:
        clusters = set(conn.execute(select(customer_scores.c.cluster)).scalars())
        kinds = {s["kind"] for s in list_segments(conn)}
    assert 0 < len(run.scores) < 50
    assert clusters == {None} and kinds == {"rfm"}


def test_a_score_as_of_before_any_order_or_in_the_future_keeps_the_live_scores(
    engine: Engine, scored: pd.DataFrame, db_url: str
) -> None:
    """`predict score --as-of 2020-01-01` scored no one and replaced the live snapshot
    with an empty one, exit 0 (a new user's walk-through); 2030 was accepted too."""
    with engine.connect() as conn:
        live = conn.execute(select(func.count()).select_from(customer_scores)).scalar_one()
    assert live > 250
    for day, said in (("2020-01-01", "live scores were kept"), ("2099-01-01", "in the future")):
        done = CliRunner().invoke(
            app, ["predict", "score", "--as-of", day, "--database-url", db_url]
        )
        assert done.exit_code == 2, done.output
        assert said in done.output
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(customer_scores)).scalar_one()
    assert kept == live
