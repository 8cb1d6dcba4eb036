"""An analyst's unmerge: records wrongly merged into a customer split off for good.

Ids follow the records that held them. Rows are kept under customer ids: consent,
events, scores, impressions written under an id before it was merged away belong to the
person whose records held it. An unmerge that handed the split-off records a fresh id
and left the retired one pointing at the customer they were split from sent an erasure
for the person split off past their own rows, and one for the other person through them
(a review found it). So the split undoes the merge as far as the trail tells: an id
belongs with the records it stands for (:mod:`~storelens.cdp.id_anchors`: those it was
made for, or those carrying it as their loyalty id); it goes with the records split
off only when all of those go, and otherwise stays with the records left behind. Either
side that loses its id gets back the retired id whose records it holds, and only when
none fits is an id minted (and recorded as made for that side). Records carrying one
loyalty id are not split apart: orders under it could not be told apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from storelens.cdp.clusters import Change, mint_customer_id
from storelens.cdp.id_anchors import anchor_records
from storelens.cdp.resolution import (
    lock_against_scoring,
    record_changes,
    record_key,
    relink,
    separations,
)
from storelens.core.errors import Conflict, FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.storage.tables import (
    customer_aliases,
    customers,
    identity_decisions,
)

__all__ = ["Unmerged", "unmerge"]


@dataclass(frozen=True, slots=True)
class Unmerged:
    """Where the records went: ``customer_id`` is the id the records left behind have
    now (usually the one named), ``new_customer_id`` the split-off records' id,
    ``aliases`` retired ids that now point at the split-off records."""

    customer_id: str
    new_customer_id: str
    records: tuple[str, ...]
    aliases: tuple[str, ...] = ()


def _bad_records(message: str) -> InvalidInput:
    return InvalidInput(message, [FieldError("records", message, "records")])


def _split_ids(
    conn: Connection, customer_id: str, loyalty_of: dict[str, str | None], moved: set[str]
) -> tuple[str, str, dict[str, str]]:
    """(staying id, moved id, retired id -> "moved"/"staying") for a split.

    An id goes with the records split off only when every record it stands for goes
    (:func:`~storelens.cdp.id_anchors.anchor_records`); any other stays with the records
    left behind, which is also where an id with no known records stays.
    """
    staying = set(loyalty_of) - moved
    shared = sorted(
        {v for k, v in loyalty_of.items() if v and k in moved}
        & {v for k, v in loyalty_of.items() if v and k in staying}
    )
    if shared:
        raise Conflict(
            f"records on both sides carry loyalty id {shared[0]}: orders under it could not "
            "be told apart; split off all of them or none"
        )
    aliases = set(
        conn.execute(
            select(customer_aliases.c.alias).where(customer_aliases.c.customer_id == customer_id)
        ).scalars()
    )
    anchors = anchor_records(conn, aliases | {customer_id}, loyalty_of)
    side = {
        i: "moved" if records and records <= moved else "staying" for i, records in anchors.items()
    }
    ids = {"staying": "", "moved": ""}
    ids[side[customer_id]] = customer_id
    held_by = {"moved": moved, "staying": staying}
    for wanting in ("moved", "staying"):
        if not ids[wanting]:  # the retired id with most records here: the merge is undone
            best = sorted(
                (-len(anchors[a]), a)
                for a in aliases
                if anchors[a] and anchors[a] <= held_by[wanting]  # all of them on this side
            )
            ids[wanting] = best[0][1] if best else _fresh_id(conn)
    return ids["staying"], ids["moved"], {a: side[a] for a in aliases}


def _fresh_id(conn: Connection) -> str:
    existing = set(conn.execute(select(customers.c.customer_id).distinct()).scalars())
    retired = set(conn.execute(select(customer_aliases.c.alias)).scalars())
    new_id = mint_customer_id()
    while new_id in existing or new_id in retired:
        new_id = mint_customer_id()
    return new_id


def unmerge(
    engine: Engine,
    customer_id: str,
    records: Sequence[str],
    actor: audit.Actor,
    reason: str | None = None,
) -> Unmerged:
    """Split ``records`` off ``customer_id``; every later run keeps them apart.

    The decision is stored as "separate" pairs between each moved record and each record
    that stays, which full and incremental runs both honour.
    """
    moved = sorted(set(records))
    if not moved:
        raise _bad_records("name at least one record to split off, as source:record")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        lock_against_scoring(conn)
        found = conn.execute(
            select(
                customers.c.id,
                customers.c.source_system,
                customers.c.source_record_id,
                customers.c.loyalty_id,
            ).where(customers.c.customer_id == customer_id)
        ).all()
        members = {record_key(r.source_system, r.source_record_id): r.id for r in found}
        loyalty_of = {record_key(r.source_system, r.source_record_id): r.loyalty_id for r in found}
        if not members:
            raise NotFound(f"no customer {customer_id!r}")
        unknown = [k for k in moved if k not in members]
        if unknown:
            raise _bad_records(f"not records of {customer_id}: {', '.join(unknown)}")
        staying = sorted(set(members) - set(moved))
        if not staying:
            raise _bad_records("that is every record of the customer; leave at least one")
        kept_id, moved_id, side = _split_ids(conn, customer_id, loyalty_of, set(moved))
        decisions = [
            {"record_a": min(a, b), "record_b": max(a, b), "kind": "separate",
             "actor": actor.name, "reason": reason, "at": now}
            for a in moved for b in staying
        ]  # fmt: skip
        known = set(separations(conn))
        decisions = [d for d in decisions if (d["record_a"], d["record_b"]) not in known]
        if decisions:
            conn.execute(identity_decisions.insert(), decisions)
        for keys, cid in ((moved, moved_id), (staying, kept_id)):
            if cid != customer_id:
                conn.execute(
                    update(customers)
                    .where(customers.c.id.in_([members[k] for k in keys]))
                    .values(customer_id=cid, resolved_at=now, match_probability=None)
                )
        _repoint_aliases(conn, kept_id, moved_id, side, now)
        gone = tuple(sorted(a for a, s in side.items() if s == "moved" and a != moved_id))
        other = moved_id if kept_id == customer_id else kept_id
        changes = [Change("unmerge", customer_id, (other,), tuple(moved))]
        changes += [  # an id minted here was made for that side's records
            Change("new", cid, records=tuple(keys))
            for keys, cid in ((moved, moved_id), (staying, kept_id))
            if cid not in side and cid != customer_id
        ]
        record_changes(conn, changes, None, actor.name, now)
        relink(conn, {customer_id, kept_id, moved_id, *moved, *staying, *side})
        detail: dict[str, Any] = {"records": moved, "new_customer_id": moved_id, "reason": reason}
        if kept_id != customer_id:
            detail["kept_customer_id"] = kept_id
        if gone:
            detail["aliases"] = list(gone)
        audit.record(conn, actor, "customer.unmerge", "customer", customer_id, detail)
    return Unmerged(kept_id, moved_id, tuple(moved), gone)


def _repoint_aliases(
    conn: Connection,
    kept_id: str,
    moved_id: str,
    side: dict[str, str],
    now: datetime,
) -> None:
    """Retired ids given back to records become live ids again; every other retired id
    points at its side (:func:`_split_ids`)."""
    live = {kept_id, moved_id}
    conn.execute(delete(customer_aliases).where(customer_aliases.c.alias.in_(live)))
    target = {"moved": moved_id, "staying": kept_id}
    for alias in sorted(set(side) - live):
        conn.execute(
            update(customer_aliases)
            .where(customer_aliases.c.alias == alias)
            .values(customer_id=target[side[alias]], at=now)
        )
