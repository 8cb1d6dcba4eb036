"""From scored record pairs to customers whose ids stay put across runs.

Pure logic, no I/O, so the rules people care about are testable in isolation:

- **Clustering honours analyst decisions.** Pairs join records strongest first
  (deterministic rules, then falling match probability), and a join is refused when it
  would put two records an analyst separated into one customer. Unmerges therefore
  survive every re-run without special cases.
- **Ids are inherited, not renumbered.** Each new cluster keeps the resolved id most of
  its records already had; when two clusters claim one id (a split), the larger keeps
  it. A merge keeps the id of the bigger part and records the absorbed ids as aliases.
- **Incremental runs never rewrite history.** A new record joins the existing customer
  it matches best; if it also matches another existing customer, that is reported as a
  suggested merge for review instead of silently merging two people.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from storelens.cdp.torn_records import AMBIGUITY_MARGIN, settled_sides, torn_records

__all__ = [
    "Assignment",
    "Change",
    "Cluster",
    "ScoredPair",
    "assign_ids",
    "attach_new_records",
    "chain_cuts",
    "cluster_records",
    "mint_customer_id",
]

ChangeKind = Literal["new", "merge", "split", "merge_suggested", "unmerge", "chain_cut"]


@dataclass(frozen=True, slots=True)
class ScoredPair:
    """Two record keys the model (or a deterministic rule) says are one person."""

    a: str
    b: str
    probability: float
    rule: str

    def evidence(self) -> dict[str, object]:
        return {
            "a": self.a,
            "b": self.b,
            "probability": round(self.probability, 6),
            "rule": self.rule,
        }


@dataclass(slots=True)
class Cluster:
    """Records that are one person, with the pairs that joined them (the evidence)."""

    records: list[str]
    links: list[ScoredPair] = field(default_factory=list)
    refused: list[ScoredPair] = field(default_factory=list)
    """Links not followed because they would have joined two records that conflict
    (clearly different people): the evidence for where a chain was cut."""

    def probability_of(self, record: str) -> float | None:
        """The strongest link holding ``record`` in its cluster; None for a lone record."""
        best = [p.probability for p in self.links if record in (p.a, p.b)]
        return max(best) if best else None


@dataclass(frozen=True, slots=True)
class Change:
    kind: ChangeKind
    customer_id: str
    others: tuple[str, ...] = ()
    records: tuple[str, ...] = ()
    evidence: tuple[ScoredPair, ...] = ()


@dataclass(slots=True)
class Assignment:
    """Record key -> customer id, plus what changed and which old ids now alias new ones."""

    customer_of: dict[str, str]
    probability_of: dict[str, float | None]
    changes: list[Change]
    aliases: dict[str, str]
    restored: set[str] = field(default_factory=set)  # retired ids live again


def mint_customer_id() -> str:
    """Random, so an id reveals neither sign-up order nor source system."""
    return "C" + secrets.token_hex(6).upper()


def _ordered(pairs: Iterable[ScoredPair]) -> list[ScoredPair]:
    return sorted(pairs, key=lambda p: (-p.probability, p.rule != "deterministic", p.a, p.b))


def cluster_records(
    records: Sequence[str],
    pairs: Iterable[ScoredPair],
    separated: Iterable[tuple[str, str]] = (),
    conflict: Callable[[str, str], bool] | None = None,
    ambiguity_margin: float | None = AMBIGUITY_MARGIN,
    settle: Callable[[str, list[list[str]]], int | None] | None = None,
) -> list[Cluster]:
    """Clusters joined strongest link first, never joining records an analyst separated.

    With ``conflict`` (two record ids -> clearly different people?), a link that would
    put a conflicting pair into one customer is refused and kept as evidence on the
    cluster, so a chain (twin A - shared phone - twin B) is cut at its weakest link
    instead of making one customer: stronger links have already been placed.

    Strongest-first is a guess when a record's links into two conflicting customers are
    about as strong: a father's and son's till records hold one name and one postcode,
    and which CRM record they join is decided by record order. Such a record (its best
    link inside its customer no more than ``ambiguity_margin`` log-odds above its refused
    link) is left a customer of its own, its links kept as the cluster's refused evidence,
    instead of being merged with a coin's chance of being wrong, and the search repeats on
    the result (:data:`TORN_ROUNDS`), since leaving one record alone can tear another.
    ``None`` keeps the guess.
    ``settle`` (record, candidate sides -> the index of the side, or None) lets a torn
    record's own values choose where they can: a ``Jr`` on a till record belongs with the
    younger of two namesakes.
    """
    pair_list = list(pairs)
    groups = _join(records, pair_list, separated, conflict)
    if conflict is None or ambiguity_margin is None:
        return groups
    torn: set[str] = set()
    held: dict[str, list[ScoredPair]] = defaultdict(list)
    for _ in range(TORN_ROUNDS):
        fresh = torn_records(groups, ambiguity_margin) - torn
        if not fresh:
            break
        torn |= fresh
        side_of = settled_sides(groups, pair_list, torn, settle) if settle is not None else {}
        kept, held = [], defaultdict(list)
        for p in pair_list:
            ends = [r for r in (p.a, p.b) if r in torn]
            if not ends:
                kept.append(p)
            elif len(ends) == 1 and (p.b if ends[0] == p.a else p.a) in side_of.get(ends[0], ()):
                kept.append(p)  # the side a tie-break chose
            else:
                for r in ends:
                    held[r].append(p)  # the links not followed: the evidence
        groups = _join(records, kept, separated, conflict)
    return [
        Cluster(c.records, c.links, [*c.refused, *(p for r in c.records for p in held.get(r, []))])
        for c in groups
    ]


TORN_ROUNDS = 3
"""Passes of finding torn records. Leaving one alone can leave a record that leaned on it
torn in turn (a Jr's till card tied to his father's till card by the father's phone:
once the father's card is left alone, the Jr's card is a coin flip between the two
namesakes' CRM records, which its ``Jr`` settles); each pass re-joins without the torn."""


def _join(
    records: Sequence[str],
    pairs: Iterable[ScoredPair],
    separated: Iterable[tuple[str, str]],
    conflict: Callable[[str, str], bool] | None,
) -> list[Cluster]:
    """Union strongest link first, refusing analyst-separated and conflicting joins."""
    root = {r: r for r in records}
    members: dict[str, list[str]] = {r: [r] for r in records}
    links: dict[str, list[ScoredPair]] = defaultdict(list)
    refused: dict[str, list[ScoredPair]] = defaultdict(list)
    apart: dict[str, set[str]] = defaultdict(set)
    for a, b in separated:
        if a in root and b in root:
            apart[a].add(b)
            apart[b].add(a)

    def find(x: str) -> str:
        while root[x] != x:
            root[x] = root[root[x]]
            x = root[x]
        return x

    for pair in _ordered(pairs):
        if pair.a not in root or pair.b not in root:
            raise ValueError(f"pair {pair.a!r}–{pair.b!r} names a record that is not in the input")
        ra, rb = find(pair.a), find(pair.b)
        if ra == rb:
            continue
        if len(members[ra]) < len(members[rb]):
            ra, rb = rb, ra
        if any(apart[m] & set(members[ra]) for m in members[rb]):
            continue  # an analyst said these are different people
        if conflict is not None and any(conflict(m, n) for m in members[ra] for n in members[rb]):
            refused[ra].append(pair)
            continue
        root[rb] = ra
        members[ra].extend(members.pop(rb))
        links[ra].extend([*links.pop(rb, []), pair])
        refused[ra].extend(refused.pop(rb, []))
    return [
        Cluster(sorted(m), links.get(r, []), refused.get(r, [])) for r, m in sorted(members.items())
    ]


def _preferred(
    cluster: Cluster, loyalty_of: Mapping[str, str | None], taken: set[str]
) -> str | None:
    """A lone loyalty id is a friendlier customer id than a minted one, if nobody has it."""
    ids = {loyalty_of.get(r) for r in cluster.records} - {None}
    if len(ids) == 1:
        (only,) = ids
        if only is not None and only not in taken:
            return only
    return None


def assign_ids(
    clusters: Sequence[Cluster],
    previous: Mapping[str, str],
    *,
    loyalty_of: Mapping[str, str | None] | None = None,
    retired: Iterable[str] = (),
    mint: Callable[[], str] = mint_customer_id,
    retired_for: Mapping[str, Iterable[str]] | None = None,
) -> Assignment:
    """Give each cluster an id, keeping the ids its records were resolved to before.

    ``previous`` maps already-resolved records to their customer ids; records missing
    from it are new. ``retired`` ids (old aliases) are never handed out again, except
    to the records they stand for: ``retired_for`` (retired id -> its records, see
    :mod:`~storelens.cdp.id_anchors`) gives a cluster that would get a new id the
    retired id whose records are all in it (records that left a customer they had been
    merged into get their own id back, and with it the rows kept under it; a review
    found them minted a new one while the old still pointed at the other person).
    """
    loyalty_of = loyalty_of or {}
    claims = sorted(
        (
            (-count, old, index)
            for index, cluster in enumerate(clusters)
            for old, count in Counter(previous[r] for r in cluster.records if r in previous).items()
        ),
    )
    chosen: dict[int, str] = {}
    taken = set(retired) | set(previous.values())
    given: set[str] = set()
    for _, old, index in claims:
        if index not in chosen and old not in given:
            chosen[index] = old
            given.add(old)
    changes: list[Change] = []
    restored: set[str] = set()
    owned = {a: frozenset(r) for a, r in (retired_for or {}).items() if r}
    by_record: dict[str, list[str]] = defaultdict(list)  # a run mints thousands of ids
    for alias, records in owned.items():
        by_record[min(records)].append(alias)
    for index, cluster in enumerate(clusters):
        if index not in chosen:
            here = set(cluster.records)
            back = sorted(
                (-len(owned[alias]), alias)
                for record in cluster.records
                for alias in by_record.get(record, ())
                if owned[alias] <= here and alias not in given
            )
            if back:
                chosen[index] = back[0][1]
                given.add(back[0][1])
                restored.add(back[0][1])
                continue
            fresh = _preferred(cluster, loyalty_of, taken | given)
            while fresh is None or fresh in taken or fresh in given:
                fresh = mint()
            chosen[index] = fresh
            given.add(fresh)
    customer_of: dict[str, str] = {}
    probability_of: dict[str, float | None] = {}
    aliases: dict[str, str] = {}
    holders: dict[str, Counter[str]] = defaultdict(Counter)  # old id -> where its records went
    for index, cluster in enumerate(clusters):
        cid = chosen[index]
        olds = sorted({previous[r] for r in cluster.records if r in previous})
        for r in cluster.records:
            customer_of[r] = cid
            probability_of[r] = cluster.probability_of(r)
            if r in previous:
                holders[previous[r]][cid] += 1
        absorbed = tuple(o for o in olds if o != cid and o not in given)  # not splits
        if cid not in olds and cid not in restored:  # made for these records (a part split
            # off gets one too): an unmerge reads which records an id stands for from this
            changes.append(Change("new", cid, records=tuple(cluster.records)))
        if absorbed:
            moved = tuple(r for r in cluster.records if previous.get(r) in absorbed)
            linking = tuple(p for p in cluster.links if (p.a in moved) != (p.b in moved))
            changes.append(Change("merge", cid, absorbed, moved, linking))
    for old, went_to in sorted(holders.items()):
        if old not in given:  # absorbed elsewhere: the old id keeps working as an alias
            aliases[old] = sorted(went_to.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        if len(went_to) > 1:
            moved = tuple(
                r for r, p in sorted(previous.items()) if p == old and customer_of.get(r) != old
            )
            changes.append(Change("split", old, tuple(sorted(set(went_to) - {old})), moved))
    return Assignment(customer_of, probability_of, changes, aliases, restored)


def attach_new_records(
    new_records: Sequence[str],
    pairs: Iterable[ScoredPair],
    existing: Mapping[str, str],
    *,
    loyalty_of: Mapping[str, str | None] | None = None,
    separated: Iterable[tuple[str, str]] = (),
    retired: Iterable[str] = (),
    mint: Callable[[], str] = mint_customer_id,
) -> Assignment:
    """Incremental matching: existing records keep their ids, new ones join or start one.

    ``pairs`` link new records to existing ones or to each other. New records are first
    clustered among themselves and with the existing records they match; each such group
    then joins the existing customer with the strongest link, and a group that links to
    several customers raises a ``merge_suggested`` change instead of merging them.
    """
    pair_list = list(pairs)
    new_set = set(new_records)
    if not new_set.isdisjoint(existing):
        raise ValueError("a new record is already resolved; resolve it in a full run instead")
    apart = {(a, b) for a, b in separated} | {(b, a) for a, b in separated}
    new_pairs = [p for p in pair_list if p.a in new_set and p.b in new_set]
    groups = cluster_records(sorted(new_set), new_pairs, separated)
    to_existing: dict[str, list[ScoredPair]] = defaultdict(list)
    for p in pair_list:
        if (p.a in new_set) != (p.b in new_set):
            new, old = (p.a, p.b) if p.a in new_set else (p.b, p.a)
            if old not in existing:
                raise ValueError(f"pair names {old!r}, which is neither new nor resolved")
            to_existing[new].append(p)
    customer_of: dict[str, str] = {}
    probability_of: dict[str, float | None] = {}
    changes: list[Change] = []
    taken = set(existing.values()) | set(retired)
    for group in groups:
        candidates: dict[str, list[ScoredPair]] = defaultdict(list)
        for r in group.records:
            for p in to_existing[r]:
                other = p.b if p.a == r else p.a
                if not any((m, o) in apart for m in group.records for o in [other]):
                    candidates[existing[other]].append(p)
        ranked = sorted(
            candidates.items(),
            key=lambda kv: (-max(p.probability for p in kv[1]), -len(kv[1]), kv[0]),
        )
        if ranked:
            cid, links = ranked[0]
            for r in group.records:
                customer_of[r] = cid
                own = [p.probability for p in links if r in (p.a, p.b)]
                inner = group.probability_of(r)
                probability_of[r] = max([*own, *([inner] if inner is not None else [])] or [0.0])
            if len(ranked) > 1:
                others = tuple(c for c, _ in ranked[1:])
                evidence = tuple(p for _, ps in ranked for p in ps)
                changes.append(
                    Change("merge_suggested", cid, others, tuple(group.records), evidence)
                )
            continue
        fresh = _preferred(group, loyalty_of or {}, taken)
        while fresh is None or fresh in taken:
            fresh = mint()
        taken.add(fresh)
        for r in group.records:
            customer_of[r] = fresh
            probability_of[r] = group.probability_of(r)
        changes.append(Change("new", fresh, records=tuple(group.records)))
    return Assignment(customer_of, probability_of, changes, {})


def chain_cuts(clusters: Sequence[Cluster], customer_of: Mapping[str, str]) -> list[Change]:
    """One ``chain_cut`` change per customer whose cluster refused links: the evidence
    for where a chain (twin A - shared phone - twin B) was cut, and which customers and
    records stayed on the other side."""
    changes = []
    for cluster in clusters:
        if not cluster.refused:
            continue
        own = set(cluster.records)
        outside = sorted({p.b if p.a in own else p.a for p in cluster.refused} - own)
        others = tuple(sorted({customer_of[r] for r in outside if r in customer_of}))
        cid = customer_of[cluster.records[0]]
        changes.append(Change("chain_cut", cid, others, tuple(outside), tuple(cluster.refused)))
    return changes
