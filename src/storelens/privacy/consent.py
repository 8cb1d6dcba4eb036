"""Consent per purpose, projected from ``consent.changed`` events.

Absent a record, the answer is "no": storelens only uses a customer's data for a
purpose (personalisation, marketing, recognition) after an explicit grant.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from storelens.core.events import CONSENT_PURPOSES
from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.subject import current_ids
from storelens.storage.dialects import dialect_for
from storelens.storage.eventlog import StoredEvent
from storelens.storage.tables import consent_records

__all__ = ["CONSENT_TYPES", "ConsentState", "consent_state", "has_consent", "project_consent"]

CONSENT_TYPES = ("consent.changed",)
_CHUNK = 5000  # ids per bound list


@dataclass(frozen=True, slots=True)
class ConsentState:
    purpose: str
    granted: bool
    ts: datetime
    channel: str


def project_consent(conn: Connection, batch: list[StoredEvent]) -> None:
    rows = [
        {
            "subject": ev.subject,
            "purpose": ev.payload["purpose"],
            "granted": ev.payload["granted"],
            "channel": ev.payload.get("channel", "app"),
            "policy_version": ev.payload.get("policy_version"),
            "ts": ev.ts,
            "event_id": ev.id,
        }
        for ev in batch
        if ev.type == "consent.changed" and ev.subject
    ]
    if rows:
        conn.execute(dialect_for(conn).insert_ignore(consent_records, ["event_id"]), rows)


def consent_state(conn: Connection, subjects: list[str]) -> list[ConsentState]:
    """The latest decision per purpose (by event time, not arrival order)."""
    rows = conn.execute(
        select(consent_records)
        .where(consent_records.c.subject.in_(subjects))
        .order_by(consent_records.c.ts, consent_records.c.id)
    ).all()
    latest: dict[str, ConsentState] = {}
    for r in rows:
        latest[r.purpose] = ConsentState(r.purpose, r.granted, r.ts, r.channel)
    return [latest[p] for p in CONSENT_PURPOSES if p in latest]


def granted_subjects(
    conn: Connection, purpose: str, among: Collection[str] | None = None
) -> set[str]:
    """Everyone whose latest decision for ``purpose`` (by event time, then arrival) is a
    grant: the batch form of :func:`has_consent`, for jobs that score or write for many
    people. ``among`` limits it to decisions made under those ids (give every id of
    the people in question, as ``privacy.subject.people_ids`` does).

    Decisions are the person's, not the id's: ids known to be one customer (a retired
    alias, a loyalty id, a ``source:record`` key) are taken together, and a grant under
    a web account no longer outlives a withdrawal under the card it was merged into.
    The answer holds every decided id of a granting person and their current id."""
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    c = consent_records.c
    query = select(c.ts, c.id, c.subject, c.granted).where(c.purpose == purpose)
    if among is None:
        rows = list(conn.execute(query))
    else:
        ordered, one_of, rows = sorted(among), dialect_for(conn).one_of, []
        for i in range(0, len(ordered), _CHUNK):
            rows += conn.execute(query.where(one_of(c.subject, ordered[i : i + _CHUNK]))).all()
    rows.sort(key=lambda r: (r.ts, r.id))
    person = current_ids(conn, {r.subject for r in rows})
    latest: dict[str, bool] = {}
    for r in rows:
        latest[person.get(r.subject, r.subject)] = bool(r.granted)
    granted_people = {p for p, granted in latest.items() if granted}
    decided = {r.subject for r in rows}
    return granted_people | {s for s in decided if person.get(s, s) in granted_people}


def has_consent(conn: Connection, subject: str, purpose: str) -> bool:
    if purpose not in CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    return any(s.purpose == purpose and s.granted for s in consent_state(conn, [subject]))


def _export(req: SubjectRequest) -> list[dict[str, Any]]:
    """Every consent decision the person made, oldest first, with its channel and policy."""
    rows = req.conn.execute(
        select(consent_records)
        .where(consent_records.c.subject.in_(req.subject.ids))
        .order_by(consent_records.c.ts, consent_records.c.id)
    )
    return [plain(r) for r in rows]


def _erase(req: SubjectRequest) -> int:
    # Nothing is used about an erased person, so no proof of consent is needed any more.
    result = req.conn.execute(
        delete(consent_records).where(consent_records.c.subject.in_(req.subject.ids))
    )
    return int(result.rowcount or 0)


register(PersonalStore("consent", _export, _erase, tables=("consent_records",)))
