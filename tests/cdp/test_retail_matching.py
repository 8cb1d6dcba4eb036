"""Retail matching rules: look-alikes kept apart, sparse till records linked, chains cut,
and the generator's truth deterministic per seed."""

from __future__ import annotations

import pandas as pd
import pytest

from storelens.cdp.clusters import ScoredPair, chain_cuts, cluster_records
from storelens.cdp.identity import deterministic_pairs
from storelens.cdp.linkage_detail import detail_report, told_apart_report
from storelens.cdp.matching_keys import (
    add_match_keys,
    canonical_email,
    clearly_different,
    surname_words,
)
from storelens.cdp.retail_synthetic import generate_retail


def test_twins_are_clearly_different_people() -> None:
    twin_a = {"first_name": "emily", "last_name": "jones", "dob": "2001-04-03"}
    twin_b = {"first_name": "grace", "last_name": "jones", "dob": "2001-04-03"}
    assert clearly_different(twin_a, twin_b)
    nickname = {"first_name": "bill", "last_name": "jones", "dob": "2001-03-04"}  # dob swap
    assert not clearly_different({**twin_a, "first_name": "william"}, nickname)
    swapped = {"first_name": "jones", "last_name": "emily", "dob": "2001-04-03"}
    assert not clearly_different(twin_a, swapped)
    senior = {"first_name": "emily", "last_name": "jones", "dob": "1971-09-20"}
    assert clearly_different(twin_a, senior)
    assert not clearly_different({**twin_a, "loyalty_id": "L1"}, {**twin_b, "loyalty_id": "L1"})


def test_shared_household_email_does_not_merge_the_couple() -> None:
    frame = pd.DataFrame(
        {
            "unique_id": ["web:1", "crm:1"],
            "first_name": ["james", "sarah"],
            "last_name": ["smith", "smith"],
            "email": ["Smiths+shop@gmail.com", "s.miths@googlemail.com"],
        }
    )
    assert deterministic_pairs(frame) == {("crm:1", "web:1")}  # one mailbox …
    keyed = add_match_keys(frame)
    rows = keyed.set_index("unique_id").to_dict("index")
    assert clearly_different(rows["web:1"], rows["crm:1"])  # … but two people
    assert canonical_email("S.Miths+x@googlemail.com") == "smiths@gmail.com"


def test_match_keys_sort_names_fold_umlauts_and_split_suffixes() -> None:
    frame = pd.DataFrame(
        {
            "unique_id": ["a", "b", "c"],
            "first_name": ["jorg", "mueller", "john"],
            "last_name": ["mueller", "jorg", "smith jr"],
        }
    )
    keyed = add_match_keys(frame)
    assert list(keyed["name_key"]) == ["jorg muller", "jorg muller", "john smith"]
    assert list(keyed["suffix"]) == [None, None, "j"]
    assert list(keyed["last_name"]) == ["mueller", "jorg", "smith"]


def test_chained_cluster_is_split_at_its_weakest_link() -> None:
    # twin A - POS record (shared phone, no dob) - twin B: the weaker link is refused.
    pairs = [
        ScoredPair("pos:1", "crm:a", 0.99, "probabilistic"),
        ScoredPair("pos:1", "crm:b", 0.95, "probabilistic"),
    ]
    twins = {frozenset(("crm:a", "crm:b"))}
    clusters = cluster_records(
        ["crm:a", "crm:b", "pos:1"], pairs, conflict=lambda a, b: frozenset((a, b)) in twins
    )
    assert sorted(c.records for c in clusters) == [["crm:a", "pos:1"], ["crm:b"]]
    joined = next(c for c in clusters if "pos:1" in c.records)
    assert joined.refused == [pairs[1]]  # the cut, kept as evidence
    plain = cluster_records(["crm:a", "crm:b", "pos:1"], pairs)
    assert [c.records for c in plain] == [["crm:a", "crm:b", "pos:1"]]


def test_generator_is_deterministic_and_tags_its_truth() -> None:
    first, again = generate_retail(300, seed=3), generate_retail(300, seed=3)
    assert first.sources == again.sources
    assert first.hard_negatives == again.hard_negatives
    assert generate_retail(300, seed=4).sources != first.sources
    assert first.people == 300
    assert set(first.person_of) == set(first.patterns_of)
    assert set(first.sources["pos"][0]) == {
        "source_record_id", "loyalty_id", "first_name", "last_name", "phone", "postcode"
    }  # fmt: skip
    relations = {r for _, _, r in first.hard_negatives}
    assert {"household", "parent_child"} <= relations


def test_detail_report_counts_source_pairs_patterns_and_false_merges() -> None:
    person_of = {"pos:1": "P1", "crm:1": "P1", "web:1": "P1", "crm:2": "P2"}
    patterns = {"pos:1": ["nickname"], "crm:1": [], "web:1": [], "crm:2": []}
    cluster_of = {"pos:1": "x", "crm:1": "y", "web:1": "y", "crm:2": "y"}
    report = detail_report(cluster_of, person_of, patterns, [("P1", "P2", "twin")])
    assert report["tp_fp_fn"] == [1, 2, 2]
    assert report["recall_by_source_pair"]["crm↔pos"] == {"pairs": 1, "hit": 0, "rate": 0.0}
    assert report["recall_by_source_pair"]["crm↔web"] == {"pairs": 1, "hit": 1, "rate": 1.0}
    assert report["recall_by_pattern"]["nickname"] == {"pairs": 2, "hit": 0, "rate": 0.0}
    assert report["false_merge_by_relation"]["twin"] == {"pairs": 1, "hit": 1, "rate": 1.0}


def test_a_swap_is_judged_by_which_word_the_data_holds_as_a_surname() -> None:
    swapped_couple = {"first_name": "garcia", "last_name": "james"}  # james garcia, swapped
    partner = {"first_name": "ryan", "last_name": "garcia"}
    assert clearly_different(swapped_couple, partner, surnames={"garcia"})
    married_swap = {"first_name": "bell", "last_name": "ffion"}  # ffion bell, swapped
    maiden = {"first_name": "ffion", "last_name": "white"}
    assert not clearly_different(married_swap, maiden, surnames={"bell", "white"})
    frame = pd.DataFrame({"first_name": ["ryan", "garcia", "ana"], "last_name": ["garcia"] * 3})
    assert surname_words(frame) == frozenset({"garcia"})


@pytest.mark.parametrize(
    ("a", "b", "different"),
    [
        ("jmaes", "james", False),  # one keying slip (the fold must not hide it)
        ("ribert", "bobby", False),  # a slip in the given name a nickname stands for
        ("gnther", "gunther", False),  # an export that dropped the umlaut
        ("joe", "joseph", False),
        ("emily", "grace", True),
        ("sarah", "susan", True),
        ("james", "john", True),
    ],
)
def test_first_names_one_slip_apart_are_one_name(a: str, b: str, different: bool) -> None:
    row = {"last_name": "klein", "dob": "1990-04-16"}
    assert clearly_different({**row, "first_name": a}, {**row, "first_name": b}) is different


@pytest.mark.parametrize(
    ("dob_a", "dob_b", "different"),
    [
        ("1933-02-12", "1933-01-22", False),  # two digits of one year's month and day
        ("1957-12-04", "1957-04-12", False),  # day and month swapped
        ("1957-12-04", "1975-12-04", False),  # one part (the year) mistyped
        ("1992-04-24", "2005-04-24", True),  # same day, 13 years apart: father and son
        ("1989-04-24", "1990-04-24", False),  # the year one off
        ("1965-10-06", "1995-03-21", True),  # a father and his son
        ("1957-12-04", "1958-11-04", True),  # two parts differ
    ],
)
def test_birth_dates_a_form_could_garble_are_one_date(
    dob_a: str, dob_b: str, different: bool
) -> None:
    row = {"first_name": "niklas", "last_name": "wolf"}
    assert clearly_different({**row, "dob": dob_a}, {**row, "dob": dob_b}) is different


def test_a_card_one_slip_away_is_one_holder_only_with_the_same_birth_date() -> None:
    a = {"first_name": "jack", "last_name": "white", "dob": "1990-07-16", "loyalty_id": "7111367"}
    b = {**a, "first_name": "benjamin", "loyalty_id": "7111467"}
    assert not clearly_different(a, b)  # FEBRL: a replaced first name, a typo in the card
    assert clearly_different(a, {**b, "dob": None})  # sequential cards: a household member
    assert clearly_different(a, {**b, "loyalty_id": "9999999"})
    assert not clearly_different({**a, "dob": None}, {**b, "dob": None, "loyalty_id": "7111367"})


def test_chain_cuts_name_the_refused_links_and_the_other_side() -> None:
    pairs = [
        ScoredPair("pos:1", "crm:a", 0.99, "probabilistic"),
        ScoredPair("pos:1", "crm:b", 0.95, "probabilistic"),
    ]
    twins = {frozenset(("crm:a", "crm:b"))}
    clusters = cluster_records(
        ["crm:a", "crm:b", "pos:1"], pairs, conflict=lambda a, b: frozenset((a, b)) in twins
    )
    cuts = chain_cuts(clusters, {"crm:a": "C1", "pos:1": "C1", "crm:b": "C2"})
    assert [(c.kind, c.customer_id, c.others, c.records) for c in cuts] == [
        ("chain_cut", "C1", ("C2",), ("crm:b",))
    ]
    assert cuts[0].evidence == (pairs[1],)
    assert chain_cuts(cluster_records(["x", "y"], []), {"x": "C1", "y": "C2"}) == []


def test_parent_child_merges_are_split_by_whether_anything_tells_them_apart() -> None:
    person_of = {"crm:sr": "SR", "crm:jr": "JR", "pos:sr": "SR", "pos:jr": "JR"}
    values: dict[str, dict[str, str | None]] = {
        "crm:sr": {"dob": "1965-10-06"},
        "crm:jr": {"dob": "1995-03-21", "suffix": "j"},
        "pos:sr": {},
        "pos:jr": {"suffix": None},
    }
    cluster_of = {"crm:sr": "A", "pos:sr": "A", "pos:jr": "A", "crm:jr": "B"}
    report = told_apart_report(cluster_of, person_of, values, [("SR", "JR", "parent_child")])
    assert report["told_apart"] == {"pairs": 1, "hit": 0, "rate": 0.0}  # the two CRM records
    assert report["nothing_tells_apart"] == {"pairs": 3, "hit": 2, "rate": 0.6667}
    empty = told_apart_report(cluster_of, person_of, values, [("SR", "JR", "twin")])
    assert empty["told_apart"] == {"pairs": 0, "hit": 0, "rate": None}
