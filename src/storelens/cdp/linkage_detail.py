"""Where identity resolution succeeds and fails, not just how often.

One pairwise F1 hides what a retailer needs to know: that till records never reach
the CRM (recall per source pair), that nicknames or married names are missed (recall
per pattern a record received), and that twins or a couple at one address were made
one customer (false-merge rate per hard-negative relation). This reads a truth file
(:meth:`storelens.cdp.retail_synthetic.RetailData.truth_json`) and a record -> customer
assignment and reports all three. Pure: mappings in, a dict out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

from storelens.cdp.linkage_eval import clusters_to_pairs, score_pairs

__all__ = ["TELLING_FIELDS", "TruthFile", "detail_report", "read_truth", "told_apart_report"]

TruthFile = dict[str, Any]
TELLING_FIELDS = ("dob", "suffix", "email_key")
"""What can tell a same-name parent and child apart: birth date, suffix, e-mail."""


def read_truth(
    data: Mapping[str, Any],
) -> tuple[dict[str, str], dict[str, list[str]], list[tuple[str, str, str]]]:
    """``person_of``, ``patterns_of`` and hard negatives from a parsed truth file,
    or ``ValueError`` naming what is malformed."""
    records = data.get("records")
    if not isinstance(records, dict) or not records:
        raise ValueError("truth file has no 'records' object")
    person_of: dict[str, str] = {}
    patterns_of: dict[str, list[str]] = {}
    for key, entry in records.items():
        if not isinstance(entry, dict) or "person" not in entry:
            raise ValueError(f"truth record {key!r} has no 'person'")
        person_of[str(key)] = str(entry["person"])
        patterns_of[str(key)] = [str(p) for p in entry.get("patterns", [])]
    negatives = []
    for item in data.get("hard_negatives", []):
        if not isinstance(item, Sequence) or len(item) != 3:
            raise ValueError(f"hard negative {item!r} is not [person_a, person_b, relation]")
        negatives.append((str(item[0]), str(item[1]), str(item[2])))
    return person_of, patterns_of, negatives


def _source(key: str) -> str:
    return key.split(":", 1)[0]


def _rate(hit: int, total: int) -> dict[str, Any]:
    return {"pairs": total, "hit": hit, "rate": round(hit / total, 4) if total else None}


def detail_report(
    cluster_of: Mapping[str, str],
    person_of: Mapping[str, str],
    patterns_of: Mapping[str, Iterable[str]] | None = None,
    hard_negatives: Iterable[tuple[str, str, str]] = (),
) -> dict[str, Any]:
    """Pairwise scores, recall per source pair and per pattern, false merges per relation.

    Only records in both mappings count. A true pair counts towards a pattern when
    either record received it. A hard-negative pair of people is *merged* when any
    record of one shares a customer with any record of the other.
    """
    keys = [k for k in person_of if k in cluster_of]
    predicted = clusters_to_pairs({k: cluster_of[k] for k in keys})
    by_person: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        by_person[person_of[k]].append(k)
    truth = {
        (a, b) if a < b else (b, a) for ks in by_person.values() for a, b in combinations(ks, 2)
    }
    scores = score_pairs(predicted, truth)
    per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    per_pattern: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    patterns = {k: set(v) for k, v in (patterns_of or {}).items()}
    for a, b in truth:
        found = int(cluster_of[a] == cluster_of[b])
        pair = "↔".join(sorted((_source(a), _source(b))))
        per_source[pair][0] += found
        per_source[pair][1] += 1
        for tag in patterns.get(a, set()) | patterns.get(b, set()):
            per_pattern[tag][0] += found
            per_pattern[tag][1] += 1
    merged: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for pa, pb, relation in hard_negatives:
        if pa not in by_person or pb not in by_person:
            continue
        ca = {cluster_of[k] for k in by_person[pa]}
        hit = int(any(cluster_of[k] in ca for k in by_person[pb]))
        merged[relation][0] += hit
        merged[relation][1] += 1
    return {
        "records": len(keys),
        "people": len(by_person),
        "customers": len({cluster_of[k] for k in keys}),
        "precision": round(scores.precision, 4),
        "recall": round(scores.recall, 4),
        "f1": round(scores.f1, 4),
        "tp_fp_fn": [scores.true_positives, scores.false_positives, scores.false_negatives],
        "recall_by_source_pair": {k: _rate(*v) for k, v in sorted(per_source.items())},
        "recall_by_pattern": {k: _rate(*v) for k, v in sorted(per_pattern.items())},
        "false_merge_by_relation": {k: _rate(*v) for k, v in sorted(merged.items())},
    }


def _told_apart(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return any(a.get(f) and b.get(f) and a[f] != b[f] for f in TELLING_FIELDS)


def told_apart_report(
    cluster_of: Mapping[str, str],
    person_of: Mapping[str, str],
    values_of: Mapping[str, Mapping[str, Any]],
    hard_negatives: Iterable[tuple[str, str, str]],
    relation: str = "parent_child",
) -> dict[str, Any]:
    """False merges of one relation by record pair, split by whether the two records
    hold anything that tells the people apart (:data:`TELLING_FIELDS`, both present and
    different). A father's and son's till records with one name, one postcode and the
    parent's phone hold nothing that does; their CRM records with two birth dates do.

    Returns ``told_apart`` and ``nothing_tells_apart``, each with the record ``pairs``,
    how many were merged (``hit``) and the ``rate``.
    """
    by_person: dict[str, list[str]] = defaultdict(list)
    for k, p in person_of.items():
        if k in cluster_of:
            by_person[p].append(k)
    counts = {"told_apart": [0, 0], "nothing_tells_apart": [0, 0]}
    for pa, pb, rel in hard_negatives:
        if rel != relation:
            continue
        for a in by_person.get(pa, []):
            for b in by_person.get(pb, []):
                kind = (
                    "told_apart"
                    if _told_apart(values_of.get(a, {}), values_of.get(b, {}))
                    else "nothing_tells_apart"
                )
                counts[kind][0] += int(cluster_of[a] == cluster_of[b])
                counts[kind][1] += 1
    return {k: _rate(*v) for k, v in counts.items()}
