"""The golden record: one value per field from a customer's source records, and its source.

Each field has a survivorship rule because fields go stale differently. People move
and change numbers, so contact fields take the most recent value. A date of birth does
not change, so the most frequent value wins and a single typo is outvoted. Names come
from the most trusted system (the CRM a person signed up in beats a web-shop checkout
form). Every chosen value keeps the record it came from, so an analyst can see why the
profile says what it says, and how many records disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

__all__ = [
    "DEFAULT_RULES",
    "DEFAULT_TRUST",
    "GoldenValue",
    "Rule",
    "golden_record",
]

Rule = Literal["most_recent", "most_trusted", "most_frequent"]

DEFAULT_RULES: Mapping[str, Rule] = {
    "first_name": "most_trusted",
    "last_name": "most_trusted",
    "email": "most_recent",
    "phone": "most_recent",
    "address": "most_recent",
    "postcode": "most_recent",
    "city": "most_recent",
    "country": "most_recent",
    "dob": "most_frequent",
    "loyalty_id": "most_trusted",
    "greeting_name": "most_recent",  # the customer's latest wish
}
DEFAULT_TRUST: Sequence[str] = ("crm", "pos_loyalty", "pos", "app", "webshop")
"""Source systems from most to least trusted; unknown systems rank after these."""

_LINKED_FIELDS = {"address": ("postcode", "city", "country")}
"""Parts of an address come from the record that supplied the street, never mixed."""


@dataclass(frozen=True, slots=True)
class GoldenValue:
    value: Any
    source_system: str
    source_record_id: str
    updated_at: datetime
    rule: Rule
    agreeing: int
    """Records holding this value (after case and space folding)."""
    conflicting: int
    """Records holding a different, non-empty value."""

    def as_dict(self) -> dict[str, Any]:
        value = self.value.isoformat() if isinstance(self.value, date) else self.value
        return {
            "value": value,
            "source_system": self.source_system,
            "source_record_id": self.source_record_id,
            "updated_at": self.updated_at.isoformat(),
            "rule": self.rule,
            "agreeing": self.agreeing,
            "conflicting": self.conflicting,
        }


def _fold(value: Any) -> Any:
    return " ".join(value.lower().split()) if isinstance(value, str) else value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _trust_rank(trust: Sequence[str]) -> Mapping[str, int]:
    return {system: i for i, system in enumerate(trust)}


def _when(record: Mapping[str, Any]) -> datetime:
    ts = record.get("updated_at")
    return ts if isinstance(ts, datetime) else datetime.min.replace(tzinfo=UTC)


def golden_record(
    records: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Rule] | None = None,
    trust: Sequence[str] = DEFAULT_TRUST,
) -> dict[str, GoldenValue]:
    """Pick each field's surviving value from a customer's source records.

    Records are mappings with the customer fields plus ``source_system``,
    ``source_record_id`` and ``updated_at``. Fields no record holds are left out.
    Ties fall to recency, then trust, then record id, so the result is deterministic.
    """
    rules = {**DEFAULT_RULES, **(rules or {})}
    rank = _trust_rank(trust)
    unknown = len(rank)

    def trust_key(r: Mapping[str, Any]) -> int:
        return rank.get(str(r.get("source_system")), unknown)

    out: dict[str, GoldenValue] = {}
    address_from: Mapping[str, Any] | None = None
    for field, rule in rules.items():
        if rule not in ("most_recent", "most_trusted", "most_frequent"):
            raise ValueError(f"unknown survivorship rule {rule!r} for {field}")
        holders = [r for r in records if _present(r.get(field))]
        if not holders:
            continue
        counts = Counter(_fold(r[field]) for r in holders)
        linked_to = next((k for k, parts in _LINKED_FIELDS.items() if field in parts), None)
        if linked_to is not None and address_from is not None and _present(address_from.get(field)):
            chosen = address_from
        else:
            by_recency = sorted(
                holders,
                key=lambda r: (_when(r), -trust_key(r), str(r.get("source_record_id"))),
                reverse=True,
            )
            if rule == "most_recent":
                chosen = by_recency[0]
            elif rule == "most_trusted":
                chosen = min(by_recency, key=trust_key)  # stable: most recent among equals
            else:
                top = max(counts.values())
                chosen = next(r for r in by_recency if counts[_fold(r[field])] == top)
        if field in _LINKED_FIELDS:
            address_from = chosen
        folded = _fold(chosen[field])
        out[field] = GoldenValue(
            value=chosen[field],
            source_system=str(chosen["source_system"]),
            source_record_id=str(chosen["source_record_id"]),
            updated_at=_when(chosen),
            rule=rule,
            agreeing=counts[folded],
            conflicting=len(holders) - counts[folded],
        )
    return out
