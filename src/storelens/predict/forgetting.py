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
from storelens.privacy.consent import granted_subjects, project_consent
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.subject import current_ids, people_ids, person_ids
from storelens.storage.dialects import dialect_for
from storelens.storage.eventlog import StoredEvent

__all__ = ["forget_withdrawn"]

_CHUNK = 5000  # ids per bound list


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
    is kept under any of their ids whose person's latest analytics decision, under all
    their ids now, is not a grant. A withdrawal under a web account merged into a
    scored card otherwise left the card's scores until the next run (a security review).
    Only these people's decisions are read: reading every decision cost a single
    unmerge 1.5 s at 150,000 of them (a review)."""
    if not any(conn.execute(select(t.c.customer_id).limit(1)).first() for t in PERSONS_ROWS):
        return 0  # nothing scored: a first resolution names every record
    ids = sorted(people_ids(conn, set(named)))
    one_of = dialect_for(conn).one_of
    held: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        for table in PERSONS_ROWS:
            column = table.c.customer_id
            found = conn.execute(select(column).distinct().where(one_of(column, chunk)))
            held.update(found.scalars())
    if not held:
        return 0
    granted = granted_subjects(conn, ANALYTICS, among=ids)
    person = current_ids(conn, held)
    return forget_customers(
        conn, sorted(h for h in held if h not in granted and person.get(h, h) not in granted)
    )


def forget_withdrawn(conn: Connection, batch: Sequence[StoredEvent]) -> None:
    """Projection handler: an analytics withdrawal removes the person's features, scores
    and segment memberships at once, not at the next scoring run. Scoring is off by
    default, so a security review found the profile and segment pages showing the
    scores of a person who had withdrawn, with no end in sight.

    What decides is whether the person's latest analytics decision, under any of their
    ids, is a grant made after this withdrawal (by event time, then arrival, the order
    scoring uses): then a replay of the old withdrawal leaves the later run's scores
    alone. Otherwise every score goes, also one computed after the withdrawal's time
    from a till that delivered it late."""
    # The batch's decisions must be stored before asking who grants: the consent
    # projection may not have run yet (each projection keeps its own cursor). Its
    # insert is keyed on the event id, so running it twice stores nothing twice.
    project_consent(conn, list(batch))
    locked = False
    for ev in batch:
        p = ev.payload if isinstance(ev.payload, dict) else {}
        if ev.type != "consent.changed" or not ev.subject or p.get("purpose") != ANALYTICS:
            continue
        if p.get("granted", True):
            continue
        if not locked:
            # A scoring run writing now read consent before this withdrawal: it holds
            # the erasure lock shared and reads consent again under it, so wait for it
            # to commit (then its rows are visible to delete) or make it wait for this.
            dialect_for(conn).lock_erasures(conn, shared=False)
            locked = True
        ids = person_ids(conn, ev.subject)
        if not granted_subjects(conn, ANALYTICS, among=ids) & set(ids):
            forget_customers(conn, ids)


register(
    PersonalStore(
        "predictions",
        _export,
        _erase,
        tables=tuple(t.name for t in PERSONS_ROWS),
        relink=_relink,
    )
)
