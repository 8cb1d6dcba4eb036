"""Identity resolution in the database: stable ids, incremental runs, unmerges that stick.

Runs on SQLite and the real PostgreSQL (the ``engine`` fixture is parametrised).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, select
from tests.cdp.identity_records import ids_of

from storelens.cdp import resolution
from storelens.cdp.linkage_eval import clusters_to_pairs, score_pairs
from storelens.cdp.records import ImportIds, customer_events
from storelens.cdp.resolution import (
    canonical_id,
    history_of,
    record_key,
    resolve,
    unresolved_count,
)
from storelens.cdp.synthetic import generate_customers
from storelens.cdp.unmerge import unmerge
from storelens.core.errors import Conflict, NotFound
from storelens.ingest.batch import ingest_items
from storelens.privacy.audit import SYSTEM, Actor
from storelens.privacy.erasure import erase_customer
from storelens.privacy.subject import resolve_subject
from storelens.processors import ProjectionLoop, run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import audit_log, events, identity_changes

IDS = ImportIds("test-secret-for-import-ids")  # the installation's key, in tests

ANALYST = Actor("ana", "user", "analyst")


def _rows(frame: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Synthetic model rows as source records, grouped by source system."""
    out: dict[str, list[dict[str, Any]]] = {}
    for r in frame.itertuples():
        street = " ".join(x for x in (r.street_number, r.address) if isinstance(x, str))
        record = {
            "source_record_id": r.unique_id,
            "first_name": r.first_name,
            "last_name": r.last_name,
            "email": r.email,
            "phone": r.phone,
            "address": street or None,
            "postcode": r.postcode,
            "city": r.city,
            "dob": r.dob,
            "loyalty_id": r.loyalty_id,
        }
        out.setdefault(r.source_dataset, []).append(
            {k: v for k, v in record.items() if isinstance(v, str)}
        )
    return out


def _load(engine: Engine, frame: pd.DataFrame) -> None:
    log = EventLog(engine)
    for source, rows in _rows(frame).items():
        report = ingest_items(log, customer_events(source, rows, IDS))
        assert not report.rejected, report.rejected[:3]
    run_projections(log)


@pytest.fixture(scope="module")
def people() -> tuple[pd.DataFrame, pd.Series]:
    return generate_customers(600, seed=11)


def test_full_run_finds_the_people_and_a_rerun_changes_no_id(
    engine: Engine, people: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, truth = people
    _load(engine, frame)
    first = resolve(engine, "full")
    assert first.model == "splink" and first.records == 600 and first.new_records == 600
    ids = ids_of(engine)
    key_of = {r.unique_id: record_key(r.source_dataset, r.unique_id) for r in frame.itertuples()}
    truth_pairs = clusters_to_pairs(
        {key_of[u]: e for u, e in zip(frame.unique_id, truth, strict=True)}
    )
    scores = score_pairs(clusters_to_pairs(ids), truth_pairs)
    assert scores.precision >= 0.95 and scores.recall >= 0.9, scores
    with engine.begin() as conn:
        assert unresolved_count(conn) == 0

    second = resolve(engine, "full")
    assert ids_of(engine) == ids  # nobody renumbered
    assert second.changes == {}


def test_incremental_adds_records_without_touching_existing_ids(
    engine: Engine, people: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, truth = people
    first, later = frame.iloc[:500], frame.iloc[500:]
    _load(engine, first)
    resolve(engine, "full")
    before = ids_of(engine)
    _load(engine, later)
    run = resolve(engine, "incremental")
    assert run.mode == "incremental" and run.new_records == 100
    after = ids_of(engine)
    assert {k: after[k] for k in before} == before
    # A late duplicate of someone already known joins that person.
    entity_of = dict(zip(frame.unique_id, truth, strict=True))
    source_of = dict(zip(frame.unique_id, frame.source_dataset, strict=True))
    joined = 0
    for uid in later.unique_id:
        twins = [u for u in first.unique_id if entity_of[u] == entity_of[uid]]
        if twins:
            joined += (
                after[record_key(source_of[uid], uid)]
                == after[record_key(source_of[twins[0]], twins[0])]
            )
    assert joined >= 0.9 * sum(
        any(entity_of[u] == entity_of[uid] for u in first.unique_id) for uid in later.unique_id
    )
    nothing = resolve(engine, "incremental")
    assert nothing.new_records == 0 and ids_of(engine) == after

    # The server links records that arrive later on its own, on a timer.
    more, _ = generate_customers(40, seed=99)
    late = more.assign(unique_id=[f"late{i}" for i in range(len(more))])
    _load(engine, late)
    with engine.connect() as conn:
        assert unresolved_count(conn) == 40
    ProjectionLoop(EventLog(engine), identity_every_s=1)._link_new_customers()
    with engine.connect() as conn:
        assert unresolved_count(conn) == 0
    final = ids_of(engine)
    assert {k: final[k] for k in after} == after


def test_a_decision_made_meanwhile_is_not_overwritten(
    engine: Engine, people: tuple[pd.DataFrame, pd.Series], monkeypatch: pytest.MonkeyPatch
) -> None:
    frame, _ = people
    _load(engine, frame.iloc[:300])
    resolve(engine, "full")
    ids = ids_of(engine)
    cid, members = next(
        (c, sorted(k for k, v in ids.items() if v == c))
        for c in sorted(set(ids.values()))
        if sum(v == c for v in ids.values()) >= 2
    )
    real = resolution._full_pairs

    def slow_training(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        unmerge(engine, cid, members[-1:], ANALYST)  # an analyst acts while the model trains
        return out

    monkeypatch.setattr(resolution, "_full_pairs", slow_training)
    with pytest.raises(Conflict, match="meanwhile"):
        resolve(engine, "full")
    assert ids_of(engine)[members[-1]] != cid  # the unmerge stands


def test_unmerge_survives_full_and_incremental_reruns(
    engine: Engine, people: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, _ = people
    _load(engine, frame)
    resolve(engine, "full")
    ids = ids_of(engine)
    by_customer: dict[str, list[str]] = {}
    for key, cid in ids.items():
        by_customer.setdefault(cid, []).append(key)
    cid, members = next((c, sorted(m)) for c, m in sorted(by_customer.items()) if len(m) >= 2)
    moved = members[-1]
    split = unmerge(engine, cid, [moved], ANALYST, reason="two people, one email")
    new_id = split.new_customer_id
    assert new_id != cid and ids_of(engine)[moved] == new_id
    assert split.customer_id == cid and split.aliases == ()  # one "new" cluster: nothing to undo

    resolve(engine, "full")
    after = ids_of(engine)
    assert after[moved] != after[members[0]]
    assert after[members[0]] == cid  # the customer kept their id
    with engine.begin() as conn:
        kinds = [h["kind"] for h in history_of(conn, cid)]
        assert "unmerge" in kinds
        audit_rows = (
            conn.execute(
                select(identity_changes.c.actor).where(identity_changes.c.kind == "unmerge")
            )
            .scalars()
            .all()
        )
        assert audit_rows == ["ana"]


def test_merge_is_recorded_with_evidence_and_old_id_still_resolves(engine: Engine) -> None:
    rows = [
        {"source_record_id": "1", "first_name": "Ada", "last_name": "Lovelace",
         "email": "ada@example.org"},
        {"source_record_id": "2", "first_name": "Ada", "last_name": "Lovelace",
         "phone": "+4930901820"},
    ]  # fmt: skip
    log = EventLog(engine)
    ingest_items(log, customer_events("crm", rows[:1], IDS))
    ingest_items(log, customer_events("webshop", rows[1:], IDS))
    run_projections(log)
    resolve(engine, "full")  # too few records for a model: deterministic only, two people
    ids = ids_of(engine)
    assert ids["crm:1"] != ids["webshop:2"]
    # The web shop record later gains the same e-mail: the next full run merges them.
    updated = {**rows[1], "email": "ADA@example.org"}
    ingest_items(log, customer_events("webshop", [updated], IDS))
    run_projections(log)
    run = resolve(engine, "full")
    merged = ids_of(engine)
    assert merged["crm:1"] == merged["webshop:2"] and run.changes == {"merge": 1}
    survivor = merged["crm:1"]
    retired = ({ids["crm:1"], ids["webshop:2"]} - {survivor}).pop()
    with engine.begin() as conn:
        assert canonical_id(conn, retired) == survivor
        (merge,) = [h for h in history_of(conn, survivor) if h["kind"] == "merge"]
        assert merge["others"] == [retired]
        assert merge["evidence"][0]["rule"] == "deterministic"


def test_bad_unmerges_and_incremental_without_a_model(engine: Engine) -> None:
    log = EventLog(engine)
    ingest_items(
        log,
        customer_events(
            "crm",
            [
                {"source_record_id": "1", "first_name": "A", "email": "a@example.org"},
                {"source_record_id": "2", "first_name": "B", "email": "a@example.org"},
            ],
            IDS,
        ),
    )
    run_projections(log)
    resolve(engine, "full")
    cid = ids_of(engine)["crm:1"]
    with pytest.raises(NotFound):
        unmerge(engine, "C-NOBODY", ["crm:1"], ANALYST)
    with pytest.raises(ValueError, match="not records of"):
        unmerge(engine, cid, ["crm:999"], ANALYST)
    with pytest.raises(ValueError, match="every record"):
        unmerge(engine, cid, ["crm:1", "crm:2"], ANALYST)
    with pytest.raises(ValueError, match="at least one"):
        unmerge(engine, cid, [], ANALYST)
    # Deterministic-only full runs train no model; incremental then asks for a full run.
    ingest_items(log, customer_events("crm", [{"source_record_id": "3", "first_name": "C"}], IDS))
    run_projections(log)
    with pytest.raises(Conflict, match="full resolve"):
        resolve(engine, "incremental")
    with pytest.raises(ValueError, match="unknown mode"):
        resolve(engine, "sideways")  # type: ignore[arg-type]


RawEvent = Callable[..., dict[str, Any]]


def _merged_ada(engine: Engine, raw_event: RawEvent) -> tuple[str, str, dict[str, str]]:
    """Ada's CRM and web-shop records, each with an event under its own id, then merged:
    (survivor, retired id, record key -> id before the merge)."""
    rows = [
        {"source_record_id": "1", "first_name": "Ada", "last_name": "Lovelace",
         "email": "ada@example.org"},
        {"source_record_id": "2", "first_name": "Ada", "last_name": "Lovelace",
         "phone": "+4930901820"},
    ]  # fmt: skip
    log = EventLog(engine)
    ingest_items(log, customer_events("crm", rows[:1], IDS))
    ingest_items(log, customer_events("webshop", rows[1:], IDS))
    run_projections(log)
    resolve(engine, "full")
    before = ids_of(engine)
    for key, cid in before.items():  # e.g. the web shop's search log, under each id
        page = {"session_id": key, "action": "page_view", "page": "/"}
        event = raw_event("web.event", subject=cid, store_id=None, payload=page)
        assert ingest_items(log, [event]).accepted == 1
    updated = {**rows[1], "email": "ADA@example.org"}
    ingest_items(log, customer_events("webshop", [updated], IDS))
    run_projections(log)
    resolve(engine, "full")
    after = ids_of(engine)
    survivor = after["crm:1"]
    assert after["webshop:2"] == survivor
    retired = (set(before.values()) - {survivor}).pop()
    return survivor, retired, before


def _event_subjects(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(
            conn.execute(select(events.c.subject).where(events.c.type == "web.event")).scalars()
        )


@pytest.mark.parametrize("split_off", ["retired", "survivor"])
def test_unmerge_gives_each_side_back_the_id_its_records_held(
    engine: Engine, raw_event: RawEvent, split_off: str
) -> None:
    """Either side split off, each person gets back the id they had before the merge,
    with the rows written under it. A review found the retired id left with the customer
    the records were split from: an erasure for the person split off missed their rows,
    and one for the other person took them."""
    survivor, retired, before = _merged_ada(engine, raw_event)
    mine = survivor if split_off == "survivor" else retired
    theirs = retired if split_off == "survivor" else survivor
    held = next(k for k, cid in before.items() if cid == mine)
    split = unmerge(engine, survivor, [held], ANALYST, reason="two Adas")
    assert (split.new_customer_id, split.customer_id, split.aliases) == (mine, theirs, ())
    assert ids_of(engine) == before  # the merge undone
    with engine.begin() as conn:
        assert canonical_id(conn, retired) == retired  # a live id again, no alias left
        split_off_person = resolve_subject(conn, mine)
        assert split_off_person is not None and theirs not in split_off_person.ids
        (detail,) = conn.execute(
            select(audit_log.c.detail).where(audit_log.c.action == "customer.unmerge")
        ).scalars()
        assert detail["new_customer_id"] == mine
        assert detail.get("kept_customer_id") == (theirs if split_off == "survivor" else None)
    resolve(engine, "full")  # a rerun keeps both ids
    assert ids_of(engine) == before
    erase_customer(engine, theirs, SYSTEM, "request 7")
    assert _event_subjects(engine) == {mine}  # the person split off keeps their row
    erase_customer(engine, mine, SYSTEM, "request 8")
    assert _event_subjects(engine) == set()


def test_a_retired_id_follows_most_of_its_records(engine: Engine, raw_event: RawEvent) -> None:
    """Three records: a third joins the merged customer as a record of its own, then
    the retired id's record and that newcomer are split off together: the retired id
    is given back to them, the newcomer's id stays retired and follows them."""
    survivor, retired, before = _merged_ada(engine, raw_event)
    log = EventLog(engine)
    third = {"source_record_id": "3", "first_name": "Ada", "last_name": "Lovelace",
             "email": "ada@example.org", "phone": "+4930901820"}  # fmt: skip
    ingest_items(log, customer_events("loyalty", [third], IDS))
    run_projections(log)
    resolve(engine, "full")
    assert set(ids_of(engine).values()) == {survivor}
    held = next(k for k, cid in before.items() if cid == retired)
    split = unmerge(engine, survivor, [held, "loyalty:3"], ANALYST)
    assert (split.customer_id, split.new_customer_id) == (survivor, retired)
    assert ids_of(engine)["loyalty:3"] == retired


def test_the_cli_says_where_each_side_went(
    engine: Engine, db_url: str, raw_event: RawEvent
) -> None:
    """Split off the records the customer's id was made for: the id goes with them and
    the shell says so, or the analyst would look for the rest under the old id."""
    from typer.testing import CliRunner

    from storelens.cdp import cli_identity  # registers the identity commands
    from storelens.cdp.cli import cdp_app

    assert cli_identity.unmerge_command
    survivor, retired, before = _merged_ada(engine, raw_event)
    held = next(k for k, cid in before.items() if cid == survivor)
    result = CliRunner().invoke(cdp_app, ["unmerge", survivor, held, "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert f"{held} split off {survivor} into {survivor}" in result.output
    assert f"the rest are {retired}" in result.output


def test_records_resolved_together_keep_their_id_however_many_are_split_off(
    engine: Engine,
) -> None:
    """Three records linked in one run share one id, the card's loyalty id: splitting two
    of them off leaves it with the card's record, not with the larger side."""
    log = EventLog(engine)
    rows = {
        "loyalty": {"source_record_id": "k1", "first_name": "Ada", "last_name": "Lovelace",
                    "email": "ada@example.org", "loyalty_id": "L-7"},
        "crm": {"source_record_id": "c1", "first_name": "Ada", "last_name": "Lovelace",
                "email": "ada@example.org"},
        "webshop": {"source_record_id": "w1", "first_name": "Ada", "last_name": "Lovelace",
                    "email": "ada@example.org"},
    }  # fmt: skip
    for source, row in rows.items():
        ingest_items(log, customer_events(source, [row], IDS))
    run_projections(log)
    resolve(engine, "full")
    assert set(ids_of(engine).values()) == {"L-7"}
    split = unmerge(engine, "L-7", ["crm:c1", "webshop:w1"], ANALYST)
    assert split.customer_id == "L-7" and split.new_customer_id != "L-7"
    assert ids_of(engine)["loyalty:k1"] == "L-7"
