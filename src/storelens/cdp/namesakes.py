"""Homes the records show to hold two people of one name: a father and son, a mother and
daughter given her name.

A ``Jr`` or ``Sr`` on a record says so, and so do two records of one full name at one
postcode whose birth dates cannot be one person's. At such a home, two records of that
name with different e-mail mailboxes are the two namesakes, not one person with two
accounts: the veto (:func:`storelens.cdp.matching_keys.clearly_different`) keeps them
apart there. Elsewhere a second mailbox proves nothing, since people keep several.
Pure: record values in, keys out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import combinations
from typing import Any

__all__ = ["home_key", "namesake_homes"]

HomeKey = tuple[str, str]


def home_key(record: Mapping[str, Any]) -> HomeKey | None:
    """A record's full name (sorted, folded) and postcode; None where either is missing."""
    name, postcode = record.get("name_key"), record.get("postcode")
    if isinstance(name, str) and name and isinstance(postcode, str) and postcode:
        return name, postcode
    return None


def namesake_homes(
    records: Iterable[Mapping[str, Any]], dobs_close: Callable[[str, str], bool]
) -> frozenset[HomeKey]:
    """Name-and-postcode keys where the records show two namesakes: a record with a
    suffix, or two birth dates that ``dobs_close`` says cannot be one person's."""
    suffixed: set[HomeKey] = set()
    born: dict[HomeKey, set[str]] = defaultdict(set)
    for record in records:
        key = home_key(record)
        if key is None:
            continue
        if record.get("suffix"):
            suffixed.add(key)
        dob = record.get("dob")
        if isinstance(dob, str) and dob:
            born[key].add(dob)
    apart = {
        key
        for key, dates in born.items()
        if any(not dobs_close(x, y) for x, y in combinations(sorted(dates), 2))
    }
    return frozenset(suffixed | apart)
