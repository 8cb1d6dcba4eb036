"""Who a data-subject request is about: a customer id resolved to every key and identifier.

An access or erasure request names one id, but a person's rows carry many: the
customer id identity resolution gave them, ids retired when records merged, loyalty
ids, ``source:record`` keys of provisional customers. Resolving once, first, means every
registered store looks for the same set, and the scan afterwards searches for the
e-mails, phones and names those records held, which erasure is about to delete.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection, or_, select

from storelens.core.events import PSEUDONYM_PREFIX  # ids an erasure left behind
from storelens.privacy.registry import Subject
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import (
    consent_records,
    customer_aliases,
    customer_features,
    customer_scores,
    customers,
    events,
    orders,
    recommend_blend,
    recommend_declines,
    recommend_impressions,
    segment_members,
)

__all__ = [
    "PSEUDONYM_PREFIX",
    "canonical_id",
    "current_ids",
    "people_ids",
    "person_ids",
    "phone_spellings",
    "resolve_subject",
]

_CHUNK = 5000  # ids per IN list


def phone_spellings(raw: str, country: str | None) -> set[str]:
    """The number as stored, compacted, and in E.164 (when ``phonenumbers`` is installed)."""
    spellings = {raw.strip(), re.sub(r"[\s().\-/]", "", raw)}
    try:
        import phonenumbers  # the cdp extra: optional here
    except ImportError:  # pragma: no cover - the dev install has it
        return {s for s in spellings if s}
    try:
        parsed = phonenumbers.parse(raw, country or "DE")
        spellings.add(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
        national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
        spellings |= {national, re.sub(r"[\s().\-/]", "", national)}
    except phonenumbers.NumberParseException:
        pass
    return {s for s in spellings if len(s) >= 5}  # a fragment matches strangers' numbers


def canonical_id(conn: Connection, customer_id: str) -> str | None:
    """The current id for an id, a retired alias of one, or a loyalty id; None if unknown."""
    target = conn.execute(
        select(customer_aliases.c.customer_id).where(customer_aliases.c.alias == customer_id)
    ).scalar_one_or_none()
    if target is not None:
        return str(target)
    for column in (customers.c.customer_id, customers.c.loyalty_id):
        found = conn.execute(
            select(customers.c.customer_id).where(column == customer_id).limit(1)
        ).scalar_one_or_none()
        if found is not None:
            return str(found)
    return None


def current_ids(conn: Connection, subjects: set[str]) -> dict[str, str]:
    """The current customer id of each subject that has one: :func:`canonical_id` and
    ``source:record`` keys for many subjects at once, in chunks (bound lists), for batch
    jobs that would otherwise ask once per subject."""
    found: dict[str, str] = {}
    ordered = sorted(subjects)
    one_of = dialect_for(conn).one_of
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i : i + _CHUNK]
        for alias, current in conn.execute(
            select(customer_aliases.c.alias, customer_aliases.c.customer_id).where(
                one_of(customer_aliases.c.alias, chunk)
            )
        ):
            found[alias] = current
        for column in (customers.c.customer_id, customers.c.loyalty_id):
            for key, current in conn.execute(
                select(column, customers.c.customer_id).where(
                    one_of(column, chunk), customers.c.customer_id.is_not(None)
                )
            ):
                found.setdefault(key, current)
        # One query for every source:record key of the chunk, not one per system: ids
        # come from data devices send (event subjects), so the number of distinct
        # "systems" is theirs to choose. Both lists give a superset; the pairs filter.
        keyed = {(k[0], k[1]) for k in (s.split(":", 1) for s in chunk if ":" in s)}
        if keyed:
            for system, record, current in conn.execute(
                select(
                    customers.c.source_system, customers.c.source_record_id, customers.c.customer_id
                ).where(
                    one_of(customers.c.source_system, sorted({k[0] for k in keyed})),
                    one_of(customers.c.source_record_id, sorted({k[1] for k in keyed})),
                    customers.c.customer_id.is_not(None),
                )
            ):
                if (system, record) in keyed:
                    found.setdefault(f"{system}:{record}", current)
    # an alias points at a customer id that may itself have moved on: follow it
    for key, current in list(found.items()):
        seen = {key}
        while current in found and current not in seen and found[current] != current:
            seen.add(current)
            current = found[current]
        found[key] = current
    return found


def _canonical(conn: Connection, requested: str) -> str | None:
    """:func:`canonical_id`, or the customer of a ``source:record`` key."""
    current = canonical_id(conn, requested)
    if current is not None:
        return current
    if ":" in requested:  # a record key, source:record
        system, record = requested.split(":", 1)
        found = conn.execute(
            select(customers.c.customer_id).where(
                customers.c.source_system == system, customers.c.source_record_id == record
            )
        ).scalar_one_or_none()
        if found is not None:
            return str(found)
    return None


_DERIVED = (
    recommend_impressions,
    recommend_declines,
    recommend_blend,
    customer_scores,
    customer_features,
    segment_members,
)
"""Tables of rows computed about a customer and kept under their id. A batch (a scoring
run, a recommendation train) that wrote one after an erasure had deleted the person
left rows no erasure could find: their id counted as "no customer" (a security review
found a train's blend scores so)."""


def _held_elsewhere(conn: Connection, requested: str) -> bool:
    """Orders, consent, events or derived rows under an id that has no source record
    (yet, or any more: rows another process wrote while the person was being erased are
    erased by asking again, not refused as "no customer")."""
    for stmt in (
        select(orders.c.order_id).where(orders.c.customer_id == requested),
        select(consent_records.c.id).where(consent_records.c.subject == requested),
        select(events.c.seq).where(events.c.subject == requested),
        *(select(t.c.customer_id).where(t.c.customer_id == requested) for t in _DERIVED),
    ):
        if conn.execute(stmt.limit(1)).first() is not None:
            return True
    return False


def person_ids(conn: Connection, requested: str) -> list[str]:
    """Every id the person ``requested`` names is known by (``requested`` alone for an
    unknown id): consent given under one of them is the person's, whichever id a
    request uses (a security review found a web account's grant outliving a withdrawal
    made under the loyalty card it was merged into)."""
    subject = resolve_subject(conn, requested)
    return [requested] if subject is None else list(subject.ids)


def people_ids(conn: Connection, named: set[str]) -> set[str]:
    """Every id the people ``named`` (by any of their ids) are known by, ``named`` too:
    :func:`person_ids` for many at once, for a resolution run that links thousands.
    Ids are those consent and derived rows are kept under: customer ids, retired
    aliases, loyalty ids and ``source:record`` keys."""
    current = current_ids(conn, named)
    people = {current.get(n, n) for n in named}
    found = set(named) | people
    ordered = sorted(people)
    one_of = dialect_for(conn).one_of
    for i in range(0, len(ordered), _CHUNK):
        chunk = ordered[i : i + _CHUNK]
        found.update(
            conn.execute(
                select(customer_aliases.c.alias).where(
                    one_of(customer_aliases.c.customer_id, chunk)
                )
            ).scalars()
        )
        for system, record, loyalty in conn.execute(
            select(
                customers.c.source_system, customers.c.source_record_id, customers.c.loyalty_id
            ).where(one_of(customers.c.customer_id, chunk))
        ):
            found.add(f"{system}:{record}")
            if loyalty:
                found.add(loyalty)
    return found


def resolve_subject(conn: Connection, requested: str) -> Subject | None:
    """The person ``requested`` names (any id they are known by); None when nobody."""
    if requested.startswith(PSEUDONYM_PREFIX):
        return None
    canonical = _canonical(conn, requested)
    if canonical is None:
        if not _held_elsewhere(conn, requested):
            return None
        return Subject(customer_id=requested, requested_id=requested, ids=(requested,))
    aliases = list(
        conn.execute(
            select(customer_aliases.c.alias).where(customer_aliases.c.customer_id == canonical)
        ).scalars()
    )
    rows = conn.execute(
        select(customers).where(
            or_(customers.c.customer_id == canonical, customers.c.customer_id.in_(aliases))
        )
    ).all()
    ids = {requested, canonical, *aliases}
    emails: set[str] = set()
    phones: set[str] = set()
    names: set[tuple[str, str]] = set()
    for r in rows:
        ids.add(f"{r.source_system}:{r.source_record_id}")
        if r.loyalty_id:
            ids.add(r.loyalty_id)
        if r.email:
            emails.add(r.email.strip().lower())
        if r.phone:
            phones |= phone_spellings(r.phone, r.country)
        if r.first_name and r.last_name:
            names.add((r.first_name.strip(), r.last_name.strip()))
    return Subject(
        customer_id=canonical,
        requested_id=requested,
        ids=tuple(sorted(ids)),
        records=tuple(sorted((r.source_system, r.source_record_id) for r in rows)),
        emails=tuple(sorted(emails)),
        phones=tuple(sorted(phones)),
        names=tuple(sorted(names)),
    )
