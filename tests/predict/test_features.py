"""Features as of a moment: exact values, nothing after the cut-off, and from the orders table."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import Engine, insert

from storelens.predict.features import (
    FEATURE_COLUMNS,
    customer_features,
    features_sql,
    orders_frame,
)
from storelens.storage.tables import orders

AS_OF = datetime(2024, 3, 1, tzinfo=UTC)


def _orders(rows: list[Row]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": pd.to_datetime([r[1] for r in rows], utc=True),
            "amount": [r[2] for r in rows],
            "channel": [r[3] for r in rows],
        }
    )


Row = tuple[str | None, str, float, str]
HISTORY: list[Row] = [
    ("ann", "2024-01-01T10:00:00Z", 10.0, "in_store"),
    ("ann", "2024-01-11T10:00:00Z", 20.0, "web"),
    ("ann", "2024-01-31T10:00:00Z", 30.0, "in_store"),
    ("ann", "2024-02-20T10:00:00Z", 40.0, "mobile"),
    ("bob", "2024-02-29T12:00:00Z", 5.0, "in_store"),
    (None, "2024-02-01T09:00:00Z", 99.0, "in_store"),  # anonymous: no customer to describe
]


def test_values_by_hand() -> None:
    f = customer_features(_orders(HISTORY), AS_OF)
    assert f.index.tolist() == ["ann", "bob"]
    assert list(f.columns) == list(FEATURE_COLUMNS)
    ann = f.loc["ann"]
    # Gaps 10, 20, 20 days: mean 50/3, population sd sqrt(200/9).
    assert ann["recency_days"] == pytest.approx(9 + 14 / 24)
    assert (ann["orders"], ann["monetary"], ann["average_order_value"]) == (4, 100.0, 25.0)
    assert ann["tenure_days"] == pytest.approx(59 + 14 / 24)
    assert ann["interpurchase_days"] == pytest.approx(50 / 3)
    assert ann["interpurchase_cv"] == pytest.approx((200 / 9) ** 0.5 / (50 / 3))
    assert (ann["share_in_store"], ann["share_web"], ann["share_mobile"]) == (0.5, 0.25, 0.25)
    bob = f.loc["bob"]
    assert bob["recency_days"] == pytest.approx(0.5)
    assert pd.isna(bob["interpurchase_days"]) and pd.isna(bob["interpurchase_cv"])
    assert bob["share_in_store"] == 1.0


def test_an_order_after_the_cut_off_changes_nothing() -> None:
    before = customer_features(_orders(HISTORY), AS_OF)
    later: list[Row] = [
        ("ann", "2024-03-01T00:00:00Z", 500.0, "web"),  # exactly at the cut-off: after it
        ("ann", "2024-03-05T10:00:00Z", 70.0, "web"),
        ("cat", "2024-04-01T10:00:00Z", 8.0, "mobile"),  # a customer who does not exist yet
    ]
    after = customer_features(_orders(HISTORY + later), AS_OF)
    pd.testing.assert_frame_equal(before, after)


def test_naive_as_of_is_utc_and_missing_channel_gives_null_shares() -> None:
    frame = _orders(HISTORY).drop(columns="channel")
    f = customer_features(frame, AS_OF.replace(tzinfo=None))
    assert f.loc["ann", "orders"] == 4
    assert f[["share_in_store", "share_web", "share_mobile"]].isna().all().all()


def test_two_orders_have_a_gap_but_no_regularity() -> None:
    f = customer_features(_orders(HISTORY[:2]), AS_OF)
    assert f.loc["ann", "interpurchase_days"] == 10.0
    assert pd.isna(f.loc["ann", "interpurchase_cv"])


def test_the_query_transpiles_to_spark_and_back_with_the_same_answer() -> None:
    import duckdb
    import sqlglot

    from storelens.predict import features

    sql = features_sql(AS_OF.timestamp())
    spark = sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    assert "LAG(t) OVER (PARTITION BY customer_id ORDER BY t NULLS LAST)" in spark
    back = sqlglot.transpile(spark, read="spark", write="duckdb")[0]
    expected = customer_features(_orders(HISTORY), AS_OF)
    frame = _orders(HISTORY).dropna(subset=["customer_id"])
    frame = frame.assign(t=features._epoch_seconds(frame["ts"])).drop(columns="ts")
    con = duckdb.connect()
    con.register("orders", frame)
    again = con.execute(back).df().set_index("customer_id")
    again["orders"] = again["orders"].astype("int64")
    pd.testing.assert_frame_equal(again, expected, check_index_type=False, check_dtype=False)


def test_reads_the_orders_table_up_to_the_cut_off(engine: Engine) -> None:
    def row(order_id: str, customer: str | None, ts: datetime, total: float) -> dict[str, object]:
        return {
            "store_id": "s1",
            "order_id": order_id,
            "ts": ts,
            "channel": "web",
            "customer_id": customer,
            "total": total,
            "currency": "EUR",
            "event_id": uuid.uuid4(),
        }

    with engine.begin() as conn:
        conn.execute(
            insert(orders),
            [
                row("o1", "ann", AS_OF - timedelta(days=3), 12.5),
                row("o2", None, AS_OF - timedelta(days=2), 7.0),
                row("o3", "ann", AS_OF, 100.0),
            ],
        )
    with engine.connect() as conn:
        frame = orders_frame(conn, AS_OF)
    assert frame["customer_id"].tolist() == ["ann"]
    assert frame["amount"].tolist() == [12.5]
    f = customer_features(frame, AS_OF)
    assert f.loc["ann", "recency_days"] == pytest.approx(3.0)
    assert f.loc["ann", "share_web"] == 1.0
