"""0015 folds the impression log's row per item into a row per shown list, and back.

A database upgraded from 0014 holds what earlier versions wrote: rows of one answer
in rank order under one timestamp, store, actor and flag. Two answers in the same
second for the same customer and store (a page shown twice) must stay two lists, told
apart by the rank starting again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from storelens.storage import migrate
from storelens.storage.db import create_engine

AT = "2026-03-09 17:45:12.000000"
LATER = "2026-03-09 17:46:00.000000"
#        ts,    customer, store,   product, rank, confidence, personalized, actor
OLD = [
    (AT, "ann", "cafe-01", "latte", 1, 0.5, True, "shop"),
    (AT, "ann", "cafe-01", "bun", 2, 0.25, True, "shop"),
    (AT, "ann", "cafe-01", "tea", 3, 0.125, True, "shop"),
    (AT, "ann", "cafe-01", "latte", 1, 0.5, True, "shop"),  # the same page, again
    (AT, "bob", "cafe-01", "jam", 1, 0.75, True, "shop"),
    (LATER, "ann", "cafe-02", "mocha", 1, 0.3, False, "staff:7"),
]


def _insert_old(engine: Engine) -> None:
    ts = "CAST(:ts AS TIMESTAMPTZ)" if engine.dialect.name == "postgresql" else ":ts"
    with engine.begin() as conn:
        for row in OLD:
            conn.execute(
                text(
                    "INSERT INTO recommend_impressions (ts, customer_id, store_id, product_id,"
                    f" rank, confidence, personalized, actor) VALUES ({ts}, :c, :s, :p, :r,"
                    " :conf, :pers, :a)"
                ),
                dict(zip(("ts", "c", "s", "p", "r", "conf", "pers", "a"), row, strict=True)),
            )


def _lists(engine: Engine) -> list[tuple[str, str, bool, str, list[tuple[str, int, float]]]]:
    from sqlalchemy import select

    from storelens.storage.tables import recommend_impressions as t

    with engine.connect() as conn:
        rows = conn.execute(
            select(t.c.customer_id, t.c.store_id, t.c.personalized, t.c.actor, t.c.shown, t.c.ts)
            .order_by(t.c.id)
        ).all()  # fmt: skip
    for row in rows:
        assert row.ts.tzinfo is not None
    return [
        (c, s, p, a, [(i["product_id"], i["rank"], i["confidence"]) for i in shown])
        for c, s, p, a, shown, _ in rows
    ]


def _check(url: str) -> None:
    engine = create_engine(url)
    migrate.upgrade(engine, "0014_audit_action_index")
    _insert_old(engine)
    migrate.upgrade(engine)
    assert _lists(engine) == [
        ("ann", "cafe-01", True, "shop", [("latte", 1, 0.5), ("bun", 2, 0.25), ("tea", 3, 0.125)]),
        ("ann", "cafe-01", True, "shop", [("latte", 1, 0.5)]),
        ("bob", "cafe-01", True, "shop", [("jam", 1, 0.75)]),
        ("ann", "cafe-02", False, "staff:7", [("mocha", 1, 0.3)]),
    ]
    assert migrate.pending_changes(engine) == []
    migrate.downgrade(engine, "0014_audit_action_index")
    with engine.connect() as conn:
        back = conn.execute(
            text(
                "SELECT customer_id, store_id, product_id, rank, confidence, personalized,"
                " actor, ts FROM recommend_impressions ORDER BY id"
            )
        ).all()
    assert [tuple(r[:7]) for r in back] == [r[1:] for r in OLD]
    first = back[0][7]
    if isinstance(first, datetime):
        assert first.astimezone(UTC).isoformat(" ").startswith(AT[:19])
    else:
        assert str(first).startswith(AT[:19])
    engine.dispose()


def test_sqlite_lists_fold_and_unfold(tmp_path: Path) -> None:
    _check(f"sqlite:///{tmp_path / 'm.db'}")


@pytest.mark.postgres
def test_postgres_lists_fold_and_unfold(pg_scratch_url: str) -> None:
    _check(pg_scratch_url)
