"""Rows computed about a customer under one consent purpose, forgotten when it is withdrawn.

Predictive scores (``analytics``) and stored recommendation scores (``personalization``)
are both kept under the customer's id and may exist only while the person's latest
decision for their purpose is a grant. Two events end that: a withdrawal (a projection
handler, :func:`forget_on_withdrawal`), and a merge that hands the person a withdrawal
made under another of their ids (the registry's relink step, :func:`withdrawn_among`).
Each domain says what its rows are and how to delete them; the rules are here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Connection, Table, select

from storelens.privacy.consent import granted_subjects, project_consent
from storelens.privacy.subject import current_ids, people_ids, person_ids
from storelens.storage.dialects import dialect_for
from storelens.storage.eventlog import StoredEvent

__all__ = ["forget_on_withdrawal", "withdrawn_among"]

_CHUNK = 5000  # ids per bound list


def forget_on_withdrawal(
    conn: Connection,
    batch: Sequence[StoredEvent],
    purpose: str,
    forget: Callable[[Connection, list[str]], object],
) -> None:
    """Projection handler body: for each withdrawal of ``purpose`` in ``batch``, call
    ``forget`` with all the person's ids, unless their latest decision under any of
    them is a grant made after it (by event time, then arrival): a replayed old
    withdrawal leaves a later grant's rows alone. Otherwise every row goes, also one
    computed after the withdrawal's time from a till that delivered it late.

    The batch's decisions are stored first: the consent projection may not have run yet
    (each projection keeps its own cursor), and its insert is keyed on the event id, so
    running it twice stores nothing twice. Only then is the erasure lock taken,
    exclusively: a batch job writing now (a scoring run, a train) read consent before
    this withdrawal and holds the lock shared while it reads consent again and writes,
    so it either commits first (its rows are then deleted here) or waits and reads this
    decision. Storing decisions while holding the lock deadlocked two such projections
    on PostgreSQL over one consent row (a review)."""
    project_consent(conn, list(batch))
    locked = False
    for ev in batch:
        payload = ev.payload if isinstance(ev.payload, dict) else {}
        if ev.type != "consent.changed" or not ev.subject:
            continue
        if payload.get("purpose") != purpose or payload.get("granted", True):
            continue
        if not locked:
            dialect_for(conn).lock_erasures(conn, shared=False)
            locked = True
        ids = person_ids(conn, ev.subject)
        if not granted_subjects(conn, purpose, among=ids) & set(ids):
            forget(conn, ids)


def withdrawn_among(
    conn: Connection, named: frozenset[str], tables: Sequence[Table], purpose: str
) -> list[str]:
    """The ids, among those of the people ``named`` ids belong to, under which ``tables``
    keep rows and whose person's latest ``purpose`` decision, under all their ids now,
    is not a grant. Only these people's decisions are read: reading every decision cost
    a single unmerge 1.5 s at 150,000 of them (a review)."""
    if not any(conn.execute(select(t.c.customer_id).limit(1)).first() for t in tables):
        return []  # nothing kept: a first resolution names every record
    ids = sorted(people_ids(conn, set(named)))
    one_of = dialect_for(conn).one_of
    held: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        for table in tables:
            column = table.c.customer_id
            found = conn.execute(select(column).distinct().where(one_of(column, chunk)))
            held.update(found.scalars())
    if not held:
        return []
    granted = granted_subjects(conn, purpose, among=ids)
    person = current_ids(conn, held)
    return sorted(h for h in held if h not in granted and person.get(h, h) not in granted)
