"""Issue 12, third slice: evidence a till record and a CRM record share beyond name and
postcode (a married surname in the mailbox, names swapped and changed), and the homes
where a second mailbox tells two namesakes apart."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from storelens.cdp.identity import IdentityModel
from storelens.cdp.identity_settings import SWAP_RULES, mailbox_holds_surname, swapped
from storelens.cdp.matching_keys import (
    add_match_keys,
    clearly_different,
    household_conflict,
)
from storelens.cdp.namesakes import home_key, namesake_homes


def _pair_sql(condition: str, left: dict[str, object], right: dict[str, object]) -> bool:
    """Evaluate a comparison level's SQL on one pair, in DuckDB as Splink runs it."""
    columns = {f"{k}_l": [v] for k, v in left.items()} | {f"{k}_r": [v] for k, v in right.items()}
    con = duckdb.connect()
    con.register("pair", pd.DataFrame(columns))
    row = con.execute(f"SELECT ({condition}) AS hit FROM pair").fetchone()
    assert row is not None
    return bool(row[0])


def _sides(first: str | None, last: str | None, email: str | None = None) -> dict[str, object]:
    keyed = add_match_keys(
        pd.DataFrame({"first_name": [first], "last_name": [last], "email": [email]})
    )
    row = keyed.iloc[0]
    return {
        "first_name": row["first_name"],
        "last_key": row["last_key"],
        "email_key": row["email_key"],
        "first_forms": row["first_forms"],
    }


@pytest.mark.parametrize(
    ("named", "mailed", "expected"),
    [
        (("emma", "begum"), ("emma", "mitchell", "emmabegum@hotmail.co.uk"), True),
        (("sophie", "o connor"), ("sophie", "allen", "sophie.oconnor@gmail.com"), True),
        (("emma", "begum"), ("emma", "mitchell", "emma.mitchell@hotmail.co.uk"), False),
        (("ana", "li"), ("ana", "young", "alice.young@aol.com"), False),  # too short to count
        (("emma", None), ("emma", "mitchell", "emmabegum@hotmail.co.uk"), False),
        (("emma", "begum"), ("emma", "mitchell", None), False),
    ],
)
def test_a_surname_counts_only_inside_the_other_records_mailbox_name(
    named: tuple[str, str | None], mailed: tuple[str, str, str | None], expected: bool
) -> None:
    left, right = _sides(*named), _sides(*mailed)
    assert _pair_sql(mailbox_holds_surname("l", "r"), left, right) is expected
    assert not _pair_sql(mailbox_holds_surname("r", "l"), left, right)  # the left has no mail


def test_a_domain_holding_the_surname_is_not_a_mailbox_name() -> None:
    left = _sides("anna", "weber")
    right = _sides("anna", "klein", "anna.klein@weber.de")
    assert not _pair_sql(mailbox_holds_surname("l", "r"), left, right)


def test_names_swapped_and_changed_are_one_level_a_household_is_not() -> None:
    level = f"{swapped('l', 'r')} OR {swapped('r', 'l')}"
    typo = (_sides("moore", "anthoyn"), _sides("anthony", "moore"))
    assert _pair_sql(level, *typo)
    assert _pair_sql(level, typo[1], typo[0])  # either side may be the swapped one
    nickname = (_sides("dan", "bell"), _sides("bell", "daniel"))
    assert _pair_sql(level, *nickname)
    sibling = (_sides("bell", "james"), _sides("matthew", "bell"))
    assert not _pair_sql(level, *sibling)
    unswapped = (_sides("anthony", "moore"), _sides("anthony", "moore"))
    assert not _pair_sql(level, *unswapped)


def test_a_suffix_is_split_off_a_swapped_first_name_slot() -> None:
    frame = pd.DataFrame(
        {
            "first_name": ["baker jr", "joshua", "mary ann", None],
            "last_name": ["joshua", "baker", "smith", "jones sr"],
        }
    )
    keyed = add_match_keys(frame)
    assert list(keyed["first_name"])[:3] == ["baker", "joshua", "mary ann"]
    assert list(keyed["suffix"]) == ["j", None, None, "s"]
    assert keyed["name_key"][0] == keyed["name_key"][1] == "baker joshua"
    assert keyed["name_key"][3] == "jones"


def test_the_swap_rules_are_used_only_while_few_names_cross() -> None:
    keyed = add_match_keys(
        pd.DataFrame(
            {
                "first_name": ["moore", "anthony", "anna", "carl"],
                "last_name": ["anthoyn", "moore", "weber", "kraus"],
                "postcode": ["A1", "A1", "B2", "C3"],
            }
        )
    )
    model = IdentityModel()
    assert model.swap_rules(keyed) == list(SWAP_RULES)  # 1 crossed pair for 4 records
    crowded = add_match_keys(
        pd.DataFrame(
            {"first_name": ["james"] * 4 + ["anna"] * 4, "last_name": ["x"] * 4 + ["james"] * 4,
             "postcode": ["A1"] * 8}
        )
    )  # fmt: skip
    assert model.swap_rules(crowded) == []  # 16 crossed pairs for 8 records
    assert IdentityModel(typo_pairs_per_record=2.0).swap_rules(crowded) == list(SWAP_RULES)
    assert model.swap_rules(keyed.drop(columns=["postcode"])) == []


def test_a_home_shows_namesakes_by_a_suffix_not_by_two_birth_dates() -> None:
    def record(dob: str | None = None, suffix: str | None = None, pc: str = "77085") -> dict:
        return {"name_key": "lee tyler", "postcode": pc, "dob": dob, "suffix": suffix}

    assert namesake_homes([record(suffix="s"), record()]) == {("lee tyler", "77085")}
    far = [record("1962-03-01"), record("1990-09-03")]  # or one person, one date wrong
    assert namesake_homes(far) == frozenset()
    assert namesake_homes([record(suffix="j", pc="77086"), record()]) == {("lee tyler", "77086")}
    assert namesake_homes([{"name_key": "lee tyler", "postcode": None, "suffix": "j"}]) == set()
    assert home_key({"name_key": "lee tyler", "postcode": None}) is None


def test_two_mailboxes_tell_namesakes_apart_only_at_a_home_that_holds_two() -> None:
    a = {"first_name": "tyler", "last_name": "lee", "email_key": "tyler.lee124@aol.com"}
    b = {"first_name": "tyler", "last_name": "lee", "email_key": "tyler_lee@icloud.com"}
    assert not clearly_different(a, b)  # people keep several mailboxes
    assert clearly_different(a, b, namesake_home=True)
    assert not clearly_different(a, {**b, "email_key": a["email_key"]}, namesake_home=True)
    assert not clearly_different(a, {**b, "email_key": None}, namesake_home=True)


def _home(records: dict[str, tuple[str, str | None, str | None]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unique_id": list(records),
            "first_name": ["tyler"] * len(records),
            "last_name": [last for last, _, _ in records.values()],
            "postcode": ["77085"] * len(records),
            "email": [email for _, email, _ in records.values()],
            "dob": [dob for _, _, dob in records.values()],
        }
    )


def test_the_veto_reads_the_namesakes_from_the_records_themselves() -> None:
    pair = {
        "crm:1": ("lee", "tyler.lee124@aol.com", "1990-09-03"),
        "web:1": ("lee", "tyler_lee@icloud.com", None),
    }
    assert not household_conflict(_home(pair), enabled=True)("crm:1", "web:1")
    with_suffix = {**pair, "pos:1": ("lee sr", None, None)}
    assert household_conflict(_home(with_suffix), enabled=True)("crm:1", "web:1")
    with_father = {**pair, "crm:2": ("lee", None, "1962-03-01")}  # a date alone: no
    assert not household_conflict(_home(with_father), enabled=True)("crm:1", "web:1")
    moved = _home(with_suffix).assign(postcode=["77085", "90001", "77085"])
    assert not household_conflict(moved, enabled=True)("crm:1", "web:1")


def test_a_jr_card_left_hanging_by_a_torn_record_is_settled_by_its_suffix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from storelens.cdp import clusters
    from storelens.cdp.clusters import ScoredPair, cluster_records

    # the father's till card and web account share his mobile with the son's till card
    frame = pd.DataFrame(
        {
            "unique_id": ["pos:f", "pos:j", "web:f", "crm:f", "crm:j"],
            "first_name": ["christopher"] * 5,
            "last_name": ["smith", "smith jr", "smith sr", "smith", "smith"],
            "postcode": [None, "90096", "90096", "90096", "90096"],
            "dob": [None, None, None, "1970-07-15", "1997-09-24"],
            "email": [None, None, "nancy@x.com", "nancy@x.com", "chris@y.com"],
        }
    )
    veto = household_conflict(frame, enabled=True)
    pairs = [
        ScoredPair("pos:f", "pos:j", 1.0, "deterministic"),
        ScoredPair("pos:f", "web:f", 1.0, "deterministic"),
        ScoredPair("crm:f", "web:f", 1.0, "deterministic"),
        ScoredPair("crm:f", "pos:j", 0.99, "probabilistic"),
        ScoredPair("crm:j", "pos:j", 0.99, "probabilistic"),
    ]

    def customer_of_jr_card() -> list[str]:
        groups = cluster_records(list(frame["unique_id"]), pairs, conflict=veto, settle=veto.settle)
        return next(c.records for c in groups if "pos:j" in c.records)

    assert customer_of_jr_card() == ["crm:j", "pos:j"]
    monkeypatch.setattr(clusters, "TORN_ROUNDS", 1)  # one pass: record order decides
    assert customer_of_jr_card() == ["crm:f", "pos:j"]
