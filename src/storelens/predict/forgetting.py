"""What predictive analytics forgets: a person's features, scores and segment memberships.

They carry the customer id, so they are registered with the privacy registry (export
lists them, erasure deletes them), and they exist only under analytics consent: a
withdrawal deletes them at once (the ``predict-withdrawals`` projection), and so does a
merge that hands the person a withdrawal made under the other id (the registry's
relink step). Either way the segments they left are recounted, and one left with
fewer than ``DESCRIBED_MIN`` members loses its figures until the next run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from storelens.predict.store import ANALYTICS, PERSONS_ROWS, forget_customers
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.withdrawals import forget_on_withdrawal, withdrawn_among
from storelens.storage.eventlog import StoredEvent

__all__ = ["forget_withdrawn"]


def _export(req: SubjectRequest) -> list[dict[str, Any]]:
    """The person's computed features, scores and segment memberships."""
    ids = list(req.subject.ids)
    out: list[dict[str, Any]] = []
    for table in PERSONS_ROWS:
        column = table.c.customer_id
        out += [
            {"table": table.name, **plain(r)}
            for r in req.conn.execute(select(table).where(column.in_(ids)))
        ]
    return out


def _erase(req: SubjectRequest) -> int:
    return forget_customers(req.conn, list(req.subject.ids))


def _relink(conn: Connection, named: frozenset[str]) -> int:
    """Resolution just linked or split the people ``named`` ids belong to: delete what
    is kept under any of their ids whose person's latest analytics decision is not a
    grant. A withdrawal under a web account merged into a scored card otherwise left
    the card's scores until the next run (a security review)."""
    return forget_customers(conn, withdrawn_among(conn, named, PERSONS_ROWS, ANALYTICS))


def forget_withdrawn(conn: Connection, batch: Sequence[StoredEvent]) -> None:
    """Projection handler: an analytics withdrawal removes the person's features, scores
    and segment memberships at once, not at the next scoring run. Scoring is off by
    default, so a security review found the profile and segment pages showing the
    scores of a person who had withdrawn, with no end in sight. The rules (a replayed
    old withdrawal, the lock order) are :func:`forget_on_withdrawal`'s."""
    forget_on_withdrawal(conn, batch, ANALYTICS, forget_customers)


register(
    PersonalStore(
        "predictions",
        _export,
        _erase,
        tables=tuple(t.name for t in PERSONS_ROWS),
        relink=_relink,
    )
)
