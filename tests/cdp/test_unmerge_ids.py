"""Which id each side of an unmerge gets, where the rows kept under ids then belong.

Every case is an attack from a review of the first version (ids were given by how many
of an id's records went each way): records that joined later, a chain of merges, an id
minted by a split, a loyalty id used as the customer id, and the access export naming
the other person. Each checks where the rows written under the ids end up when one of
the people is erased. SQLite and the real PostgreSQL (the ``engine`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, select
from tests.cdp.identity_records import aliases_of, ids_of, merged_later, put

from storelens.cdp import resolution
from storelens.cdp.resolution import resolve
from storelens.cdp.unmerge import unmerge
from storelens.core.errors import Conflict
from storelens.ingest.batch import ingest_items
from storelens.privacy.audit import SYSTEM, Actor
from storelens.privacy.erasure import erase_customer, export_customer
from storelens.privacy.spine import OTHER
from storelens.processors import run_projections
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import (
    customer_aliases,
    customers,
    events,
    identity_changes,
    orders,
)

ANALYST = Actor("ana", "user", "analyst")
RawEvent = Callable[..., dict[str, Any]]


def _row_under(engine: Engine, raw_event: RawEvent, cid: str, tag: str) -> None:
    page = {"session_id": tag, "action": "page_view", "page": "/"}
    event = raw_event("web.event", subject=cid, store_id=None, payload=page)
    assert ingest_items(EventLog(engine), [event]).accepted == 1


def _rows_left(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        payloads = conn.execute(select(events.c.payload).where(events.c.type == "web.event"))
        return {
            (p if isinstance(p, dict) else json.loads(p))["session_id"] for p in payloads.scalars()
        }


def _consistent(engine: Engine) -> None:
    """No alias is a live id, and none points at an id no record has."""
    live, aliases = set(ids_of(engine).values()), aliases_of(engine)
    assert not set(aliases) & live
    assert set(aliases.values()) <= live


def test_records_that_joined_later_do_not_take_the_id(engine: Engine, raw_event: RawEvent) -> None:
    put(engine, "crm:1", email="ada@example.org")
    resolve(engine, "full")
    ada = ids_of(engine)["crm:1"]
    _row_under(engine, raw_event, ada, "ada-own")
    put(engine, "web:1", email="ada@example.org", phone="+4930111111")  # join: no change row
    put(engine, "web:2", email="ada@example.org", phone="+4930111111")
    resolve(engine, "full")
    assert set(ids_of(engine).values()) == {ada}
    unmerge(engine, ada, ["web:1", "web:2"], ANALYST)  # two of three split off
    assert ids_of(engine)["crm:1"] == ada
    _consistent(engine)


def test_the_record_an_id_was_made_for_takes_it(engine: Engine, raw_event: RawEvent) -> None:
    put(engine, "crm:1", email="ada@example.org")
    resolve(engine, "full")
    ada = ids_of(engine)["crm:1"]
    _row_under(engine, raw_event, ada, "ada-own")
    put(engine, "web:1", email="ada@example.org", phone="+4930111111")
    resolve(engine, "full")
    split = unmerge(engine, ada, ["crm:1"], ANALYST)
    assert (split.new_customer_id, ids_of(engine)["crm:1"]) == (ada, ada)
    _consistent(engine)
    erase_customer(engine, ids_of(engine)["web:1"], SYSTEM, "the web shop person's request")
    assert "ada-own" in _rows_left(engine)


def _chain(engine: Engine, raw_event: RawEvent) -> tuple[str, str, str]:
    """A (six records) absorbs B (two), which had absorbed C (one, then two joined it)."""
    for i in range(1, 7):
        phone = {"phone": "+4930999999"} if i == 1 else {}
        put(engine, f"crm:a{i}", email="a@example.org", **phone)
    put(engine, "web:b1", email="b@example.org")
    put(engine, "web:b2", email="b@example.org")
    put(engine, "pos:c1", email="c@example.org", phone="+4930333333")
    resolve(engine, "full")
    first = ids_of(engine)
    a, b, c = first["crm:a1"], first["web:b1"], first["pos:c1"]
    for cid, tag in ((a, "a-own"), (b, "b-own"), (c, "c-own")):
        _row_under(engine, raw_event, cid, tag)
    put(engine, "pos:c1", email="b@example.org", phone="+4930333333")  # C -> B
    resolve(engine, "full")
    put(engine, "pos:c2", phone="+4930333333")  # join B
    put(engine, "pos:c3", phone="+4930333333")
    resolve(engine, "full")
    put(engine, "web:b1", email="b@example.org", phone="+4930999999")  # B -> A
    resolve(engine, "full")
    assert set(ids_of(engine).values()) == {a} and aliases_of(engine) == {b: a, c: a}
    return a, b, c


def test_a_chain_gives_each_id_back_to_the_records_it_was_made_for(
    engine: Engine, raw_event: RawEvent
) -> None:
    a, b, c = _chain(engine, raw_event)
    split = unmerge(engine, a, ["pos:c1", "pos:c2", "pos:c3"], ANALYST)
    assert (split.customer_id, split.new_customer_id) == (a, c)
    assert ids_of(engine)["web:b1"] == a and aliases_of(engine) == {b: a}
    _consistent(engine)
    erase_customer(engine, c, SYSTEM, "c's request")
    assert _rows_left(engine) == {"a-own", "b-own"}
    split = unmerge(engine, a, ["web:b1", "web:b2"], ANALYST)  # then the middle one
    assert split.new_customer_id == b and aliases_of(engine) == {}
    before = ids_of(engine)
    resolve(engine, "full")
    assert ids_of(engine) == before  # a rerun renames nobody


def test_the_middle_of_a_chain_split_off_gets_its_own_id_back(
    engine: Engine, raw_event: RawEvent
) -> None:
    a, b, c = _chain(engine, raw_event)
    split = unmerge(engine, a, ["web:b1", "web:b2"], ANALYST)
    assert split.new_customer_id == b and aliases_of(engine) == {c: a}
    _consistent(engine)
    erase_customer(engine, b, SYSTEM, "b's request")
    assert _rows_left(engine) == {"a-own", "c-own"}


def test_an_id_minted_by_a_split_knows_its_records(
    engine: Engine, raw_event: RawEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full run that splits a customer mints an id for the part split off; it now
    records what that id was made for, or a later merge's unmerge guessed."""
    seq = iter(range(1, 100))
    monkeypatch.setattr(resolution, "mint_customer_id", lambda: f"C{next(seq):04d}")
    for i in range(1, 5):
        put(engine, f"crm:a{i}", email="a@example.org")
    for k in ("s1", "x1", "x2"):
        put(engine, f"app:{k}", email="xavier@example.org")
    resolve(engine, "full")
    put(engine, "app:s1", email="sam@example.org")  # s1 leaves X: a split
    put(engine, "web:b1", email="b@example.org")
    put(engine, "web:b2", email="b@example.org")
    resolve(engine, "full")
    now = ids_of(engine)
    a, s, b = now["crm:a1"], now["app:s1"], now["web:b1"]
    assert s not in (now["app:x1"], a) and s < b  # S would win a tie by name
    _row_under(engine, raw_event, s, "s-own")
    _row_under(engine, raw_event, b, "b-own")
    for key, email in (("crm:a1", "a"), ("app:s1", "sam"), ("web:b1", "b")):
        put(engine, key, email=f"{email}@example.org", phone="+4930999999")
    resolve(engine, "full")  # one merge absorbs S and B
    assert {ids_of(engine)[k] for k in ("crm:a1", "app:s1", "web:b1")} == {a}
    split = unmerge(engine, a, ["web:b1", "web:b2"], ANALYST)
    assert split.new_customer_id == b and aliases_of(engine) == {s: a}
    erase_customer(engine, b, SYSTEM, "b's request")
    assert _rows_left(engine) == {"s-own"}


def _card_holder_with_an_order(engine: Engine, paid_order: Callable[..., dict[str, Any]]) -> None:
    """Card L-7's record and a web shop record of the same person, resolved into one
    customer whose id is the card's; an order paid with the card."""
    put(engine, "loyalty:k1", email="ada@example.org", loyalty_id="L-7")
    put(engine, "webshop:w1", email="ada@example.org")
    resolve(engine, "full")
    assert set(ids_of(engine).values()) == {"L-7"}
    assert ingest_items(EventLog(engine), [paid_order("L-7", "o-card")]).accepted == 1
    run_projections(EventLog(engine))


def test_a_loyalty_id_used_as_the_customer_id_goes_with_the_card(
    engine: Engine, paid_order: Callable[..., dict[str, Any]]
) -> None:
    _card_holder_with_an_order(engine, paid_order)
    split = unmerge(engine, "L-7", ["loyalty:k1"], ANALYST)
    assert split.new_customer_id == "L-7" and split.customer_id != "L-7"
    erase_customer(engine, split.customer_id, SYSTEM, "the web shop person's request")
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.order_id, orders.c.customer_id)).all() == [
            ("o-card", "L-7")
        ]


def test_records_sharing_a_loyalty_id_are_not_split_apart(engine: Engine) -> None:
    put(engine, "loyalty:k1", email="ada@example.org", loyalty_id="L-7")
    put(engine, "pos:p1", email="ada@example.org", loyalty_id="L-7")
    put(engine, "webshop:w1", email="ada@example.org")
    resolve(engine, "full")
    with pytest.raises(Conflict, match="loyalty id L-7"):
        unmerge(engine, "L-7", ["loyalty:k1"], ANALYST)
    assert set(ids_of(engine).values()) == {"L-7"}  # nothing done


def test_the_shell_refuses_that_with_exit_2_not_a_traceback(engine: Engine, db_url: str) -> None:
    from typer.testing import CliRunner

    from storelens.cdp import cli_identity
    from storelens.cdp.cli import cdp_app

    assert cli_identity.unmerge_command  # registers the identity commands
    for key in ("loyalty:k1", "pos:p1"):
        put(engine, key, email="ada@example.org", loyalty_id="L-7")
    put(engine, "webshop:w1", email="ada@example.org")
    resolve(engine, "full")
    result = CliRunner().invoke(cdp_app, ["unmerge", "L-7", "pos:p1", "--database-url", db_url])
    assert result.exit_code == 2 and "loyalty id L-7" in result.output


def test_the_access_export_after_an_unmerge_names_only_the_person(engine: Engine) -> None:
    before = merged_later(engine, "crm:1", "webshop:2", "ada@example.org", "+4930901820")
    split = unmerge(engine, ids_of(engine)["crm:1"], ["webshop:2"], ANALYST, reason="two Adas")
    mine, theirs = split.new_customer_id, split.customer_id
    assert mine == before["webshop:2"]
    stores = export_customer(engine, mine, SYSTEM)["stores"]
    for store in ("identity_resolution", "profile"):
        shown = json.dumps(stores[store], default=str)
        assert theirs not in shown and "crm:1" not in shown and "two Adas" not in shown
    identity = stores["identity_resolution"]
    assert any(row["table"] == "identity_decisions" for row in identity)  # shown, redacted
    (row,) = [r for r in identity if r.get("kind") == "unmerge"]
    assert {row["customer_id"], *row["others"]} == {mine, OTHER}  # either side may keep its id


# A second review, of the version above: a card reissued, a database from before ids
# minted by splits recorded their records, records a run splits off again.


def test_a_reissued_cards_id_goes_with_the_card_holder(
    engine: Engine, paid_order: Callable[..., dict[str, Any]]
) -> None:
    _card_holder_with_an_order(engine, paid_order)
    put(engine, "loyalty:k1", email="ada@example.org", loyalty_id="L-8")  # a new card
    resolve(engine, "full")
    assert set(ids_of(engine).values()) == {"L-7"}  # no record carries L-7 now
    split = unmerge(engine, "L-7", ["loyalty:k1"], ANALYST)
    assert split.new_customer_id == "L-7"  # the log shows whose card it was
    erase_customer(engine, split.customer_id, SYSTEM, "the web shop person's request")
    with engine.connect() as conn:
        assert conn.execute(select(orders.c.order_id, orders.c.customer_id)).all() == [
            ("o-card", "L-7")
        ]


def test_an_id_minted_by_a_split_before_such_ids_were_recorded(
    engine: Engine, raw_event: RawEvent
) -> None:
    """A database from before 2026-12-07 has no ``new`` change for an id a full run's
    split minted: the split's own change names its records."""
    for i in range(1, 5):
        put(engine, f"crm:a{i}", email="a@example.org")
    for k in ("s1", "x1", "x2"):
        put(engine, f"app:{k}", email="xavier@example.org")
    resolve(engine, "full")
    put(engine, "app:s1", email="sam@example.org")  # s1 leaves X: a split mints S
    resolve(engine, "full")
    now = ids_of(engine)
    a, s = now["crm:a1"], now["app:s1"]
    with engine.begin() as conn:  # as an older version wrote the trail
        conn.execute(
            delete(identity_changes).where(
                identity_changes.c.kind == "new", identity_changes.c.customer_id == s
            )
        )
    _row_under(engine, raw_event, s, "s-own")
    _row_under(engine, raw_event, a, "a-own")
    put(engine, "app:s1", email="sam@example.org", phone="+4930999999")
    put(engine, "crm:a1", email="a@example.org", phone="+4930999999")
    resolve(engine, "full")
    assert aliases_of(engine) == {s: a}
    split = unmerge(engine, a, ["app:s1"], ANALYST)
    assert split.new_customer_id == s
    erase_customer(engine, s, SYSTEM, "sam's request")
    assert _rows_left(engine) == {"a-own"}


def test_records_a_run_splits_off_get_their_own_id_back(
    engine: Engine, raw_event: RawEvent
) -> None:
    """X's record leaves A, the customer it had been merged into, by a full run: it got
    a new id while X still pointed at A, so X's rows stayed with A's person."""
    for i in range(1, 5):
        put(engine, f"crm:a{i}", email="a@example.org")
    put(engine, "web:x1", email="x@example.org")
    resolve(engine, "full")
    a, x = ids_of(engine)["crm:a1"], ids_of(engine)["web:x1"]
    _row_under(engine, raw_event, x, "x-own")
    put(engine, "web:x1", email="a@example.org")  # X merges into A
    resolve(engine, "full")
    assert aliases_of(engine) == {x: a}
    put(engine, "web:x1", email="x.new@example.org")  # and leaves again
    resolve(engine, "full")
    assert ids_of(engine)["web:x1"] == x and aliases_of(engine) == {}
    erase_customer(engine, x, SYSTEM, "x's request")
    assert "x-own" not in _rows_left(engine)


def test_unlinked_records_split_off_together_keep_their_ids_after_a_rerun(
    engine: Engine, raw_event: RawEvent
) -> None:
    """X's and Y's records, merged into A through different links, are split off in one
    unmerge; the next full run parts them (nothing links them): each keeps its own id."""
    for i in range(1, 5):
        put(engine, f"crm:a{i}", email="a@example.org")
    put(engine, "web:x1", email="x@example.org")
    put(engine, "web:y1", email="y@example.org")
    put(engine, "web:y2", email="y@example.org")
    resolve(engine, "full")
    first = ids_of(engine)
    a, x, y = first["crm:a1"], first["web:x1"], first["web:y1"]
    for cid, tag in ((a, "a-own"), (x, "x-own"), (y, "y-own")):
        _row_under(engine, raw_event, cid, tag)
    put(engine, "crm:a1", email="a@example.org", phone="+4930111111")
    put(engine, "web:x1", email="x@example.org", phone="+4930111111")
    put(engine, "crm:a2", email="a@example.org", phone="+4930222222")
    put(engine, "web:y1", email="y@example.org", phone="+4930222222")
    resolve(engine, "full")
    assert aliases_of(engine) == {x: a, y: a}
    unmerge(engine, a, ["web:x1", "web:y1", "web:y2"], ANALYST)
    resolve(engine, "full")
    after = ids_of(engine)
    assert (after["web:x1"], after["web:y1"], after["crm:a1"]) == (x, y, a)
    _consistent(engine)
    erase_customer(engine, x, SYSTEM, "x's request")
    assert _rows_left(engine) == {"a-own", "y-own"}


def test_the_records_left_behind_get_back_only_an_id_wholly_theirs(engine: Engine) -> None:
    """The customer's own id goes with the record split off; of the retired ids, Z
    stands for a record on each side and X for one left behind only: X is theirs."""
    with engine.begin() as conn:
        conn.execute(insert(customers), [
            {"source_system": "crm", "source_record_id": r, "customer_id": "A"}
            for r in ("a1", "z1", "x1")
        ])  # fmt: skip
        conn.execute(insert(identity_changes), [
            {"kind": "new", "customer_id": "A", "others": [], "records": ["crm:a1"],
             "evidence": []},
            {"kind": "new", "customer_id": "Z", "others": [], "records": ["crm:z1", "crm:a1"],
             "evidence": []},
            {"kind": "new", "customer_id": "X", "others": [], "records": ["crm:x1"],
             "evidence": []},
        ])  # fmt: skip
        conn.execute(insert(customer_aliases), [
            {"alias": "Z", "customer_id": "A"}, {"alias": "X", "customer_id": "A"}
        ])  # fmt: skip
    split = unmerge(engine, "A", ["crm:a1"], ANALYST)
    assert (split.new_customer_id, split.customer_id) == ("A", "X")
    assert aliases_of(engine) == {"Z": "X"}  # Z's records are not all on either side
    _consistent(engine)
