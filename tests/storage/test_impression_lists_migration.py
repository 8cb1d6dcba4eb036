"""0015 folds the impression log's row per item into a row per shown list, and back.

A database upgraded from 0014 holds what earlier versions wrote: rows of one answer
in rank order under one timestamp, store, actor and flag. Two answers in the same
second for the same customer and store (a page shown twice) must stay two lists, told
apart by the rank starting again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def test_pages_and_batches_that_cut_through_a_list(tmp_path: Path) -> None:
    """A log of millions is read a page at a time and written in batches: with pages of
    two rows and batches of one, the first list (three rows) straddles a page."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    step = _revision_module()
    step._PAGE, step._BATCH = 2, 1
    engine = create_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate.upgrade(engine, "0014_audit_action_index")
    _insert_old(engine)
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        step.upgrade()
    assert [(c, s, [i[0] for i in items]) for c, s, _, _, items in _lists(engine)] == [
        ("ann", "cafe-01", ["latte", "bun", "tea"]),
        ("ann", "cafe-01", ["latte"]),
        ("bob", "cafe-01", ["jam"]),
        ("ann", "cafe-02", ["mocha"]),
    ]
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        step.downgrade()
    with engine.connect() as conn:
        back = conn.execute(
            text("SELECT customer_id, product_id, rank FROM recommend_impressions ORDER BY id")
        ).all()
    assert [tuple(r) for r in back] == [(r[1], r[3], r[4]) for r in OLD]
    engine.dispose()


def _revision_module() -> Any:
    """A fresh copy of migration 0015's module, whose page sizes a test may change."""
    import importlib.util

    import storelens.storage.migrations.versions as versions

    path = Path(versions.__file__).with_name("0015_impression_lists.py")
    spec = importlib.util.spec_from_file_location("m0015_for_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_postgres_lists_fold_and_unfold(pg_scratch_url: str) -> None:
    _check(pg_scratch_url)
