"""Identity resolution: which customer records are the same person.

Two stages, because they fail differently:

1. **Deterministic rules.** Records sharing a normalised e-mail, loyalty id or
   E.164 phone are the same person with certainty. This is a union-find over exact
   keys, kept outside Splink so the rule is auditable in a dozen lines and runs
   even where the model cannot be trained (tiny inputs).
2. **Probabilistic Fellegi-Sunter model** (Splink, DuckDB backend) over names,
   date of birth, address parts, e-mail, phone and loyalty id, trained
   unsupervised: u by random sampling (seeded), m by EM over two blocking rules
   that each leave the other's fields free to be estimated.

Pairs from both stages are clustered by connected components at the chosen match
probability. Input is a pandas DataFrame of *normalised* records (see
:mod:`storelens.cdp.normalise`) with a globally unique ``unique_id`` column and an
optional ``source_dataset`` column. Splink is imported lazily: it is the ``cdp``
extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from storelens.cdp.clusters import ScoredPair, cluster_records
from storelens.cdp.matching_keys import add_match_keys, clearly_different, surname_words
from storelens.cdp.normalise import normalise_dob, normalise_postcode, normalise_text
from storelens.core.errors import MissingExtra

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DETERMINISTIC_KEYS",
    "MODEL_COLUMNS",
    "IdentityModel",
    "LinkageResult",
    "dedupe",
    "deterministic_pairs",
    "febrl_to_model_frame",
    "household_conflict",
    "link_and_dedupe",
    "link_new",
    "scored_pairs",
]

LinkType = Literal["dedupe_only", "link_only", "link_and_dedupe"]
DETERMINISTIC_KEYS = ("email_key", "loyalty_id", "phone")
MODEL_COLUMNS = (
    "first_name",
    "last_name",
    "dob",
    "street_number",
    "address",
    "address_2",
    "postcode",
    "city",
    "state",
    "email",
    "phone",
    "loyalty_id",
)
_DERIVED = ("name_key", "last_key", "first_forms", "suffix", "email_key", "phone_digits")


@dataclass
class LinkageResult:
    """Scored pairs (``unique_id_l``, ``unique_id_r``, ``match_probability``,
    ``rule``) at or above the threshold, and ``clusters`` (``unique_id``,
    ``cluster_id``) covering every input record."""

    pairs: pd.DataFrame
    clusters: pd.DataFrame
    threshold: float
    info: dict[str, Any] = field(default_factory=dict)

    def cluster_of(self) -> dict[str, str]:
        """``unique_id -> cluster_id``; a cluster's id is its smallest member id."""
        return dict(zip(self.clusters["unique_id"], self.clusters["cluster_id"], strict=True))

    def pair_set(self) -> set[tuple[str, str]]:
        """Predicted pairs as ordered ``(low_id, high_id)`` tuples."""
        return {
            (a, b) if a < b else (b, a)
            for a, b in zip(self.pairs["unique_id_l"], self.pairs["unique_id_r"], strict=True)
        }


def deterministic_pairs(
    df: pd.DataFrame,
    keys: Sequence[str] = DETERMINISTIC_KEYS,
    link_type: LinkType = "link_and_dedupe",
) -> set[tuple[str, str]]:
    """Pairs of records sharing any exact, non-null deterministic key.

    Every pair within a key group is returned (not a spanning chain), so the
    scored pair list is complete for evaluation; groups are small in practice.
    """
    pairs: set[tuple[str, str]] = set()
    if any(k in _DERIVED and k not in df.columns for k in keys):
        df = add_match_keys(df)  # e-mail's canonical mailbox, from the plain columns
    has_source = "source_dataset" in df.columns
    for key in keys:
        if key not in df.columns:
            continue
        cols = ["unique_id", key, *(["source_dataset"] if has_source else [])]
        sub = df.loc[df[key].notna(), cols]
        sub = sub[sub.duplicated(key, keep=False)]  # only keys shared by 2+ records
        if sub.empty:
            continue
        joined = sub.merge(sub, on=key, suffixes=("_l", "_r"))
        joined = joined[joined["unique_id_l"] < joined["unique_id_r"]]
        if has_source and link_type == "link_only":
            joined = joined[joined["source_dataset_l"] != joined["source_dataset_r"]]
        elif has_source and link_type == "dedupe_only":
            joined = joined[joined["source_dataset_l"] == joined["source_dataset_r"]]
        pairs.update(zip(joined["unique_id_l"], joined["unique_id_r"], strict=True))
    return pairs


_NARROW_RULES: tuple[tuple[str, ...], ...] = (
    ("last_name", "dob"),
    ("first_name", "dob"),
    ("postcode", "dob"),
    ("postcode", "street_number"),
    ("loyalty_id",),
    ("email_key",),
    ("phone",),
    ("phone_digits",),
    ("last_key", "postcode"),
    ("first_name", "postcode"),
    ("name_key", "postcode"),
    ("substr(first_name,1,2)", "substr(last_name,1,2)", "substr(dob,1,4)"),
)
"""Blocking rules specific enough at any scale; the broad ones are chosen per input."""


@dataclass
class IdentityModel:
    """Deterministic rules plus an unsupervised Fellegi-Sunter model.

    ``threshold`` is the match probability at which a scored pair counts as a
    match and joins a cluster. ``seed`` fixes u sampling so reruns agree.
    """

    threshold: float = 0.9
    deterministic_keys: Sequence[str] = DETERMINISTIC_KEYS
    seed: int = 42
    max_pairs_u: float = 2e6
    prior_recall: float = 0.8
    pairs_per_record: float = 1.0
    """Budget for the broad blocking rules (same name; same birthday for training): a
    rule that would compare more pairs than this per record is narrowed, because at
    that density it is common names and shared birthdays, not duplicates, that fill it."""
    household_veto: bool = True
    """Refuse links between clearly different people (see
    :func:`storelens.cdp.matching_keys.clearly_different`). Off only for data whose error
    model replaces a person's whole first name or birth date (FEBRL), which on retail
    data is exactly what a household looks like."""
    info: dict[str, Any] = field(default_factory=dict)
    conflict: Callable[[str, str], bool] | None = None
    """After :meth:`link`: the household rule by record id, for clustering elsewhere."""
    model_json: dict[str, Any] | None = None
    """The trained Splink model after :meth:`link`, for incremental matching later."""

    def _comparisons(self, present: set[str]) -> list[Any]:
        import splink.comparison_library as cl

        table: dict[str, Any] = {
            "first_name": _full_name(),
            "dob": _dob(),
            "street_number": cl.ExactMatch("street_number").configure(
                term_frequency_adjustments=True
            ),
            "address": cl.JaroWinklerAtThresholds("address", [0.9, 0.8]).configure(
                term_frequency_adjustments=True
            ),
            "address_2": cl.JaroWinklerAtThresholds("address_2", [0.9, 0.8]),
            "postcode": cl.DamerauLevenshteinAtThresholds("postcode", [1]).configure(
                term_frequency_adjustments=True
            ),
            "city": cl.JaroWinklerAtThresholds("city", [0.9]).configure(
                term_frequency_adjustments=True
            ),
            "state": cl.ExactMatch("state").configure(term_frequency_adjustments=True),
            "email": _email(),
            "phone": _phone(),
            "loyalty_id": cl.DamerauLevenshteinAtThresholds("loyalty_id", [1]),
        }
        return [table[c] for c in MODEL_COLUMNS if c in present and c in table]

    @staticmethod
    def _rules(present: set[str], rules: Sequence[Sequence[str]]) -> list[Any]:
        from splink import block_on

        return [block_on(*r) for r in rules if all(_col(c) in present for c in r)]

    def broad_rules(
        self, frame: pd.DataFrame
    ) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
        """The same-name and same-birthday blocking rules, narrowed where over budget."""
        by_name: tuple[str, ...] = ("name_key",)
        by_birthday: tuple[str, ...] = ("dob",)
        budget = self.pairs_per_record * len(frame)
        narrowed = []
        if _block_pairs(frame, by_name) > budget:
            by_name = (*by_name, "substr(dob,1,3)")  # and born in the same decade
            narrowed.append("name")
        if _block_pairs(frame, by_birthday) > budget:
            by_birthday = ("dob", "substr(last_name,1,1)")
            narrowed.append("birthday")
        return by_name, by_birthday, narrowed

    def prediction_rules(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        """The blocking rules that generate the pairs the model scores, for this input."""
        by_name, _, _ = self.broad_rules(frame)
        return [by_name, *_NARROW_RULES]

    def link(self, df: pd.DataFrame, link_type: LinkType = "dedupe_only") -> LinkageResult:
        """Score and cluster ``df``; ``link_type`` as in Splink.

        ``link_only`` and ``link_and_dedupe`` need a ``source_dataset`` column.
        """
        try:
            import pandas as pd
            from splink import DuckDBAPI, Linker, SettingsCreator
        except ImportError as exc:  # pragma: no cover - exercised without the extra
            raise MissingExtra("identity resolution", "cdp") from exc
        logging.getLogger("splink").setLevel(logging.WARNING)

        df = add_match_keys(df.reset_index(drop=True))
        present = {c for c in MODEL_COLUMNS if c in df.columns and df[c].notna().any()}
        present |= {c for c in _DERIVED if df[c].notna().any()}
        keep = ["unique_id", *(["source_dataset"] if link_type != "dedupe_only" else [])]
        used = [c for c in (*MODEL_COLUMNS, *_DERIVED) if c in present]
        frame = df[[*keep, *used]].copy()

        by_name, by_birthday, narrowed = self.broad_rules(frame)
        predict_rules = self._rules(
            present,
            [by_name, *_NARROW_RULES],
        )
        settings = SettingsCreator(
            link_type=link_type,
            unique_id_column_name="unique_id",
            comparisons=self._comparisons(present),
            blocking_rules_to_generate_predictions=predict_rules,
            retain_intermediate_calculation_columns=False,
        )
        db = DuckDBAPI()
        if link_type == "dedupe_only":
            tables: Any = db.register(frame.drop(columns=["source_dataset"], errors="ignore"))
        else:
            tables = [
                db.register(part.drop(columns=["source_dataset"]), dataset_display_name=str(name))
                for name, part in frame.groupby("source_dataset", sort=True)
            ]
        linker = Linker(tables, settings, log_level=logging.WARNING)

        prior_rules = self._rules(present, [_PRIOR_RULE])
        if prior_rules:
            linker.training.estimate_probability_two_random_records_match(
                prior_rules, recall=self.prior_recall * _held_by_both(frame, _PRIOR_RULE)
            )
        linker.training.estimate_u_using_random_sampling(max_pairs=self.max_pairs_u, seed=self.seed)
        # EM on names leaves dob/address free to estimate, EM on dob frees the names. When
        # name blocking had to be narrowed by birth decade, dob is estimated by neither, so
        # a round on the e-mail mailbox (mostly one person's) frees it; postcode stands in
        # when a source lacks names or birth dates.
        em_rules = self._rules(present, [by_name, by_birthday])
        if "dob" in by_name[-1]:
            em_rules += self._rules(present, [("email_key",)])
        if len(em_rules) < 2:
            em_rules += self._rules(present, [("postcode",)])
        for rule in em_rules[:3]:
            linker.training.estimate_parameters_using_expectation_maximisation(
                rule, estimate_without_term_frequencies=True
            )

        self.model_json = linker.misc.save_model_to_json()
        predictions: Any = linker.inference.predict(
            threshold_match_probability=self.threshold, warning_mode="never"
        )
        veto = _Veto(df, enabled=self.household_veto)
        scored = _vetoed(predictions.as_pandas_dataframe(), veto)
        prob = scored[["unique_id_l", "unique_id_r", "match_probability"]].assign(
            rule="probabilistic"
        )
        det = {
            p for p in deterministic_pairs(df, self.deterministic_keys, link_type) if not veto(*p)
        }
        pairs = _all_pairs(det, prob)
        self.conflict = veto
        groups = cluster_records(list(df["unique_id"]), scored_pairs(pairs), conflict=veto)
        cluster_of = {
            member: cluster.records[0]  # a cluster's id is its smallest member id
            for cluster in groups
            for member in cluster.records
        }
        clusters = pd.DataFrame(
            {"unique_id": df["unique_id"], "cluster_id": [cluster_of[u] for u in df["unique_id"]]}
        )
        self.info = {
            "narrowed_blocking": narrowed,
            "deterministic_pairs": len(det),
            "links_refused": sum(len(c.refused) for c in groups),
            "probabilistic_pairs": len(prob),
            "probability_two_random_records_match": (
                linker._settings_obj._probability_two_random_records_match
            ),
        }
        return LinkageResult(pairs, clusters, self.threshold, dict(self.info))


def link_new(
    model_json: dict[str, Any],
    existing: pd.DataFrame,
    new: pd.DataFrame,
    threshold: float = 0.9,
    deterministic_keys: Sequence[str] = DETERMINISTIC_KEYS,
) -> pd.DataFrame:
    """Score new records against existing ones and each other with an already trained model.

    Only pairs that involve a new record are compared, so the cost grows with the batch,
    not with the customer base (beyond blocking). Term frequencies come from existing and
    new records together, as a full run would compute them.
    """
    try:
        import pandas as pd
        from splink import DuckDBAPI, Linker
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise MissingExtra("identity resolution", "cdp") from exc
    logging.getLogger("splink").setLevel(logging.WARNING)
    settings = {**model_json, "link_type": "dedupe_only"}
    existing, new = add_match_keys(existing), add_match_keys(new)
    used = [c for c in (*MODEL_COLUMNS, *_DERIVED) if c in existing.columns or c in new.columns]
    text = [c for c in used if c != "first_forms"]

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        out = df.reindex(columns=["unique_id", *used])
        typed = out.astype(dict.fromkeys(text, "string")).astype(object)
        return typed.where(out.notna(), None)

    old, fresh = frame(existing), frame(new)
    both = pd.concat([old, fresh], ignore_index=True)
    db = DuckDBAPI()
    linker = Linker(db.register(both), settings, log_level=logging.WARNING)
    tf_columns = {
        level["tf_adjustment_column"]
        for c in settings["comparisons"]
        for level in c["comparison_levels"]
        if level.get("tf_adjustment_column")
    }
    for column in sorted(tf_columns):
        linker.table_management.compute_tf_table(column)
    left, right = db.register(old), db.register(fresh)
    between: Any = linker.inference.predict_between(
        left, right, threshold_match_probability=threshold, warning_mode="never"
    )
    within: Any = linker.inference.predict_within(
        right, threshold_match_probability=threshold, warning_mode="never"
    )
    veto = _Veto(pd.concat([existing, new], ignore_index=True))
    scored = [_vetoed(s.as_pandas_dataframe(), veto) for s in (between, within)]
    prob = pd.concat(
        [s[["unique_id_l", "unique_id_r", "match_probability"]] for s in scored], ignore_index=True
    ).assign(rule="probabilistic")
    fresh_ids = set(fresh["unique_id"])
    det = {
        pair
        for pair in deterministic_pairs(
            pd.concat([existing, new], ignore_index=True), deterministic_keys, "dedupe_only"
        )
        if pair[0] in fresh_ids or pair[1] in fresh_ids
    }
    return _all_pairs(det, prob)


def household_conflict(df: pd.DataFrame) -> Callable[[str, str], bool]:
    """The household rule (:func:`~storelens.cdp.matching_keys.clearly_different`) by
    record id over ``df``'s normalised records, for clustering pairs scored elsewhere."""
    return _Veto(add_match_keys(df.reset_index(drop=True)))


def _all_pairs(deterministic: set[tuple[str, str]], probabilistic: pd.DataFrame) -> pd.DataFrame:
    """One row per pair, ``(low_id, high_id)``; a deterministic rule wins over the model."""
    import pandas as pd

    det = pd.DataFrame(sorted(deterministic), columns=["unique_id_l", "unique_id_r"]).assign(
        match_probability=1.0, rule="deterministic"
    )
    pairs = pd.concat([det, probabilistic], ignore_index=True)
    lo = pairs[["unique_id_l", "unique_id_r"]].min(axis=1)
    hi = pairs[["unique_id_l", "unique_id_r"]].max(axis=1)
    return (
        pairs.assign(unique_id_l=lo, unique_id_r=hi)
        .drop_duplicates(["unique_id_l", "unique_id_r"], keep="first")
        .sort_values(["unique_id_l", "unique_id_r"])
        .reset_index(drop=True)
    )


def scored_pairs(pairs: pd.DataFrame) -> list[ScoredPair]:
    """Pair rows (``unique_id_l/_r``, ``match_probability``, ``rule``) as :class:`ScoredPair`."""
    return [
        ScoredPair(str(a), str(b), float(p), str(r))
        for a, b, p, r in zip(
            pairs["unique_id_l"],
            pairs["unique_id_r"],
            pairs["match_probability"],
            pairs["rule"],
            strict=True,
        )
    ]


_PRIOR_RULE = ("first_name", "last_name", "dob")


def _held_by_both(frame: pd.DataFrame, columns: Sequence[str]) -> float:
    """Share of record pairs in which both records hold every column of a rule.

    An exact rule on name and birth date can only find the matches whose two records
    both have a birth date; till records have none, so on retail data the rule finds a
    far smaller share of all matches than on a CRM extract, and the prior estimated
    from it must be scaled up by as much.
    """
    held = float(frame[list(columns)].notna().all(axis=1).mean()) if len(frame) else 1.0
    return max(held * held, 0.05)


def _block_pairs(frame: pd.DataFrame, columns: Sequence[str]) -> int:
    """Pairs an exact-match blocking rule on ``columns`` would compare (within one table)."""
    if not all(c in frame.columns for c in columns):
        return 0
    sizes = frame.dropna(subset=list(columns)).groupby(list(columns), sort=False).size()
    return int((sizes * (sizes - 1) // 2).sum())


def _vetoed(scored: pd.DataFrame, veto: _Veto) -> pd.DataFrame:
    """Scored pairs without those between clearly different people.

    Splink's additive weights cannot veto: a couple sharing surname, address, landline
    and e-mail outweighs two first names that differ. The household rule can.
    """
    keep = [
        not veto(a, b) for a, b in zip(scored["unique_id_l"], scored["unique_id_r"], strict=True)
    ]
    return scored.loc[keep] if len(scored) else scored


def _col(rule_part: str) -> str:
    """The model column a blocking expression reads (``substr(dob,1,4)`` -> ``dob``)."""
    if "(" in rule_part:
        return rule_part.split("(", 1)[1].split(",", 1)[0].strip()
    return rule_part


def dedupe(df: pd.DataFrame, threshold: float = 0.9, **kwargs: Any) -> LinkageResult:
    """Find duplicates within one table of normalised records."""
    return IdentityModel(threshold=threshold, **kwargs).link(df, "dedupe_only")


def link_and_dedupe(
    df: pd.DataFrame, threshold: float = 0.9, *, link_only: bool = False, **kwargs: Any
) -> LinkageResult:
    """Link records across ``source_dataset`` values (and within them unless
    ``link_only``, for sources known to be duplicate-free)."""
    link_type: LinkType = "link_only" if link_only else "link_and_dedupe"
    return IdentityModel(threshold=threshold, **kwargs).link(df, link_type)


def febrl_to_model_frame(df: pd.DataFrame, source_dataset: str | None = None) -> pd.DataFrame:
    """Map a FEBRL frame (index ``rec_id``) to model columns, normalised.

    ``soc_sec_id`` plays the loyalty id: an identifier with typos but no sharing.
    """
    import pandas as pd

    def text(col: str) -> list[str | None]:
        return [normalise_text(v) for v in df[col]]

    out = pd.DataFrame(
        {
            "unique_id": [str(i) for i in df.index],
            "first_name": text("given_name"),
            "last_name": text("surname"),
            "dob": [normalise_dob(v) for v in df["date_of_birth"]],
            "street_number": text("street_number"),
            "address": text("address_1"),
            "address_2": text("address_2"),
            "postcode": [normalise_postcode(v) for v in df["postcode"]],
            "city": text("suburb"),
            "state": text("state"),
            "loyalty_id": [normalise_postcode(v) for v in df["soc_sec_id"]],
        }
    )
    if source_dataset is not None:
        out["source_dataset"] = source_dataset
    return out


class _Veto:
    """:func:`~storelens.cdp.matching_keys.clearly_different` by record id, remembered."""

    def __init__(self, df: pd.DataFrame, *, enabled: bool = True) -> None:
        self.enabled = enabled
        names = ("first_name", "last_name", "dob", "suffix", "loyalty_id")
        cols = [c for c in names if c in df.columns]
        self.rows = {
            str(u): {
                c: (v if isinstance(v, str) else None) for c, v in zip(cols, vals, strict=True)
            }
            for u, *vals in zip(df["unique_id"], *(df[c] for c in cols), strict=True)
        }
        self.surnames = surname_words(df)
        self.seen: dict[tuple[str, str], bool] = {}

    def __call__(self, a: str, b: str) -> bool:
        if not self.enabled:
            return False
        key = (a, b) if a < b else (b, a)
        if key not in self.seen:
            self.seen[key] = clearly_different(self.rows[a], self.rows[b], self.surnames)
        return self.seen[key]


def _full_name() -> Any:
    """One joint name comparison (output ``first_name``): the sorted full name with term
    frequencies (so swaps match and a common name counts for less), nicknames, near
    spellings, a married or maiden surname, and a strong negative level for one surname
    with clearly different first names, which is what a household looks like."""
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    same_last = "last_key_l = last_key_r"
    forms = "list_has_any(first_forms_l, first_forms_r)"
    return cl.CustomComparison(
        output_column_name="first_name",
        comparison_levels=[
            cll.CustomLevel("name_key_l IS NULL OR name_key_r IS NULL").configure(
                is_null_level=True
            ),
            cll.ExactMatchLevel("name_key", term_frequency_adjustments=True),
            cll.CustomLevel(f"{same_last} AND {forms}", "nickname, same surname"),
            cll.CustomLevel(
                "jaro_winkler_similarity(first_name_l, first_name_r) >= 0.88 AND "
                "jaro_winkler_similarity(last_key_l, last_key_r) >= 0.88",
                "near spelling",
            ),
            cll.CustomLevel(
                f"{same_last} AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                "same surname, same initial",
            ),
            cll.CustomLevel(f"{forms}", "same first name, other surname"),
            cll.CustomLevel(same_last, "same surname, other first name"),
            cll.ElseLevel(),
        ],
    )


def _dob() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="dob",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel(
                "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) AND "
                "substr(dob_l, 6, 2) = substr(dob_r, 9, 2) AND "
                "substr(dob_l, 9, 2) = substr(dob_r, 6, 2)",
                "day and month swapped",
            ),
            cll.CustomLevel(
                "substr(dob_l, 6, 5) = substr(dob_r, 6, 5) OR "
                "substr(dob_l, 1, 7) = substr(dob_r, 1, 7) OR "
                "(substr(dob_l, 1, 5) = substr(dob_r, 1, 5) AND "
                "substr(dob_l, 9, 2) = substr(dob_r, 9, 2))",
                "one part differs",
            ),
            cll.ElseLevel(),
        ],
    )


def _email() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email_key"),
            cll.ExactMatchLevel("email_key"),
            cll.JaroWinklerLevel("email_key", 0.95),
            cll.ElseLevel(),
        ],
    )


def _phone() -> Any:
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    return cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            cll.NullLevel("phone_digits"),
            cll.ExactMatchLevel("phone"),
            cll.ExactMatchLevel("phone_digits"),
            cll.ElseLevel(),
        ],
    )
