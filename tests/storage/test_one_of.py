"""``Dialect.one_of``: membership in a long list of ids, on both backends.

PostgreSQL takes the list as one array parameter; an expanding ``IN`` of 1,000
placeholders was slow to render, and once psycopg prepared the statement (every import
batch has exactly 1,000 ids) the server's generic plan took about a second a batch with
30,000 customers (``benchmarks/import_lock.py``). The answers must not change."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from storelens.privacy.subject import current_ids
from storelens.storage import migrate
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import customer_aliases


def _aliases(engine: Engine, n: int) -> None:
    migrate.upgrade(engine)
    rows = [{"alias": f"old-{i}", "customer_id": f"C{i}"} for i in range(n)]
    with engine.begin() as conn:
        conn.execute(insert(customer_aliases), rows)


def test_one_of_finds_exactly_the_listed_ids(engine: Engine) -> None:
    _aliases(engine, 3000)
    wanted = [f"old-{i}" for i in range(0, 3000, 2)] + ["nobody", "old-1'; --", ""]
    one_of = dialect_for(engine).one_of
    with engine.connect() as conn:
        stmt = select(customer_aliases.c.alias).where(one_of(customer_aliases.c.alias, wanted))
        found = set(conn.execute(stmt).scalars())
        assert found == {f"old-{i}" for i in range(0, 3000, 2)}
        empty = select(customer_aliases.c.alias).where(one_of(customer_aliases.c.alias, []))
        assert conn.execute(empty).first() is None


def test_resolving_the_same_size_of_batch_again_and_again_gives_the_same_answer(
    engine: Engine,
) -> None:
    """The statement psycopg prepares after five runs must answer as the first did."""
    _aliases(engine, 2000)
    with engine.connect() as conn:
        for start in range(0, 2000, 200):  # ten batches of 200, one statement shape
            batch = {f"old-{i}" for i in range(start, start + 200)}
            assert current_ids(conn, batch | {"stranger"}) == {
                f"old-{i}": f"C{i}" for i in range(start, start + 200)
            }


def test_an_id_longer_than_the_column_matches_nothing(engine: Engine) -> None:
    """PostgreSQL's array was typed as the column (VARCHAR(128)): a longer id was cut to
    128 characters and then matched a stored id that is its prefix (a review)."""
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(insert(customer_aliases), {"alias": "a" * 128, "customer_id": "C1"})
    one_of = dialect_for(engine).one_of
    with engine.connect() as conn:
        longer = select(customer_aliases.c.alias).where(
            one_of(customer_aliases.c.alias, ["a" * 129])
        )
        assert conn.execute(longer).first() is None
        exact = select(customer_aliases.c.alias).where(
            one_of(customer_aliases.c.alias, ["a" * 128])
        )
        assert conn.execute(exact).scalar_one() == "a" * 128
