"""The Splink settings of the identity model: which fields are compared and how, and
which blocking rules bring record pairs together.

Kept apart from the training and linking code because this is what one tunes to a
retailer's data (levels for nicknames, swapped names, a day/month swap, gmail forms),
while the run around it stays the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "DERIVED_COLUMNS",
    "GB_POSTCODE_SQL",
    "MAILBOX_SURNAME_MIN",
    "MODEL_COLUMNS",
    "NARROW_RULES",
    "PRIOR_RULE",
    "SWAP_RULES",
    "TYPO_RULE",
    "blocking_rules",
    "comparisons",
    "full_name_comparison",
    "mailbox_holds_surname",
    "place_level_share",
    "rule_column",
    "shares_small_postcode",
    "swapped",
]

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
DERIVED_COLUMNS = ("name_key", "last_key", "first_forms", "suffix", "email_key", "phone_digits")
"""Match keys (:mod:`storelens.cdp.matching_keys`) the comparisons and rules read."""

NARROW_RULES: tuple[tuple[str, ...], ...] = (
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


TYPO_RULE = ("postcode", "substr(first_name,1,1)")
"""Same postcode and first initial: reaches a till record (name and postcode only) whose
surname was mistyped, transliterated or swapped. Used only while affordable: where
postcodes are crowded it compares more pairs than it finds (see ``IdentityModel``)."""

SWAP_RULES = (
    "l.first_name = r.last_key AND l.postcode = r.postcode",
    "l.last_key = r.first_name AND l.postcode = r.postcode",
)
"""One record's first name is the other's surname at one postcode: a form that swapped
the two names *and* changed one of them (``moore anthoyn`` / ``anthony moore``, ``wood
danny`` / ``daniel wood``), which no same-name or same-surname rule reaches. Both
directions, since a dedupe compares each pair once. Cheap: a first name is seldom a
neighbour's surname (see ``IdentityModel.swap_rules``)."""

PRIOR_RULE = ("first_name", "last_name", "dob")
"""The exact rule the match prior is estimated from."""


def comparisons(present: set[str], place_u: float | None = None) -> list[Any]:
    """One comparison per model column that the data holds (``present``); ``place_u``
    is the counted share of record pairs at the joint name-and-place level (see
    :func:`full_name_comparison`), None or 0 where the data has none."""
    import splink.comparison_library as cl

    table: dict[str, Any] = {
        "first_name": full_name_comparison(with_mailbox="email_key" in present, place_u=place_u),
        "dob": dob_comparison(),
        "street_number": cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
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
        "email": email_comparison(),
        "phone": phone_comparison(),
        "loyalty_id": cl.DamerauLevenshteinAtThresholds("loyalty_id", [1]),
    }
    return [table[c] for c in MODEL_COLUMNS if c in present and c in table]


def blocking_rules(present: set[str], rules: Sequence[Sequence[str]]) -> list[Any]:
    """Splink blocking rules for those of ``rules`` whose columns the data holds."""
    from splink import block_on

    return [block_on(*r) for r in rules if all(rule_column(c) in present for c in r)]


def rule_column(rule_part: str) -> str:
    """The model column a blocking expression reads (``substr(dob,1,4)`` -> ``dob``)."""
    if "(" in rule_part:
        return rule_part.split("(", 1)[1].split(",", 1)[0].strip()
    return rule_part


def full_name_comparison(*, with_mailbox: bool = False, place_u: float | None = None) -> Any:
    """One joint name comparison (output ``first_name``): the sorted full name with term
    frequencies (so swaps match and a common name counts for less), nicknames, near
    spellings, a married or maiden surname, and a strong negative level for one surname
    with clearly different first names, which is what a household looks like.

    ``with_mailbox`` (the data holds e-mail) adds a level for one first name under two
    surnames where one record's surname is the other's mailbox name (:func:`
    mailbox_holds_surname`): a woman's till card in her married name and her CRM record
    in her maiden name with ``emma.mitchell@…``. Without it that pair and a neighbour of
    the same first name look alike (about 0.5 at one postcode).

    ``place_u`` (a share of pairs, counted in the data) adds a level for one first name under two
    surnames at one full GB postcode (:func:`shares_small_postcode`): a married name
    with no mailbox to show it. A GB postcode holds a street's few households, so that
    is one person about 9 times in 10; a US ZIP holds thousands, and one first name
    under another surname there is mostly a neighbour. Name and postcode are separate
    comparisons that the model adds as independent, so only a level keyed on both can
    weigh the combination by the kind of place. Its u is counted over all pairs, not
    sampled: a random sample of 2M pairs holds about one such pair, so the sampled weight
    was seed luck (9.7 bits or none).
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl

    same_last = "last_key_l = last_key_r"
    forms = "list_has_any(first_forms_l, first_forms_r)"
    mailbox = (
        [
            cll.CustomLevel(
                f"{forms} AND ({mailbox_holds_surname('l', 'r')} OR "
                f"{mailbox_holds_surname('r', 'l')})",
                "same first name, other surname in the mailbox",
            )
        ]
        if with_mailbox
        else []
    )
    place = (
        [
            cll.CustomLevel(
                f"{forms} AND {shares_small_postcode()}",
                "same first name, other surname, one GB postcode",
            ).configure(u_probability=place_u, fix_u_probability=True)
        ]
        if place_u
        else []
    )
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
            cll.CustomLevel(f"{swapped('l', 'r')} OR {swapped('r', 'l')}", "swapped, changed"),
            cll.CustomLevel(
                f"{same_last} AND substr(first_name_l, 1, 1) = substr(first_name_r, 1, 1)",
                "same surname, same initial",
            ),
            *mailbox,
            *place,
            cll.CustomLevel(f"{forms}", "same first name, other surname"),
            cll.CustomLevel(same_last, "same surname, other first name"),
            cll.ElseLevel(),
        ],
    )


def swapped(a: str, b: str) -> str:
    """SQL: record ``a`` holds the names in swapped slots (its first name is ``b``'s
    surname) and its surname slot holds ``b``'s first name misspelt or a nickname of it
    (``moore anthoyn`` / ``anthony moore``, ``bell daniel`` / ``dan bell``). A swap
    alone sorts to the same full name; this is a swap with one more change."""
    return (
        f"(first_name_{a} = last_key_{b} AND (jaro_winkler_similarity(last_key_{a}, "
        f"first_name_{b}) >= 0.88 OR list_contains(first_forms_{b}, last_key_{a})))"
    )


MAILBOX_SURNAME_MIN = 3
"""Letters a surname needs before its presence in a mailbox name counts: ``li`` or ``ng``
sit inside too many mailbox names by chance."""


def mailbox_holds_surname(named: str, mailed: str) -> str:
    """SQL: record ``named``'s surname (spaces dropped: ``o connor`` -> ``oconnor``) is
    part of record ``mailed``'s mailbox name (the e-mail before the ``@``). Both sides are
    ``l`` or ``r``. False where either value is missing."""
    surname = f"replace(last_key_{named}, ' ', '')"
    box = f"split_part(email_key_{mailed}, '@', 1)"
    return (
        f"(length({surname}) >= {MAILBOX_SURNAME_MIN} AND "
        f"coalesce(contains({box}, {surname}), false))"
    )


GB_POSTCODE_SQL = "^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"
"""A full GB postcode as stored (upper case, spaces dropped: ``SW1A1AA``), the shape
:func:`storelens.cdp.normalise.region_of_postcode` reads as GB."""


def shares_small_postcode() -> str:
    """SQL: both records hold one full GB postcode (a street's few households, unlike a
    US ZIP or a German Postleitzahl, which hold thousands)."""
    return f"(postcode_l = postcode_r AND regexp_matches(postcode_l, '{GB_POSTCODE_SQL}'))"


def dob_comparison() -> Any:
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


def email_comparison() -> Any:
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


def phone_comparison() -> Any:
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


def place_level_share(frame: Any) -> float:
    """The share of all record pairs that fall in the joint name-and-place level (one
    first name, other surnames, one GB postcode, nothing an earlier name level takes):
    that level's u, counted exactly. The pairs share a postcode, so the count is a join
    on it and stays cheap at any size. 0.0 where the data has no such pair (FEBRL)."""
    import duckdb

    needed = ("unique_id", "first_name", "last_key", "name_key", "first_forms", "postcode")
    n = len(frame)
    if n < 2 or any(c not in frame.columns for c in needed):
        return 0.0
    cols = [*needed, *(["email_key"] if "email_key" in frame.columns else [])]
    part = frame[cols]
    side = {s: ", ".join(f"{c} AS {c}_{s}" for c in cols) for s in ("l", "r")}
    forms = "list_has_any(first_forms_l, first_forms_r)"
    earlier = [
        "name_key_l = name_key_r",
        "last_key_l = last_key_r",
        "(jaro_winkler_similarity(first_name_l, first_name_r) >= 0.88 AND "
        "jaro_winkler_similarity(last_key_l, last_key_r) >= 0.88)",
        f"{swapped('l', 'r')} OR {swapped('r', 'l')}",
    ]
    if "email_key" in cols:
        earlier.append(f"{mailbox_holds_surname('l', 'r')} OR {mailbox_holds_surname('r', 'l')}")
    con = duckdb.connect()
    con.register("part", part)
    sql = (
        f"SELECT count(*) FROM (SELECT {side['l']} FROM part) "
        f"JOIN (SELECT {side['r']} FROM part) ON postcode_l = postcode_r "
        f"AND unique_id_l < unique_id_r WHERE name_key_l IS NOT NULL AND "
        f"name_key_r IS NOT NULL AND {forms} AND {shares_small_postcode()} AND NOT "
        + " AND NOT ".join(f"coalesce({e}, false)" for e in earlier)
    )
    row = con.execute(sql).fetchone()
    hits = int(row[0]) if row else 0
    return hits / (n * (n - 1) / 2)
