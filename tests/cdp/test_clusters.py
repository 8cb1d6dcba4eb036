"""Clustering with analyst decisions, stable ids, merges, splits and incremental joins."""

from __future__ import annotations

import itertools

import pytest

from storelens.cdp.clusters import (
    ScoredPair,
    assign_ids,
    attach_new_records,
    cluster_records,
)


def minting() -> object:
    counter = itertools.count(1)
    return lambda: f"N{next(counter)}"


def p(a: str, b: str, prob: float = 0.99, rule: str = "probabilistic") -> ScoredPair:
    return ScoredPair(a, b, prob, rule)


def test_components_and_their_evidence() -> None:
    clusters = cluster_records(["a", "b", "c", "d"], [p("a", "b"), p("b", "c", 0.95)])
    assert [c.records for c in clusters] == [["a", "b", "c"], ["d"]]
    assert {(x.a, x.b) for x in clusters[0].links} == {("a", "b"), ("b", "c")}
    assert clusters[0].probability_of("c") == 0.95
    assert clusters[1].probability_of("d") is None


def test_separated_records_never_share_a_cluster() -> None:
    # a-b strong, b-c weaker; the analyst said a and c are different people.
    clusters = cluster_records(
        ["a", "b", "c"], [p("a", "b", 0.99), p("b", "c", 0.95)], separated=[("a", "c")]
    )
    assert [c.records for c in clusters] == [["a", "b"], ["c"]]
    # The strongest link wins the contested record regardless of the order given.
    clusters = cluster_records(
        ["a", "b", "c"], [p("b", "c", 0.999), p("a", "b", 0.95)], separated=[("a", "c")]
    )
    assert [c.records for c in clusters] == [["a"], ["b", "c"]]


def test_unknown_records_in_pairs_are_refused() -> None:
    with pytest.raises(ValueError, match="not in the input"):
        cluster_records(["a"], [p("a", "zz")])


def test_first_run_prefers_a_lone_loyalty_id_and_mints_the_rest() -> None:
    clusters = cluster_records(["r1", "r2", "r3"], [p("r1", "r2")])
    result = assign_ids(clusters, {}, loyalty_of={"r1": "L1", "r2": "L1"}, mint=minting())
    assert result.customer_of == {"r1": "L1", "r2": "L1", "r3": "N1"}
    assert sorted(c.kind for c in result.changes) == ["new", "new"]


def test_rerun_keeps_every_id() -> None:
    previous = {"r1": "C1", "r2": "C1", "r3": "C2"}
    clusters = cluster_records(["r1", "r2", "r3"], [p("r1", "r2")])
    result = assign_ids(clusters, previous, mint=minting())
    assert result.customer_of == previous
    assert result.changes == [] and result.aliases == {}


def test_merge_keeps_the_bigger_id_and_aliases_the_other() -> None:
    previous = {"r1": "C1", "r2": "C1", "r3": "C2"}
    clusters = cluster_records(["r1", "r2", "r3"], [p("r1", "r2"), p("r2", "r3", 0.97)])
    result = assign_ids(clusters, previous, mint=minting())
    assert set(result.customer_of.values()) == {"C1"}
    assert result.aliases == {"C2": "C1"}
    (merge,) = result.changes
    assert (merge.kind, merge.customer_id, merge.others, merge.records) == (
        "merge",
        "C1",
        ("C2",),
        ("r3",),
    )
    assert [(e.a, e.b) for e in merge.evidence] == [("r2", "r3")]


def test_split_keeps_the_id_with_the_larger_part() -> None:
    previous = {"r1": "C1", "r2": "C1", "r3": "C1"}
    clusters = cluster_records(["r1", "r2", "r3"], [p("r1", "r2")])
    result = assign_ids(clusters, previous, mint=minting())
    assert result.customer_of == {"r1": "C1", "r2": "C1", "r3": "N1"}
    made, split = sorted(result.changes, key=lambda c: c.kind)
    assert (split.kind, split.customer_id, split.others, split.records) == (
        "split",
        "C1",
        ("N1",),
        ("r3",),
    )
    # the id minted for the part split off records what it was made for (an unmerge reads it)
    assert (made.kind, made.customer_id, made.records) == ("new", "N1", ("r3",))


def test_retired_and_used_ids_are_never_handed_out_again() -> None:
    ids = iter(["C9", "C2", "N7"])
    clusters = cluster_records(["r1", "r2"], [])
    result = assign_ids(clusters, {"r1": "C2"}, retired=["C9"], mint=lambda: next(ids))
    assert result.customer_of == {"r1": "C2", "r2": "N7"}


def test_incremental_joins_the_best_match_and_only_suggests_merges() -> None:
    existing = {"e1": "C1", "e2": "C2"}
    pairs = [p("n1", "e1", 0.99), p("n1", "e2", 0.93), p("n2", "n3", 0.98)]
    result = attach_new_records(["n1", "n2", "n3"], pairs, existing, mint=minting())
    assert result.customer_of == {"n1": "C1", "n2": "N1", "n3": "N1"}
    kinds = sorted((c.kind, c.customer_id, c.others) for c in result.changes)
    assert kinds == [("merge_suggested", "C1", ("C2",)), ("new", "N1", ())]


def test_incremental_respects_separations_and_refuses_resolved_records() -> None:
    existing = {"e1": "C1"}
    result = attach_new_records(
        ["n1"], [p("n1", "e1")], existing, separated=[("n1", "e1")], mint=minting()
    )
    assert result.customer_of == {"n1": "N1"}
    with pytest.raises(ValueError, match="already resolved"):
        attach_new_records(["e1"], [], existing)
    with pytest.raises(ValueError, match="neither new nor resolved"):
        attach_new_records(["n1"], [p("n1", "ghost")], existing)
