"""recommend_impressions: one row per shown list (its items as JSON, ``shown``), not one per item

Rows of one answer were written together, in rank order, under one timestamp, store,
actor and personalized flag; each such run of rows becomes the first row of the run
with the items in ``shown`` as ``[{"product_id", "rank", "confidence"}, ...]``, and the rest are
deleted. A downgrade spreads each list back into a row per item.

Revision ID: 0015_impression_lists
Revises: 0014_audit_action_index
Create Date: 2026-12-06 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import storelens.storage.tables

revision: str = "0015_impression_lists"
down_revision: str | None = "0014_audit_action_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

T = TypeVar("T")
_BATCH = 2_000
_PAGE = 50_000
_ITEMS = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_old = sa.table(
    "recommend_impressions",
    sa.column("id", sa.BigInteger()),
    sa.column("ts", storelens.storage.tables.UTCDateTime(timezone=True)),
    sa.column("customer_id", sa.String()),
    sa.column("store_id", sa.String()),
    sa.column("product_id", sa.String()),
    sa.column("rank", sa.Integer()),
    sa.column("confidence", sa.Float()),
    sa.column("personalized", sa.Boolean()),
    sa.column("actor", sa.String()),
    sa.column("shown", _ITEMS),
)


def _pages(conn: sa.Connection, *columns: Any, up_to: int | None) -> Iterator[sa.Row[Any]]:
    """Rows by id, read a page at a time (a log can hold millions), each page read whole
    before the caller changes rows at or below it; ids above ``up_to`` are left out."""
    last: int | None = None
    while True:
        stmt = sa.select(_old.c.id, *columns).order_by(_old.c.id).limit(_PAGE)
        if last is not None:
            stmt = stmt.where(_old.c.id > last)
        if up_to is not None:
            stmt = stmt.where(_old.c.id <= up_to)
        page = conn.execute(stmt).all()
        yield from page
        if len(page) < _PAGE:
            return
        last = page[-1].id


def _answers(conn: sa.Connection) -> Iterator[tuple[int, list[int], list[dict[str, Any]]]]:
    """(first row's id, the other rows' ids, the items) for each answer, by id."""
    key: tuple[Any, ...] | None = None
    first, rest, items = 0, list[int](), list[dict[str, Any]]()
    c = _old.c
    columns = (
        c.ts,
        c.customer_id,
        c.store_id,
        c.personalized,
        c.actor,
        c.product_id,
        c.rank,
        c.confidence,
    )
    for row in _pages(conn, *columns, up_to=None):
        this = (row.ts, row.customer_id, row.store_id, row.personalized, row.actor)
        if this != key or row.rank <= items[-1]["rank"]:
            if key is not None:
                yield first, rest, items
            key, first, rest, items = this, row.id, [], []
        else:
            rest.append(row.id)
        items.append({"product_id": row.product_id, "rank": row.rank, "confidence": row.confidence})
    if key is not None:
        yield first, rest, items


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    """``items`` in lists of ``_BATCH`` (the last one shorter)."""
    part: list[T] = []
    for item in items:
        part.append(item)
        if len(part) == _BATCH:
            yield part
            part = []
    if part:
        yield part


def _fold(conn: sa.Connection, part: list[tuple[int, list[int], list[dict[str, Any]]]]) -> None:
    if not part:
        return
    conn.execute(
        _old.update().where(_old.c.id == sa.bindparam("b_id")),
        [{"b_id": first, "shown": items} for first, _, items in part],
    )
    gone = [i for _, rest, _ in part for i in rest]
    for at in range(0, len(gone), _BATCH):
        conn.execute(_old.delete().where(_old.c.id.in_(gone[at : at + _BATCH])))


def upgrade() -> None:
    with op.batch_alter_table("recommend_impressions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("shown", _ITEMS, nullable=True))
    conn = op.get_bind()
    for part in _batches(_answers(conn)):
        _fold(conn, part)
    with op.batch_alter_table("recommend_impressions", schema=None) as batch_op:
        batch_op.alter_column("shown", existing_type=_ITEMS, nullable=False)
        batch_op.drop_column("product_id")
        batch_op.drop_column("rank")
        batch_op.drop_column("confidence")


def downgrade() -> None:
    with op.batch_alter_table("recommend_impressions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("product_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("rank", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("confidence", sa.Float(), nullable=True))
    conn = op.get_bind()
    c = _old.c
    newest = conn.execute(sa.select(sa.func.max(c.id))).scalar()  # rows added below are after
    columns = (c.ts, c.customer_id, c.store_id, c.personalized, c.actor, c.shown)
    for lists in _batches(_pages(conn, *columns, up_to=newest)):
        _unfold(conn, lists)
    with op.batch_alter_table("recommend_impressions", schema=None) as batch_op:
        batch_op.alter_column("product_id", existing_type=sa.String(length=128), nullable=False)
        batch_op.alter_column("rank", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("confidence", existing_type=sa.Float(), nullable=False)
        batch_op.drop_column("shown")


def _unfold(conn: sa.Connection, lists: list[sa.Row[Any]]) -> None:
    """Each list as a row per item (new ids, in the same order), the list's row gone."""
    if not lists:
        return
    rows = [
        {
            "ts": r.ts,
            "customer_id": r.customer_id,
            "store_id": r.store_id,
            "personalized": r.personalized,
            "actor": r.actor,
            "shown": [],
            "product_id": item["product_id"],
            "rank": item["rank"],
            "confidence": item["confidence"],
        }
        for r in lists
        for item in r.shown
    ]
    conn.execute(_old.delete().where(_old.c.id.in_([r.id for r in lists])))
    for lo in range(0, len(rows), _BATCH):
        conn.execute(_old.insert(), rows[lo : lo + _BATCH])
