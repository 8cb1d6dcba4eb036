"""Issue 12, second slice: same-name parent and child, records torn between two people,
the veto decided from the data, and till records whose surname was mistyped."""

from __future__ import annotations

import re
from collections.abc import Callable

import pandas as pd
import pytest

from storelens.cdp.clusters import ScoredPair, chain_cuts, cluster_records
from storelens.cdp.identity import IdentityModel
from storelens.cdp.identity_settings import NARROW_RULES, TYPO_RULE
from storelens.cdp.matching_keys import (
    add_match_keys,
    clearly_different,
    fold_name,
    household_conflict,
    shows_households,
)


def _keyed(**columns: list[str | None]) -> dict[str, dict[str, object]]:
    frame = add_match_keys(pd.DataFrame({"unique_id": ["a", "b"], **columns}))
    return {str(k): v for k, v in frame.set_index("unique_id").to_dict("index").items()}


def test_sr_and_jr_with_differing_suffix_or_mailbox_are_kept_apart() -> None:
    rows = _keyed(first_name=["john", "john"], last_name=["smith jr", "smith sr"])
    assert clearly_different(rows["a"], rows["b"])  # Jr and Sr
    rows = _keyed(
        first_name=["john", "john"],
        last_name=["smith jr", "smith"],
        email=["jsmith@aol.com", "john.smith@gmail.com"],
    )
    assert clearly_different(rows["a"], rows["b"])  # a suffix and another mailbox
    rows = _keyed(
        first_name=["john", "john"],
        last_name=["smith jr", "smith"],
        email=["J.Smith+shop@googlemail.com", "jsmith@gmail.com"],
    )
    assert not clearly_different(rows["a"], rows["b"])  # one mailbox, spelt two ways
    rows = _keyed(
        first_name=["john", "john"],
        last_name=["smith", "smith"],
        email=["jsmith@aol.com", "john.smith@gmail.com"],
    )
    assert not clearly_different(rows["a"], rows["b"])  # no suffix: two accounts of one


def _sr_jr(
    probability_sr: float, probability_jr: float
) -> tuple[list[ScoredPair], Callable[[str, str], bool]]:
    pairs = [
        ScoredPair("pos:1", "crm:sr", probability_sr, "probabilistic"),
        ScoredPair("pos:1", "crm:jr", probability_jr, "probabilistic"),
    ]
    apart = frozenset(("crm:sr", "crm:jr"))
    return pairs, lambda a, b: frozenset((a, b)) == apart


def test_a_till_record_torn_between_father_and_son_is_left_to_itself() -> None:
    # One name, one postcode: the till record matches both CRM records equally well.
    pairs, conflict = _sr_jr(0.99, 0.99)
    records = ["crm:jr", "crm:sr", "pos:1"]
    clusters = cluster_records(records, pairs, conflict=conflict)
    assert sorted(c.records for c in clusters) == [["crm:jr"], ["crm:sr"], ["pos:1"]]
    torn = next(c for c in clusters if c.records == ["pos:1"])
    assert sorted(torn.refused, key=lambda p: p.b) == sorted(pairs, key=lambda p: p.b)
    cuts = chain_cuts(clusters, {"crm:jr": "C1", "crm:sr": "C2", "pos:1": "C3"})
    assert [(c.customer_id, c.others, c.records) for c in cuts] == [
        ("C3", ("C1", "C2"), ("crm:jr", "crm:sr"))
    ]  # the choice not made, stored as evidence
    guessed = cluster_records(records, pairs, conflict=conflict, ambiguity_margin=None)
    assert sorted(len(c.records) for c in guessed) == [1, 2]


def test_a_decisive_link_still_joins_the_stronger_side() -> None:
    pairs, conflict = _sr_jr(0.9999, 0.95)  # e.g. the phone agrees with the father's
    clusters = cluster_records(["crm:jr", "crm:sr", "pos:1"], pairs, conflict=conflict)
    assert sorted(c.records for c in clusters) == [["crm:jr"], ["crm:sr", "pos:1"]]
    with pytest.raises(ValueError, match="not in the input"):
        cluster_records(["crm:sr"], pairs, conflict=conflict)


def test_umlaut_spelling_at_the_start_of_a_name_is_folded() -> None:
    assert fold_name("oeztuerk") == fold_name("ozturk") == "ozturk"
    assert fold_name("aeberhard") == "aberhard"
    assert fold_name("joe") == fold_name("jo")  # as before: after a consonant
    assert fold_name("louise") == "louise"  # a vowel before it: no umlaut
    assert fold_name(None) is None


def test_the_veto_applies_where_the_records_hold_households() -> None:
    homes = pd.DataFrame(
        {
            "unique_id": ["crm:1", "crm:2", "crm:3", "crm:4"],
            "source_dataset": ["crm"] * 4,
            "first_name": ["james", "sarah", "emily", "grace"],
            "last_name": ["smith", "smith", "jones", "jones"],
            "postcode": ["CF101AA", "CF101AA", "CF102BB", "CF102BB"],
        }
    )
    assert shows_households(add_match_keys(homes))
    assert household_conflict(homes).enabled
    assert household_conflict(homes)("crm:3", "crm:4")  # twins kept apart
    # FEBRL-like: one person per surname and postcode in each file; the duplicate in the
    # other file had its first name replaced. Not a household: the veto stays off.
    files = homes.assign(
        source_dataset=["a", "b", "a", "b"],
        first_name=["james", "sarah", "emily", "grace"],
        last_name=["smith", "smith", "jones", "jones"],
    )
    assert not shows_households(add_match_keys(files))
    assert not household_conflict(files)("crm:3", "crm:4")
    assert household_conflict(files, enabled=True)("crm:3", "crm:4")
    assert shows_households(add_match_keys(homes.iloc[:0]))  # nothing to judge: safe side
    assert shows_households(homes[["unique_id", "first_name"]])


def _reached(rule: tuple[str, ...], a: dict[str, object], b: dict[str, object]) -> bool:
    """Whether an exact blocking rule compares two records (``substr(col,1,n)`` parts)."""

    def value(record: dict[str, object], part: str) -> str | None:
        match = re.fullmatch(r"substr\((\w+),1,(\d)\)", part)
        raw = record.get(match.group(1) if match else part)
        if not isinstance(raw, str):
            return None
        return raw[: int(match.group(2))] if match else raw

    return all(value(a, p) is not None and value(a, p) == value(b, p) for p in rule)


def test_a_till_record_with_a_mistyped_surname_meets_its_crm_record() -> None:
    # POS: first name, surname (mistyped), postcode; CRM: the person's own spelling.
    rows = _keyed(
        first_name=["bjoern", "bjorn"], last_name=["wofl", "wolf"], postcode=["10268", "10268"]
    )
    rules = [*NARROW_RULES, TYPO_RULE]
    assert [r for r in rules if _reached(r, rows["a"], rows["b"])] == [TYPO_RULE]
    neighbour = _keyed(
        first_name=["bjoern", "karl"], last_name=["wofl", "wolf"], postcode=["10268", "10268"]
    )
    assert not [r for r in rules if _reached(r, neighbour["a"], neighbour["b"])]


def test_the_typo_rule_is_used_only_while_postcodes_are_not_crowded() -> None:
    sparse = pd.DataFrame(
        {"first_name": ["anna", "alex", "ben", "carl"], "postcode": ["A1", "A1", "B2", "C3"]}
    )
    model = IdentityModel()
    assert TYPO_RULE in model.prediction_rules(sparse)  # 1 pair for 4 records
    crowded = pd.DataFrame({"first_name": ["anna"] * 6, "postcode": ["A1"] * 6})
    assert model.typo_rules(crowded) == []  # 15 pairs for 6 records
    assert IdentityModel(typo_pairs_per_record=3.0).typo_rules(crowded) == [TYPO_RULE]
    assert model.typo_rules(sparse.drop(columns=["postcode"])) == []


def test_a_torn_till_record_marked_jr_joins_the_younger_namesake() -> None:
    frame = pd.DataFrame(
        {
            "unique_id": ["crm:sr", "crm:jr", "pos:1", "pos:2"],
            "first_name": ["john"] * 4,
            "last_name": ["smith", "smith", "smith jr", "smith"],
            "dob": ["1961-05-02", "1990-08-14", None, None],
            "postcode": ["CF101AA"] * 4,
        }
    )
    veto = household_conflict(frame, enabled=True)
    assert veto("crm:sr", "crm:jr")  # birth dates 29 years apart
    pairs = [
        ScoredPair(p, c, 0.99, "probabilistic")
        for p in ("pos:1", "pos:2")
        for c in ("crm:sr", "crm:jr")
    ]
    clusters = cluster_records(list(frame["unique_id"]), pairs, conflict=veto, settle=veto.settle)
    assert sorted(c.records for c in clusters) == [["crm:jr", "pos:1"], ["crm:sr"], ["pos:2"]]
    # the record that says nothing stays alone, with both links as evidence
    alone = next(c for c in clusters if c.records == ["pos:2"])
    assert {(p.a, p.b) for p in alone.refused} == {("pos:2", "crm:sr"), ("pos:2", "crm:jr")}
    assert veto.settle("pos:2", [["crm:sr"], ["crm:jr"]]) is None
    assert veto.settle("pos:1", [["crm:sr"], ["crm:jr"]]) == 1
    assert veto.settle("pos:1", [["crm:sr"]]) is None  # one side: nothing to choose


def test_two_cards_and_two_mailboxes_are_two_people_even_where_the_veto_is_off() -> None:
    """The demo's 600 CRM members (all different people) became 498 customers: four
    "Paula Weber"s with four cards and four e-mails were merged on the name alone."""
    frame = add_match_keys(
        pd.DataFrame(
            {
                "unique_id": ["crm:1", "crm:2", "crm:3", "crm:4"],
                "first_name": ["paula"] * 4,
                "last_name": ["weber"] * 4,
                "loyalty_id": ["L100001", "L200002", "L300003", "L100001"],
                "email": [
                    "pw1@example.com",
                    "pw2@example.com",
                    "pw1@example.com",
                    "pw9@example.com",
                ],
            }
        )
    )
    veto = household_conflict(frame, enabled=False)
    assert veto("crm:1", "crm:2")  # two cards, two mailboxes
    assert not veto("crm:1", "crm:3")  # a second card, the same mailbox
    assert not veto("crm:1", "crm:4")  # one card, a second mailbox


@pytest.mark.parametrize(
    ("a", "b"), [("LC-0012345", "lc0012345"), ("0012345", "12345"), ("1234 5678", "12345678")]
)
def test_one_card_spelt_two_ways_is_not_two_cards(a: str, b: str) -> None:
    """Loyalty ids are only trimmed: one card written by two systems counted as two,
    and with a work and a private mailbox the pair was refused (a review)."""
    frame = add_match_keys(
        pd.DataFrame(
            {
                "unique_id": ["pos:1", "crm:1"],
                "first_name": ["paula"] * 2,
                "last_name": ["weber"] * 2,
                "loyalty_id": [a, b],
                "email": ["paula@work.example", "paula@home.example"],
            }
        )
    )
    assert not household_conflict(frame, enabled=False)("pos:1", "crm:1")
