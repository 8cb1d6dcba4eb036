"""Record pairs: from the exact rules, from a trained model, and as one table.

The deterministic rules (same e-mail mailbox, loyalty id or E.164 phone) are a
union over exact keys kept outside Splink, so the rule is auditable in a dozen lines
and runs where no model can be trained. :func:`link_new` scores only the pairs that
involve new records with an already trained model, so incremental runs cost what the
batch costs, not what the customer base does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from storelens.cdp.clusters import ScoredPair
from storelens.cdp.identity_settings import DERIVED_COLUMNS, MODEL_COLUMNS
from storelens.cdp.matching_keys import RecordVeto, add_match_keys, shows_households, vetoed
from storelens.core.errors import MissingExtra

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DETERMINISTIC_KEYS",
    "HOUSEHOLD_VETO_KEY",
    "LinkType",
    "LinkageResult",
    "all_pairs",
    "deterministic_pairs",
    "link_new",
    "quiet_splink",
    "scored_pairs",
]

LinkType = Literal["dedupe_only", "link_only", "link_and_dedupe"]
DETERMINISTIC_KEYS = ("email_key", "loyalty_id", "phone")
HOUSEHOLD_VETO_KEY = "storelens_household_veto"
"""Key in a saved model: whether the full run that trained it applied the household veto."""

log = logging.getLogger(__name__)


class _SplinkToDebugLog(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        level = record.levelno if record.levelno >= logging.ERROR else logging.DEBUG
        log.log(level, "splink: %s", " ".join(record.getMessage().split()))  # one line


def quiet_splink() -> None:
    """Send Splink's log to the debug log, keeping ERROR and above at their level.

    Splink logs its training notes as WARNINGs: "Level … on comparison … not observed in
    dataset, unable to train m value" (a level this data never shows: loyalty ids no two
    records share), "untrained parameters will use default values", "No null level
    found", the default-``max_pairs`` advice. They say what this data could train, not
    that anything failed (a failure raises, and resolution warns in its own words), yet
    Splink's own stderr handler (``Linker(log_level=…)``) printed them between
    storelens's lines. So Linkers get ``log_level=None``, and the ``splink`` logger this
    handler only."""
    splink = logging.getLogger("splink")
    splink.setLevel(logging.WARNING)  # its INFO chatter is not even formatted
    if not any(isinstance(h, _SplinkToDebugLog) for h in splink.handlers):
        splink.addHandler(_SplinkToDebugLog())
    splink.propagate = False  # no second copy through the root logger's handlers


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
    if any(k in DERIVED_COLUMNS and k not in df.columns for k in keys):
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


def link_new(
    model_json: dict[str, Any],
    existing: pd.DataFrame,
    new: pd.DataFrame,
    threshold: float = 0.9,
    deterministic_keys: Sequence[str] = DETERMINISTIC_KEYS,
    household_veto: bool | None = None,
) -> pd.DataFrame:
    """Score new records against existing ones and each other with an already trained model.

    Only pairs that involve a new record are compared, so the cost grows with the batch,
    not with the customer base (beyond blocking). Term frequencies come from existing and
    new records together, as a full run would compute them. The household veto applies as
    the full run decided (stored in the model), else where the records show households.
    """
    try:
        import pandas as pd
        from splink import DuckDBAPI, Linker
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise MissingExtra("identity resolution", "cdp") from exc
    quiet_splink()
    settings = {k: v for k, v in model_json.items() if k != HOUSEHOLD_VETO_KEY}
    settings["link_type"] = "dedupe_only"
    existing, new = add_match_keys(existing), add_match_keys(new)
    used = [
        c for c in (*MODEL_COLUMNS, *DERIVED_COLUMNS) if c in existing.columns or c in new.columns
    ]
    text = [c for c in used if c != "first_forms"]

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        out = df.reindex(columns=["unique_id", *used])
        typed = out.astype(dict.fromkeys(text, "string")).astype(object)
        return typed.where(out.notna(), None)

    old, fresh = frame(existing), frame(new)
    both = pd.concat([old, fresh], ignore_index=True)
    db = DuckDBAPI()
    linker = Linker(db.register(both), settings, log_level=None)
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
    everyone = pd.concat([existing, new], ignore_index=True)
    if household_veto is None:
        household_veto = model_json.get(HOUSEHOLD_VETO_KEY)
    veto = RecordVeto(
        everyone, enabled=shows_households(everyone) if household_veto is None else household_veto
    )
    scored = [vetoed(s.as_pandas_dataframe(), veto) for s in (between, within)]
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
    return all_pairs(det, prob)


def all_pairs(deterministic: set[tuple[str, str]], probabilistic: pd.DataFrame) -> pd.DataFrame:
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
