"""Identity resolution against the database: full runs, incremental runs and unmerges.

The pure parts live elsewhere (:mod:`~storelens.cdp.identity` scores pairs with Splink,
:mod:`~storelens.cdp.clusters` turns them into stable customer ids); this module loads
source records, runs them, and writes ids, aliases, changes with their evidence, the
trained model and a run summary in one transaction, so a crash leaves the last run's
state intact.

Records are keyed ``source_system:source_record_id`` throughout: the key an analyst
sees in a profile and names in an unmerge.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import Connection, Engine, bindparam, func, select, update

from storelens.cdp.clusters import (
    Assignment,
    Change,
    ScoredPair,
    assign_ids,
    attach_new_records,
    chain_cuts,
    cluster_records,
    mint_customer_id,
)
from storelens.cdp.id_anchors import anchor_records
from storelens.cdp.identity import (
    IdentityModel,
    deterministic_pairs,
    household_conflict,
    link_new,
    scored_pairs,
)
from storelens.cdp.normalise import normalise_record
from storelens.core.errors import Conflict
from storelens.privacy import registry
from storelens.privacy.subject import canonical_id  # one lookup of current ids
from storelens.storage.dialects import dialect_for
from storelens.storage.tables import (
    customer_aliases,
    customers,
    identity_changes,
    identity_decisions,
    identity_models,
    identity_runs,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "MIN_RECORDS_FOR_MODEL",
    "ResolutionRun",
    "canonical_id",
    "has_model",
    "history_of",
    "lock_against_scoring",
    "record_changes",
    "record_key",
    "relink",
    "resolve",
    "separations",
    "unresolved_count",
]

log = logging.getLogger(__name__)
Mode = Literal["full", "incremental"]
MIN_RECORDS_FOR_MODEL = 200
"""Below this, EM has too little to learn from; deterministic rules alone decide."""
_MODEL_FIELDS = (
    "first_name", "last_name", "dob", "address", "postcode", "city", "email", "phone",
    "loyalty_id",
)  # fmt: skip


def record_key(source_system: str, source_record_id: str) -> str:
    return f"{source_system}:{source_record_id}"


@dataclass
class ResolutionRun:
    """What a run did, for the CLI and the run log."""

    mode: Mode
    records: int
    new_records: int
    pairs: int
    customers: int
    changes: dict[str, int]
    seconds: float
    model: str  # "splink" | "deterministic"
    threshold: float
    run_id: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _frame(rows: Sequence[Any]) -> pd.DataFrame:
    import pandas as pd

    records = []
    for row in rows:
        raw = {f: getattr(row, f) for f in (*_MODEL_FIELDS, "country")}
        norm = normalise_record(raw)
        records.append(
            {"unique_id": record_key(row.source_system, row.source_record_id)}
            | {f: norm[f] for f in _MODEL_FIELDS}
        )
    return pd.DataFrame(records, columns=["unique_id", *_MODEL_FIELDS])


def separations(conn: Connection) -> list[tuple[str, str]]:
    rows = conn.execute(select(identity_decisions.c.record_a, identity_decisions.c.record_b))
    return [(a, b) for a, b in rows]


def _load(conn: Connection) -> tuple[list[Any], dict[str, str], dict[str, str | None]]:
    rows = list(conn.execute(select(customers).order_by(customers.c.id)).all())
    previous = {
        record_key(r.source_system, r.source_record_id): r.customer_id
        for r in rows
        if r.resolved_at is not None and r.customer_id
    }
    loyalty = {record_key(r.source_system, r.source_record_id): r.loyalty_id for r in rows}
    return rows, previous, loyalty


def _full_pairs(
    frame: pd.DataFrame, threshold: float, seed: int
) -> tuple[list[ScoredPair], str, dict[str, Any] | None, dict[str, Any]]:
    import pandas as pd

    fallback: dict[str, Any] = {}
    if len(frame) >= MIN_RECORDS_FOR_MODEL:
        model = IdentityModel(threshold=threshold, seed=seed)
        try:
            result = model.link(frame, "dedupe_only")
        except (ValueError, ArithmeticError) as exc:  # EM diverged on too little signal
            log.warning("identity model could not be trained (%s); deterministic rules only", exc)
            fallback = {"model_error": str(exc)[:300]}
        else:
            return scored_pairs(result.pairs), "splink", model.model_json, dict(result.info)
    det = sorted(deterministic_pairs(frame))
    pairs = pd.DataFrame(det, columns=["unique_id_l", "unique_id_r"]).assign(
        match_probability=1.0, rule="deterministic"
    )
    return scored_pairs(pairs), "deterministic", None, {"deterministic_pairs": len(det), **fallback}


def _write(
    conn: Connection,
    assignment: Assignment,
    run_id: int,
    actor: str | None,
    now: datetime,
) -> None:
    lock_against_scoring(conn)
    by_key: dict[str, int] = {}
    before: dict[str, str | None] = {}
    for r in conn.execute(
        select(
            customers.c.id,
            customers.c.source_system,
            customers.c.source_record_id,
            customers.c.customer_id,
        )
    ):
        key = record_key(r.source_system, r.source_record_id)
        by_key[key], before[key] = r.id, r.customer_id
    gone = [k for k in assignment.customer_of if k not in by_key]
    if gone:  # erased since the read: the run was computed with their records
        raise Conflict("customer records were erased meanwhile; run it again")
    rows = [
        {"row_id": by_key[k], "cid": cid, "p": assignment.probability_of.get(k), "at": now}
        for k, cid in assignment.customer_of.items()
    ]
    if rows:
        conn.execute(
            update(customers)
            .where(customers.c.id == bindparam("row_id"))
            .values(
                customer_id=bindparam("cid"),
                match_probability=bindparam("p"),
                resolved_at=bindparam("at"),
            ),
            rows,
        )
    record_changes(conn, assignment.changes, run_id, actor, now)
    if assignment.restored:  # given back to the records they stand for: live ids again
        conn.execute(
            customer_aliases.delete().where(customer_aliases.c.alias.in_(assignment.restored))
        )
    for alias, target in assignment.aliases.items():
        conn.execute(customer_aliases.delete().where(customer_aliases.c.alias == alias))
        conn.execute(customer_aliases.insert(), {"alias": alias, "customer_id": target, "at": now})
    # An alias pointing at an id that was itself retired follows it to the survivor.
    for alias, target in assignment.aliases.items():
        conn.execute(
            update(customer_aliases)
            .where(customer_aliases.c.customer_id == alias)
            .values(customer_id=target)
        )
    # Every record that changed customer, with both customers: merges and splits, and
    # a new record joining an existing customer, which records no change (a review).
    moved = {k: cid for k, cid in assignment.customer_of.items() if before.get(k) != cid}
    old_ids = {i for i in (before.get(k) for k in moved) if i is not None}
    relink(conn, {*moved, *moved.values(), *old_ids})


def record_changes(
    conn: Connection,
    changes: Iterable[Change],
    run_id: int | None,
    actor: str | None,
    now: datetime,
) -> None:
    rows = [
        {
            "run_id": run_id,
            "kind": c.kind,
            "customer_id": c.customer_id,
            "others": list(c.others),
            "records": list(c.records),
            "evidence": [e.evidence() for e in c.evidence],
            "actor": actor,
            "at": now,
        }
        for c in changes
    ]
    if rows:
        conn.execute(identity_changes.insert(), rows)


def lock_against_scoring(conn: Connection) -> None:
    """Take the erasure lock exclusively before any link changes: the relink step may
    hand a scored customer a withdrawal, and a scoring run writes under the same lock
    (shared) after re-reading consent. Without it, on PostgreSQL a merge committed
    during a run's write left the run's features row for a withdrawn person, and the
    two could deadlock on the prediction tables (a review). First, before any row lock
    of the links is held, so an erasure (which holds it while it rewrites links) and
    this never wait on each other."""
    dialect_for(conn).lock_erasures(conn, shared=False)


def relink(conn: Connection, named: set[str]) -> None:
    """Tell the personal stores whose links just changed (records' keys, their old and
    new customer ids), once the links are written: a merge can hand a customer a
    consent withdrawal made under the other id (see
    :data:`storelens.privacy.registry.Relinker`)."""
    if named:
        registry.relinked(conn, frozenset(named))


def resolve(
    engine: Engine,
    mode: Mode = "full",
    *,
    threshold: float = 0.9,
    seed: int = 42,
    actor: str | None = None,
) -> ResolutionRun:
    """Resolve every record (``full``) or only the unresolved ones (``incremental``).

    A full run retrains the model and may merge or split customers, keeping their ids
    where it can; an incremental run reuses the last model, changes no existing id and
    reports would-be merges as suggestions.
    """
    if mode not in ("full", "incremental"):
        raise ValueError(f"unknown mode {mode!r}; use 'full' or 'incremental'")
    started, clock = datetime.now(UTC), time.perf_counter()
    # Read, then score outside any write transaction (training takes seconds to minutes
    # and SQLite has one writer), then write only if nobody resolved or unmerged since.
    with engine.connect() as conn:
        seen = _watermark(conn)
        rows, previous, loyalty = _load(conn)
        separated = separations(conn)
        retired = [a for (a,) in conn.execute(select(customer_aliases.c.alias))]
        retired_for = anchor_records(conn, retired, loyalty, search_log=False)
        model_row = conn.execute(
            select(identity_models.c.settings).order_by(identity_models.c.id.desc()).limit(1)
        ).first()
    keys = [record_key(r.source_system, r.source_record_id) for r in rows]
    new_keys = [k for k in keys if k not in previous]
    info: dict[str, Any] = {}
    model_json: dict[str, Any] | None = None
    if mode == "full":
        frame = _frame(rows)
        pairs, model_kind, model_json, info = _full_pairs(frame, threshold, seed)
        veto_on = info.get("household_veto")  # as the model decided; else from the data
        conflict = household_conflict(frame, veto_on) if len(frame) else None
        settle = conflict.settle if conflict is not None else None
        clusters = cluster_records(keys, pairs, separated, conflict=conflict, settle=settle)
        assignment = assign_ids(
            clusters,
            previous,
            loyalty_of=loyalty,
            retired=retired,
            mint=mint_customer_id,
            retired_for=retired_for,
        )
        assignment.changes.extend(chain_cuts(clusters, assignment.customer_of))
        customers_after = len(set(assignment.customer_of.values()))
    else:
        new_rows = [r for r, k in zip(rows, keys, strict=True) if k not in previous]
        old_rows = [r for r, k in zip(rows, keys, strict=True) if k in previous]
        if not new_rows:
            pairs, model_kind = [], "none"
        elif model_row is None or not old_rows:
            if previous:
                raise Conflict("no trained model yet; run a full resolve first")
            return resolve(engine, "full", threshold=threshold, seed=seed, actor=actor)
        else:
            scored = link_new(model_row.settings, _frame(old_rows), _frame(new_rows), threshold)
            pairs, model_kind = scored_pairs(scored), "splink"
        assignment = attach_new_records(
            new_keys, pairs, previous, loyalty_of=loyalty, separated=separated, retired=retired
        )
        customers_after = len(set(previous.values()) | set(assignment.customer_of.values()))
    counts: dict[str, int] = {}
    for change in assignment.changes:
        counts[change.kind] = counts.get(change.kind, 0) + 1
    with engine.begin() as conn:
        dialect_for(conn).lock_consumer(conn, "identity-resolution")
        # The erasure lock before the look, not after it (in ``_write``): an unmerge or an
        # erasure holds only that lock, and one committing between the look and the
        # write was written over (an unmerge undone, its restored id left pointing
        # nowhere) or crashed the write (a review, on PostgreSQL).
        lock_against_scoring(conn)
        if _watermark(conn) != seen:
            raise Conflict("another resolution or an unmerge finished meanwhile; run it again")
        if model_json is not None:
            conn.execute(
                identity_models.insert(),
                {"trained_at": started, "records": len(rows), "settings": model_json},
            )
        run_id = conn.execute(
            identity_runs.insert().returning(identity_runs.c.id),
            {
                "mode": mode,
                "started_at": started,
                "finished_at": datetime.now(UTC),
                "records": len(rows),
                "new_records": len(new_keys),
                "pairs": len(pairs),
                "customers": customers_after,
                "threshold": threshold,
                "info": {"model": model_kind, "changes": counts, **_jsonable(info)},
            },
        ).scalar_one()
        _write(conn, assignment, run_id, actor, started)
    return ResolutionRun(
        mode=mode,
        records=len(rows),
        new_records=len(new_keys),
        pairs=len(pairs),
        customers=customers_after,
        changes=counts,
        seconds=round(time.perf_counter() - clock, 3),
        model=model_kind,
        threshold=threshold,
        run_id=run_id,
        info=_jsonable(info),
    )


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if hasattr(v, "__float__") else v) for k, v in info.items()}


def _watermark(conn: Connection) -> tuple[int | None, int | None]:
    """Latest run and latest identity change: if either moves, a decision was made."""
    return (
        conn.execute(select(func.max(identity_runs.c.id))).scalar_one(),
        conn.execute(select(func.max(identity_changes.c.id))).scalar_one(),
    )


def history_of(conn: Connection, customer_id: str) -> list[dict[str, Any]]:
    """Merges, splits, suggestions and unmerges that touched a customer, newest first."""
    rows = conn.execute(select(identity_changes).order_by(identity_changes.c.id.desc())).all()
    return [
        dict(r._mapping)
        for r in rows
        if r.customer_id == customer_id or customer_id in (r.others or [])
    ]


def has_model(conn: Connection) -> bool:
    return conn.execute(select(identity_models.c.id).limit(1)).first() is not None


def unresolved_count(conn: Connection) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(customers).where(customers.c.resolved_at.is_(None))
        ).scalar_one()
    )
