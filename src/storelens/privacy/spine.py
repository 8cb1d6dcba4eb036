"""Personal stores of the platform's spine: the event log, audit rows, dead letters, log files.

The event log is the source every projection is rebuilt from, so erasing a person
from the read models alone would last until the next replay. Their own events (their
source records, consent, web behaviour, anything with them as ``subject``) are deleted
from the log; paid orders stay in it with the customer pseudonymised, so a replay
rebuilds the same pseudonymised orders the accounts keep; another customer's event that
merely mentions them (a search for their e-mail, a record sharing their landline) is
redacted in place, and their export shows it with only their own identifiers.

Audit rows stay, because who read or changed personal data must remain answerable,
but the person in them is replaced by the erasure's pseudonym, in the rows and in
``audit_subjects`` (the customers a bulk read named). Dead letters are raw
messages kept for debugging, so those mentioning the person are deleted (a rejected
batch goes whole); an export shows them with only the person's identifiers. Log files
named in ``STORELENS_PRIVACY_LOG_PATHS`` are rewritten with the identifiers replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.traces import (
    Matcher,
    by_name_alone,
    event_customers,
    mentioning_rows,
)
from storelens.storage.tables import audit_log, audit_subjects, dead_letters, events

__all__ = ["KEPT_EVENT_TYPES", "OTHER", "OWN_EVENT_TYPES", "WITHHELD", "event_customers"]

OWN_EVENT_TYPES = ("customer.upserted", "consent.changed", "web.event")
"""Events that are their owner's data through and through: an erasure of the owner
deletes them; one of a person they merely mention redacts them."""
KEPT_EVENT_TYPES = ("pos.order_paid",)
OTHER = "(another customer)"
"""Where an export shows a row that names someone else, in their place."""
WITHHELD = "(withheld: written about two customers)"
"""An operator's note in a row about two people, as either one's export shows it."""
"""Events kept for the accounts, with the customer pseudonymised."""


def _event_json(row: Any) -> dict[str, Any]:
    """An event as the person's export shows it: without the server's receipt time and
    without its sender, which names staff (a user's login, a key, a till) and is the
    operator's record, not the person's data."""
    data: dict[str, Any] = plain(row)
    data.pop("received_at", None)
    data.pop("sent_by", None)
    return data


def _own_record(row: Row[Any], req: SubjectRequest) -> bool:
    p = row.payload or {}
    return (p.get("source_system"), p.get("source_record_id")) in req.subject.records


def _personal_events(req: SubjectRequest, matcher: Matcher) -> dict[int, tuple[Row[Any], bool]]:
    """The person's events by log position, each with whether it is theirs outright.

    Theirs outright: under one of their ids, one of their records, or an event nobody
    owns (an anonymous web session) that names an id, e-mail or phone of theirs. Any
    other event that mentions them is someone else's (a customer's record sharing a
    household phone, a search another customer ran for their e-mail): exported as a
    view with only their identifiers (:func:`_mention_json`), redacted on erasure,
    never deleted (an erasure deleted other customers' records and searches, a review).
    An event of another customer that matches by name alone is a namesake's: left out.
    """
    conn, subject = req.conn, req.subject
    found: dict[int, tuple[Row[Any], bool]] = {}
    for row in conn.execute(select(events).where(events.c.subject.in_(subject.ids))):
        found[row.seq] = (row, True)
    record_ids = sorted({record for _, record in subject.records})
    if record_ids:
        candidates = conn.execute(
            select(events).where(
                events.c.type == "customer.upserted",
                or_(
                    *(cast(events.c.payload, Text).contains(r, autoescape=True) for r in record_ids)
                ),
            )
        )
        for row in candidates:
            if _own_record(row, req):
                found[row.seq] = (row, True)
    columns = [events.c.subject, events.c.source, events.c.payload]
    for data, kinds in mentioning_rows(conn, events, matcher, columns):
        if data["seq"] in found:
            continue
        row = conn.execute(select(events).where(events.c.seq == data["seq"])).one()
        owners = event_customers(row.subject, row.type, row.payload)
        if not owners:  # nobody's: theirs when it names more than their name
            found[row.seq] = (row, not by_name_alone(kinds))
        elif not by_name_alone(kinds):
            found[row.seq] = (row, False)
    return dict(sorted(found.items()))


def _mention_json(row: Any, matcher: Matcher) -> dict[str, Any]:
    """Another person's event that mentions this one, as this one may see it: when,
    where, what kind, and the payload by shape with only their own identifiers."""
    return {
        "seq": row.seq,
        "type": row.type,
        "ts": plain(row.ts),
        "store_id": row.store_id,
        "subject": None if row.subject is None else OTHER,
        "payload": matcher.own_view(row.payload),
        "mentions_you": True,
    }


def export_events(req: SubjectRequest) -> list[dict[str, Any]]:
    """Events about the person in the log: their records, orders, consent, web behaviour."""
    matcher = Matcher(req.subject)
    return [
        _event_json(row) if own else _mention_json(row, matcher)
        for row, own in _personal_events(req, matcher).values()
    ]


def erase_events(req: SubjectRequest) -> int:
    matcher = Matcher(req.subject)
    changed = 0
    doomed: list[int] = []
    for seq, (row, own) in _personal_events(req, matcher).items():
        if own and row.type not in KEPT_EVENT_TYPES:
            doomed.append(seq)
            continue
        subject = row.subject
        if subject is not None:
            subject = (
                req.pseudonym
                if subject in req.subject.ids
                else matcher.redact_text(subject, req.pseudonym)
            )
        req.conn.execute(
            update(events)
            .where(events.c.seq == seq)
            .values(subject=subject, payload=matcher.redact(row.payload, req.pseudonym))
        )
        changed += 1
    for start in range(0, len(doomed), 500):
        req.conn.execute(delete(events).where(events.c.seq.in_(doomed[start : start + 500])))
    return changed + len(doomed)


def _names_the_person(req: SubjectRequest) -> ColumnElement[bool]:
    """``audit_subjects`` entries that are the person's: under any of their ids, or under
    an e-mail or phone number of theirs that the data carried where an id belongs (a
    till keyed by address, a personalize call made with one); matched whole and in any
    case, as the verification scan counts them. Matching ids alone left such an entry
    out of the export and kept the address after erasure."""
    spellings = {value.lower() for _, value in req.subject.identifiers()}
    return or_(
        audit_subjects.c.customer_id.in_(req.subject.ids),  # indexed: the usual case
        func.lower(audit_subjects.c.customer_id).in_(sorted(spellings)),
    )


def _audit_rows(req: SubjectRequest) -> dict[int, dict[str, Any]]:
    rows = {
        r.id: dict(r._mapping)
        for r in req.conn.execute(
            select(audit_log).where(
                and_(
                    audit_log.c.resource == "customer", audit_log.c.resource_id.in_(req.subject.ids)
                )
            )
        )
    }
    named = select(audit_subjects.c.audit_id).where(_names_the_person(req))
    for r in req.conn.execute(select(audit_log).where(audit_log.c.id.in_(named))):
        rows.setdefault(r.id, dict(r._mapping))
    # What a row says about its subject, never who acted: a colleague whose login spells
    # a customer's name ("ada.lovelace") put every row they wrote, their searches and
    # the ids of other customers they read into that customer's export (a review), and
    # an erasure rewrote their login rows. A row matched by a name alone (a namesake's,
    # a login's own) is not the person's either, as for events.
    searched = [audit_log.c.resource_id, audit_log.c.detail]
    for data, kinds in mentioning_rows(req.conn, audit_log, Matcher(req.subject), searched):
        if not by_name_alone(kinds):
            rows.setdefault(data["id"], data)
    return dict(sorted(rows.items()))


def export_audit(req: SubjectRequest) -> list[dict[str, Any]]:
    """Audit rows about the person: who read, exported or changed their data, and when,
    bulk reads that returned them among others included.

    A batch's row lists the records it wrote (``detail.records``, up to 100 ids); the
    person sees only their own there, and how many others there were. A new user found
    the ids of 100 other customers in one person's access export."""
    ids = set(req.subject.ids)
    return [_own_view(plain(r), ids) for r in _audit_rows(req).values()]


def _own_view(row: dict[str, Any], ids: set[str]) -> dict[str, Any]:
    """The row as the person may see it: ids of other people replaced or counted.

    An unmerge row names both sides (``resource_id`` the customer split,
    ``new_customer_id`` the records moved out, ``kept_customer_id`` where the records
    left behind took another id, ``aliases`` retired ids that went with the records
    moved out) and the operator's reason, written about
    both: each side sees its own id, the other's as :data:`OTHER`, no reason (a review
    found the split-off person's id in the other's export)."""
    detail = row.get("detail")
    if not isinstance(detail, dict):
        return row
    detail = dict(detail)
    if row.get("action") == "customer.unmerge":
        if row.get("resource_id") not in ids:
            row = {**row, "resource_id": OTHER}
        for side in ("new_customer_id", "kept_customer_id", "aliases"):
            if side == "aliases" and isinstance(detail.get(side), list):
                detail[side] = [a for a in detail[side] if a in ids]
            elif side in detail and detail[side] not in ids:
                detail[side] = OTHER
        if "reason" in detail:
            detail["reason"] = WITHHELD
    if isinstance(detail.get("records"), list):
        listed: list[Any] = detail["records"]
        mine = [r for r in listed if r in ids]
        detail["records"], detail["other_records"] = mine, len(listed) - len(mine)
    return {**row, "detail": detail}


def _pseudonymise_named(req: SubjectRequest) -> None:
    """The person's entries in ``audit_subjects`` become one per read, under the
    pseudonym (a read that named two of their ids, say before and after a merge, is
    still one read of one person)."""
    where = _names_the_person(req)
    reads = sorted(set(req.conn.execute(select(audit_subjects.c.audit_id).where(where)).scalars()))
    if not reads:
        return
    req.conn.execute(delete(audit_subjects).where(where))
    for start in range(0, len(reads), 500):
        req.conn.execute(
            insert(audit_subjects),
            [{"audit_id": a, "customer_id": req.pseudonym} for a in reads[start : start + 500]],
        )


def erase_audit(req: SubjectRequest) -> int:
    matcher = Matcher(req.subject)
    rows = _audit_rows(req)
    _pseudonymise_named(req)
    for id_, row in rows.items():
        resource_id = row["resource_id"]
        if resource_id is not None:
            resource_id = (
                req.pseudonym
                if resource_id in req.subject.ids
                else matcher.redact_text(resource_id, req.pseudonym)
            )
        req.conn.execute(
            update(audit_log)
            .where(audit_log.c.id == id_)
            .values(resource_id=resource_id, detail=matcher.redact(row["detail"], req.pseudonym))
        )
    return len(rows)


def export_dead_letters(req: SubjectRequest) -> list[dict[str, Any]]:
    """Messages that could not be ingested and mention the person, shown with only their
    own identifiers: a rejected batch holds other people's records beside theirs."""
    matcher = Matcher(req.subject)
    return [
        {
            **plain(d),
            # the reason is our own validation's wording; the body and topic are not
            **{c: matcher.own_view(d[c]) for c in ("body", "origin") if d.get(c)},
        }
        for d, _ in mentioning_rows(req.conn, dead_letters, matcher)
    ]


def erase_dead_letters(req: SubjectRequest) -> int:
    ids = [d["id"] for d, _ in mentioning_rows(req.conn, dead_letters, Matcher(req.subject))]
    if ids:
        req.conn.execute(delete(dead_letters).where(dead_letters.c.id.in_(ids)))
    return len(ids)


def _read(path: Path) -> list[str]:
    # surrogateescape: a rewrite must give back the bytes it did not redact unchanged
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
        return f.readlines()


def export_log_lines(req: SubjectRequest) -> list[dict[str, Any]]:
    """Lines of the configured log files that mention the person."""
    matcher = Matcher(req.subject)
    return [
        {"file": str(path), "line": n, "text": matcher.own_view_text(line.rstrip("\n"))}
        for path in req.log_paths
        if path.is_file()
        for n, line in enumerate(_read(path), start=1)
        if matcher.kinds_in(line)
    ]


def erase_log_lines(req: SubjectRequest) -> int:
    """Rewrite each log file in place (same inode, so a running server keeps appending)."""
    matcher = Matcher(req.subject)
    changed = 0
    for path in req.log_paths:
        if not path.is_file():
            continue
        lines = _read(path)
        redacted = [matcher.redact_text(line, req.pseudonym) for line in lines]
        edits = sum(a != b for a, b in zip(lines, redacted, strict=True))
        if edits:
            with path.open("r+", encoding="utf-8", errors="surrogateescape", newline="") as f:
                f.writelines(redacted)
                f.truncate()
            changed += edits
    return changed


register(
    PersonalStore(
        "event_log",
        export_events,
        erase_events,
        tables=("events",),
        kept="paid orders stay in the log with the customer pseudonymised, so replays "
        "rebuild the accounts without the person",
    )
)
register(
    PersonalStore(
        "audit",
        export_audit,
        erase_audit,
        tables=("audit_log", "audit_subjects"),
        kept="audit rows stay with the person replaced by the erasure's pseudonym: who "
        "touched personal data must stay answerable",
    )
)
register(PersonalStore("dead_letters", export_dead_letters, erase_dead_letters,
                       tables=("dead_letters",)))  # fmt: skip
register(PersonalStore("log_files", export_log_lines, erase_log_lines))
