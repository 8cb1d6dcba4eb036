"""An analyst's unmerge: records wrongly merged into a customer split off for good.

Ids follow the records that held them. Rows are kept under customer ids: consent,
events, scores, impressions written under an id before it was merged away belong to the
person whose records held it. An unmerge that handed the split-off records a fresh id
and left the retired one pointing at the customer they were split from sent an erasure
for the person split off past their own rows, and one for the other person through them
(a review found it). So the split undoes the merge as far as the trail tells: the
records left behind keep the customer's id unless all of the records it was made for are
split off, either side gets back the retired id whose records it mostly holds, and only
when none fits is an id minted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, select, update

from storelens.cdp.clusters import Change, mint_customer_id
from storelens.cdp.resolution import (
    lock_against_scoring,
    record_changes,
    record_key,
    relink,
    separations,
)
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.privacy import audit
from storelens.storage.tables import (
    customer_aliases,
    customers,
    identity_changes,
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


def alias_records(conn: Connection, aliases: Iterable[str]) -> dict[str, set[str]]:
    """The record keys each retired id stood for when it was merged away.

    A merge lists the records it moved under the ids it absorbed, all of them together
    when it absorbed several; then the id's own history (the records it was made for and
    those merged into it) tells which were whose.
    """
    held: dict[str, set[str]] = {a: set() for a in aliases}
    if not held:
        return held
    own: dict[str, set[str]] = {a: set() for a in held}
    merges: list[tuple[list[str], set[str]]] = []
    for kind, cid, others, records in conn.execute(
        select(
            identity_changes.c.kind,
            identity_changes.c.customer_id,
            identity_changes.c.others,
            identity_changes.c.records,
        ).where(identity_changes.c.kind.in_(("new", "merge")))
    ):
        if cid in own:
            own[cid].update(records or [])
        if kind == "merge" and any(o in held for o in others or []):
            merges.append((list(others), set(records or [])))
    for others, records in merges:
        for alias in (o for o in others if o in held):
            held[alias] |= records if len(others) == 1 else (records & own[alias]) or records
    return held


def _side_for(records: set[str], moved: set[str], staying: set[str]) -> str | None:
    """ "moved" or "staying": the side holding more of ``records``; None for a tie."""
    out, kept = len(records & moved), len(records & staying)
    return None if out == kept else ("moved" if out > kept else "staying")


def _split_ids(
    conn: Connection, customer_id: str, moved: set[str], staying: set[str]
) -> tuple[str, str, dict[str, str]]:
    """(staying id, moved id, alias -> side) for a split of ``customer_id``'s records."""
    aliases = set(
        conn.execute(
            select(customer_aliases.c.alias).where(customer_aliases.c.customer_id == customer_id)
        ).scalars()
    )
    held = alias_records(conn, aliases)
    side = {a: s for a, records in held.items() if (s := _side_for(records, moved, staying))}
    own = (moved | staying) - set().union(*held.values())
    ids = {"staying": customer_id, "moved": ""}
    # The id goes with the records split off only when every record it was made for goes:
    # records clustered together share their id, and which of them it is "for" is not
    # told by how many are split off (a loyalty id given as the customer's id stays
    # with the card's record).
    if own & moved and not own & staying:
        ids = {"staying": "", "moved": customer_id}
    for wanting in ("moved", "staying"):
        if ids[wanting]:
            continue
        # the retired id holding most records on this side: the merge is undone
        best = sorted(
            (-len(held[a] & (moved if wanting == "moved" else staying)), a)
            for a, s in side.items()
            if s == wanting
        )
        ids[wanting] = best[0][1] if best else _fresh_id(conn)
    return ids["staying"], ids["moved"], side


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
        members = {
            record_key(r.source_system, r.source_record_id): r.id
            for r in conn.execute(
                select(
                    customers.c.id, customers.c.source_system, customers.c.source_record_id
                ).where(customers.c.customer_id == customer_id)
            )
        }
        if not members:
            raise NotFound(f"no customer {customer_id!r}")
        unknown = [k for k in moved if k not in members]
        if unknown:
            raise _bad_records(f"not records of {customer_id}: {', '.join(unknown)}")
        staying = sorted(set(members) - set(moved))
        if not staying:
            raise _bad_records("that is every record of the customer; leave at least one")
        kept_id, moved_id, side = _split_ids(conn, customer_id, set(moved), set(staying))
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
        change = Change("unmerge", customer_id, (other,), tuple(moved))
        record_changes(conn, [change], None, actor.name, now)
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
    """Retired ids given back to records become live ids again; the others point at
    the side holding most of their records; a tie keeps naming the id it named,
    wherever that id's records now are."""
    live = {kept_id, moved_id}
    conn.execute(delete(customer_aliases).where(customer_aliases.c.alias.in_(live)))
    target = {"moved": moved_id, "staying": kept_id}
    for alias in sorted(set(side) - live):
        conn.execute(
            update(customer_aliases)
            .where(customer_aliases.c.alias == alias)
            .values(customer_id=target[side[alias]], at=now)
        )
