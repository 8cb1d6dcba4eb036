"""Homes the records show to hold two people of one name: a father and son.

A ``Jr`` or ``Sr`` on any record of a name at a postcode says a same-name parent or
child lives there. At such a home, two records of that name with different e-mail
mailboxes are the two namesakes, not one person with two accounts: the veto
(:func:`storelens.cdp.matching_keys.clearly_different`) keeps them apart there.
Elsewhere a second mailbox proves nothing, since people keep several.

Two far-apart birth dates under one name and postcode are not taken as the same sign:
on data whose errors replace a birth date (the basic synthetic generator) that marks
one person's home, and splitting his records by mailbox cost recall (100,000 customers:
0.9637 -> 0.9626). Pure: record values in, keys out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["home_key", "namesake_homes"]

HomeKey = tuple[str, str]


def home_key(record: Mapping[str, Any]) -> HomeKey | None:
    """A record's full name (sorted, folded) and postcode; None where either is missing."""
    name, postcode = record.get("name_key"), record.get("postcode")
    if isinstance(name, str) and name and isinstance(postcode, str) and postcode:
        return name, postcode
    return None


def namesake_homes(records: Iterable[Mapping[str, Any]]) -> frozenset[HomeKey]:
    """Name-and-postcode keys where a record carries a suffix (``Jr``, ``Sr``)."""
    return frozenset(
        key for record in records if record.get("suffix") and (key := home_key(record))
    )
