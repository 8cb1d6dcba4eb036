"""Issue 12, fourth slice: one first name under two surnames at one GB postcode is a
married name (one person); at one US ZIP it is mostly a neighbour. The joint level
fires only for the first, and its u is counted over all pairs, not sampled."""

from __future__ import annotations

import duckdb
import pandas as pd

from storelens.cdp.identity_settings import (
    full_name_comparison,
    place_level_share,
    shares_small_postcode,
)
from storelens.cdp.matching_keys import add_match_keys

LEVEL = "list_has_any(first_forms_l, first_forms_r) AND " + shares_small_postcode()


def _records(rows: list[tuple[str, str, str, str | None]]) -> pd.DataFrame:
    """Records as the importer leaves them (names already lower case), with match keys."""
    return add_match_keys(
        pd.DataFrame(
            {
                "unique_id": [r[0] for r in rows],
                "first_name": [r[1] for r in rows],
                "last_name": [r[2] for r in rows],
                "postcode": [r[3] for r in rows],
                "email": [None] * len(rows),
            }
        )
    )


def _level_hits(frame: pd.DataFrame) -> set[tuple[str, str]]:
    con = duckdb.connect()
    con.register("f", frame)
    cols = ("unique_id", "first_forms", "postcode")
    pick = {s: ", ".join(f"{c} AS {c}_{s}" for c in cols) for s in ("l", "r")}
    rows = con.execute(
        f"SELECT unique_id_l, unique_id_r FROM (SELECT {pick['l']} FROM f) "
        f"JOIN (SELECT {pick['r']} FROM f) ON unique_id_l < unique_id_r WHERE {LEVEL}"
    ).fetchall()
    return {(str(a), str(b)) for a, b in rows}


def test_a_married_name_at_one_gb_postcode_meets_the_level_a_us_neighbour_does_not() -> None:
    frame = _records(
        [
            ("pos:1", "emma", "begum", "CF101AB"),  # till card, married name
            ("crm:1", "emma", "mitchell", "CF101AB"),  # CRM record, maiden name
            ("pos:2", "jessica", "brown", "10027"),  # two women at one US ZIP
            ("crm:2", "jessica", "garcia", "10027"),
            ("pos:3", "liz", "hughes", "SW1A1AA"),  # a nickname counts as one first name
            ("crm:3", "elizabeth", "jones", "SW1A1AA"),
            ("pos:4", "emma", "begum", "CF101AD"),  # another GB postcode
        ]
    )
    assert _level_hits(frame) == {("crm:1", "pos:1"), ("crm:3", "pos:3")}


def test_the_levels_u_is_counted_over_all_pairs() -> None:
    frame = _records(
        [
            ("a", "emma", "begum", "CF101AB"),
            ("b", "emma", "mitchell", "CF101AB"),  # the level's one pair
            ("c", "emma", "begum", "CF101AB"),  # same name: the exact level takes it
            ("d", "jessica", "brown", "10027"),
            ("e", "jessica", "garcia", "10027"),  # US ZIP: not the level
            ("f", "tom", "begum", "CF101AB"),  # other first name
        ]
    )
    # pairs a-b and c-b; a-c is the exact level; 15 pairs in all
    assert place_level_share(frame) == 2 / 15
    assert place_level_share(frame[frame["postcode"] == "10027"]) == 0.0
    assert place_level_share(frame.drop(columns=["postcode"])) == 0.0


def test_the_level_is_in_the_model_only_where_the_data_holds_such_pairs() -> None:
    def labels(comparison: object) -> list[str]:
        levels = comparison.get_comparison("duckdb").as_dict()["comparison_levels"]  # type: ignore[attr-defined]
        return [str(level.get("label_for_charts")) for level in levels]

    with_place = labels(full_name_comparison(place_u=1e-7))
    assert "same first name, other surname, one GB postcode" in with_place
    assert "same first name, other surname, one GB postcode" not in labels(
        full_name_comparison(place_u=0.0)
    )
