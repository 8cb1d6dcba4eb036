"""What identity resolution and profiles hold about a person, registered for export and erasure.

Resolution keeps its own trail: ids retired by merges (aliases), every merge, split and
unmerge with the record keys and evidence behind it, and analysts' "these are different
people" decisions. All of it names the person's records, so it goes with them; where
another customer's history mentions them (a split that moved records away), only the
mention is replaced by the erasure's pseudonym. Profiles and golden records are built on
read from the stores above, so they hold nothing of their own to erase; they are
registered so an export shows the person what storelens concludes about them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, delete, or_, select, update

from storelens.privacy.registry import PersonalStore, SubjectRequest, plain, register
from storelens.privacy.spine import OTHER, WITHHELD
from storelens.privacy.traces import Matcher, mentioning_rows
from storelens.storage.tables import (
    customer_aliases,
    identity_changes,
    identity_decisions,
    identity_models,
    identity_runs,
)

__all__ = ["own_identity_view"]

_SWEPT: tuple[Table, ...] = (identity_changes, identity_runs, identity_models)
"""Tables whose documents may mention the person among others: redacted, not deleted."""


def _owned(req: SubjectRequest) -> list[tuple[Table, Any]]:
    ids = req.subject.ids
    return [
        (
            customer_aliases,
            or_(customer_aliases.c.alias.in_(ids), customer_aliases.c.customer_id.in_(ids)),
        ),
        (identity_changes, identity_changes.c.customer_id.in_(ids)),
        (
            identity_decisions,
            or_(identity_decisions.c.record_a.in_(ids), identity_decisions.c.record_b.in_(ids)),
        ),
    ]


def _key(table: Table, row: Mapping[str, Any]) -> tuple[str, tuple[Any, ...]]:
    return table.name, tuple(row[c.name] for c in table.primary_key.columns)


def own_identity_view(row: Mapping[str, Any], ids: set[str]) -> dict[str, Any]:
    """An identity change or decision as the person may see it.

    A merge, split or unmerge names both people (their customer ids, record keys and
    the pairs that linked them) and an analyst's reason written about both; an access
    export showed the other person's id, records and that reason (a review). Each id or
    record of someone else becomes :data:`OTHER` or a count; a reason naming two
    people is withheld.
    """
    out = dict(row)
    if "customer_id" in out and out["customer_id"] not in ids:
        out["customer_id"] = OTHER
    if isinstance(out.get("others"), list):
        out["others"] = [o if o in ids else OTHER for o in out["others"]]
    if isinstance(out.get("records"), list):
        listed = out["records"]
        out["records"] = [r for r in listed if r in ids]
        out["other_records"] = len(listed) - len(out["records"])
    if isinstance(out.get("evidence"), list):
        out["evidence"] = [
            {**e, "a": e.get("a") if e.get("a") in ids else OTHER,
             "b": e.get("b") if e.get("b") in ids else OTHER}
            for e in out["evidence"]
            if isinstance(e, dict) and (e.get("a") in ids or e.get("b") in ids)
        ]  # fmt: skip
    if "record_a" in out:  # a decision: these records are different people
        for side in ("record_a", "record_b"):
            if out[side] not in ids:
                out[side] = OTHER
        if out.get("reason"):
            out["reason"] = WITHHELD
    return out


def _export_identity(req: SubjectRequest) -> list[dict[str, Any]]:
    """Ids retired by merges, the merges and splits of the person's records with their
    evidence, and decisions that records are different people, as the person may see
    them (:func:`own_identity_view`)."""
    ids = set(req.subject.ids)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, Any]] = set()
    for table, condition in _owned(req):
        for row in req.conn.execute(select(table).where(condition)):
            seen.add(_key(table, dict(row._mapping)))
            out.append({"table": table.name, **own_identity_view(plain(row), ids)})
    matcher = Matcher(req.subject)
    for table in (*_SWEPT, identity_decisions):
        for data, _ in mentioning_rows(req.conn, table, matcher):
            if _key(table, data) not in seen:
                view = plain(data)
                if table in (identity_changes, identity_decisions):
                    view = own_identity_view(view, ids)
                out.append({"table": table.name, **view})
    return out


def _erase_identity(req: SubjectRequest) -> int:
    erased = 0
    for table, condition in _owned(req):
        erased += int(req.conn.execute(delete(table).where(condition)).rowcount or 0)
    matcher = Matcher(req.subject)
    # A decision about other people's records that mentions the person (by name, in
    # its reason) is theirs to keep: deleting it let the records merge again at the
    # next run (a namesake's erasure undid twins' "keep apart", a review).
    for data, _ in mentioning_rows(req.conn, identity_decisions, matcher):
        req.conn.execute(
            update(identity_decisions)
            .where(identity_decisions.c.id == data["id"])
            .values(reason=matcher.redact(data["reason"], req.pseudonym))
        )
        erased += 1
    for table in _SWEPT:
        key = table.c.id
        for data, kinds in mentioning_rows(req.conn, table, matcher):
            values = {
                column: matcher.redact(data[column], req.pseudonym)
                for column in kinds
                if column != "*"
            }
            if values:
                req.conn.execute(update(table).where(key == data["id"]).values(**values))
                erased += 1
    return erased


def _export_profile(req: SubjectRequest) -> list[dict[str, Any]]:
    """The unified profile: golden record, engagement, preferences, identity confidence."""
    from storelens.cdp.profile import build_profile  # pulls in scoring modules; on demand

    profile = build_profile(req.conn, req.subject.customer_id)
    if profile is None:
        return []
    ids = set(req.subject.ids)
    history = [own_identity_view(h, ids) for h in profile.get("identity_history", [])]
    return [plain({**profile, "identity_history": history})]


def _erase_profile(_: SubjectRequest) -> int:
    return 0  # assembled on read from registered stores: nothing of its own to erase


register(
    PersonalStore(
        "identity_resolution",
        _export_identity,
        _erase_identity,
        tables=(
            "customer_aliases",
            "identity_changes",
            "identity_decisions",
            "identity_runs",
            "identity_models",
        ),
    )
)
register(PersonalStore("profile", _export_profile, _erase_profile))
