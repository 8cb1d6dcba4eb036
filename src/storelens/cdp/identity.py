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

Pairs from both stages at the chosen match probability are clustered strongest link
first, refusing links between clearly different people (the household veto, where the
data holds households) and leaving a record torn between two such people to itself
(:func:`storelens.cdp.clusters.cluster_records`). Input is a pandas DataFrame of
*normalised* records (see :mod:`storelens.cdp.normalise`) with a globally unique
``unique_id`` column and an optional ``source_dataset`` column. Splink is imported
lazily: it is the ``cdp`` extra.

This module trains and links; the comparisons and blocking rules are in
:mod:`storelens.cdp.identity_settings`, the pair table, the exact rules and
incremental scoring in :mod:`storelens.cdp.identity_pairs`, the veto in
:mod:`storelens.cdp.matching_keys`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from storelens.cdp.clusters import cluster_records
from storelens.cdp.identity_pairs import (
    DETERMINISTIC_KEYS,
    HOUSEHOLD_VETO_KEY,
    LinkageResult,
    LinkType,
    all_pairs,
    deterministic_pairs,
    link_new,
    quiet_splink,
    scored_pairs,
)
from storelens.cdp.identity_settings import (
    DERIVED_COLUMNS,
    MODEL_COLUMNS,
    NARROW_RULES,
    PRIOR_RULE,
    SWAP_RULES,
    TYPO_RULE,
    blocking_rules,
    comparisons,
    place_level_share,
)
from storelens.cdp.matching_keys import (
    RecordVeto,
    add_match_keys,
    household_conflict,
    shows_households,
    vetoed,
)
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
    typo_pairs_per_record: float = 1.5
    """Budget for the same-postcode-and-initial rule: 1.1 pairs a record on the retail
    extracts (20,000 people), 0.9 on 100,000 basic synthetic customers; it grows with
    density, so at 1M (about 9 a record there) it is dropped and costs nothing."""
    household_veto: bool | None = None
    """Refuse links between clearly different people (see
    :func:`storelens.cdp.matching_keys.clearly_different`). ``None`` (the default) decides
    from the data (:func:`~storelens.cdp.matching_keys.shows_households`): on for records
    that hold households, off for data whose error model replaces a person's whole first
    name or birth date and has no households (FEBRL), where the veto only cuts true pairs."""
    info: dict[str, Any] = field(default_factory=dict)
    conflict: Callable[[str, str], bool] | None = None
    """After :meth:`link`: the household rule by record id, for clustering elsewhere."""
    model_json: dict[str, Any] | None = None
    """The trained Splink model after :meth:`link`, for incremental matching later."""

    @staticmethod
    def _rules(present: set[str], rules: Sequence[Sequence[str]]) -> list[Any]:
        return blocking_rules(present, rules)

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

    def typo_rules(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        """:data:`~storelens.cdp.identity_settings.TYPO_RULE` where it stays within
        ``typo_pairs_per_record``; dropped (not narrowed) where postcodes are crowded."""
        if "postcode" not in frame.columns or "first_name" not in frame.columns:
            return []
        initials = frame[["postcode"]].assign(initial=frame["first_name"].str[:1])
        affordable = _block_pairs(
            initials, ("postcode", "initial")
        ) <= self.typo_pairs_per_record * len(frame)
        return [TYPO_RULE] if affordable else []

    def swap_rules(self, frame: pd.DataFrame) -> list[str]:
        """:data:`~storelens.cdp.identity_settings.SWAP_RULES` (SQL) where the pairs they
        compare stay within ``typo_pairs_per_record``, like the typo rule."""
        needed = ("first_name", "last_key", "postcode")
        if not all(c in frame.columns for c in needed):
            return []
        firsts = frame[["postcode", "first_name"]].dropna()
        lasts = frame[["postcode", "last_key"]].dropna()
        crossed = firsts.merge(
            lasts, left_on=["postcode", "first_name"], right_on=["postcode", "last_key"]
        )
        # each crossed pair is compared once by one of the two rules
        affordable = len(crossed) <= self.typo_pairs_per_record * len(frame)
        return list(SWAP_RULES) if affordable else []

    def prediction_rules(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        """The blocking rules that generate the pairs the model scores, for this input."""
        by_name, _, _ = self.broad_rules(frame)
        return [by_name, *NARROW_RULES, *self.typo_rules(frame)]

    def link(self, df: pd.DataFrame, link_type: LinkType = "dedupe_only") -> LinkageResult:
        """Score and cluster ``df``; ``link_type`` as in Splink.

        ``link_only`` and ``link_and_dedupe`` need a ``source_dataset`` column.
        """
        try:
            import pandas as pd
            from splink import DuckDBAPI, Linker, SettingsCreator
            from splink.blocking_rule_library import CustomRule
        except ImportError as exc:  # pragma: no cover - exercised without the extra
            raise MissingExtra("identity resolution", "cdp") from exc
        quiet_splink()

        df = add_match_keys(df.reset_index(drop=True))
        present = {c for c in MODEL_COLUMNS if c in df.columns and df[c].notna().any()}
        present |= {c for c in DERIVED_COLUMNS if df[c].notna().any()}
        keep = ["unique_id", *(["source_dataset"] if link_type != "dedupe_only" else [])]
        used = [c for c in (*MODEL_COLUMNS, *DERIVED_COLUMNS) if c in present]
        frame = df[[*keep, *used]].copy()

        by_name, by_birthday, narrowed = self.broad_rules(frame)
        typo = self.typo_rules(frame)
        if not typo:
            narrowed.append("typo (dropped)")
        predict_rules = self._rules(present, [by_name, *NARROW_RULES, *typo])
        swaps = self.swap_rules(frame) if {"first_name", "postcode"} <= present else []
        if not swaps and {"first_name", "postcode"} <= present:
            narrowed.append("swap (dropped)")
        predict_rules += [CustomRule(sql) for sql in swaps]
        settings = SettingsCreator(
            link_type=link_type,
            unique_id_column_name="unique_id",
            comparisons=comparisons(present, place_u=place_level_share(frame)),
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
        linker = Linker(tables, settings, log_level=None)

        prior_rules = self._rules(present, [PRIOR_RULE])
        if prior_rules:
            linker.training.estimate_probability_two_random_records_match(
                prior_rules, recall=self.prior_recall * _held_by_both(frame, PRIOR_RULE)
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

        predictions: Any = linker.inference.predict(
            threshold_match_probability=self.threshold, warning_mode="never"
        )
        enabled = shows_households(df) if self.household_veto is None else self.household_veto
        veto = RecordVeto(df, enabled=enabled)
        # the decision travels with the model, so incremental runs veto as this run did
        self.model_json = {**linker.misc.save_model_to_json(), HOUSEHOLD_VETO_KEY: enabled}
        scored = vetoed(predictions.as_pandas_dataframe(), veto)
        prob = scored[["unique_id_l", "unique_id_r", "match_probability"]].assign(
            rule="probabilistic"
        )
        det = {
            p for p in deterministic_pairs(df, self.deterministic_keys, link_type) if not veto(*p)
        }
        pairs = all_pairs(det, prob)
        self.conflict = veto
        groups = cluster_records(
            list(df["unique_id"]), scored_pairs(pairs), conflict=veto, settle=veto.settle
        )
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
            "household_veto": enabled,
            "probabilistic_pairs": len(prob),
            "probability_two_random_records_match": (
                linker._settings_obj._probability_two_random_records_match
            ),
        }
        return LinkageResult(pairs, clusters, self.threshold, dict(self.info))


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
