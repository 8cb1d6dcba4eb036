"""Data-quality report for one customer source import.

Normalisers turn bad input into ``None`` so one malformed record never stops a
batch; without this report those values would vanish silently. Comparing each row
before and after normalisation tells *missing* (nothing was there) from *invalid*
(something was there but it was not an e-mail, a phone number or a date), and
counting repeated keys within the file shows how dirty the source is before
identity resolution ever sees it. Pure: rows in, report out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from storelens.cdp.records import FIELDS, PREFERENCE_FIELDS
from storelens.core.tabular import mask_value  # one masking rule for every report

__all__ = [
    "DUPLICATE_KEYS",
    "MAX_EXAMPLES",
    "REPORTED_FIELDS",
    "DuplicateStats",
    "Example",
    "FieldStats",
    "QualityReport",
    "invalid_fields",
    "mask_value",
    "quality_report",
]

MAX_EXAMPLES = 5
REPORTED_FIELDS = (
    "source_record_id",
    *(f for f in FIELDS if f not in PREFERENCE_FIELDS),
)
DUPLICATE_KEYS = ("email", "phone", "loyalty_id", "source_record_id")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_WHAT = {
    "email": "e-mail address",
    "phone": "phone number",
    "dob": "date of birth",
    "country": "two-letter country code",
    "postcode": "postcode",
}


def _blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN from pandas/parquet
        return True
    return isinstance(value, str) and not value.strip()


def invalid_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, str]:
    """Fields whose value was present but did not survive normalisation, with a reason.

    Shared by the report and the importer so that what is counted as invalid is
    exactly what is rejected.
    """
    out: dict[str, str] = {}
    for name in FIELDS:
        raw = before.get(name)
        if _blank(raw):
            continue
        value = after.get(name)
        if name == "country" and value is not None and not _COUNTRY.match(str(value)):
            value = None
        if value is None:
            out[name] = f"not a valid {_WHAT.get(name, name.replace('_', ' '))}"
    return out


@dataclass(frozen=True, slots=True)
class Example:
    row: int
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "value": self.value}


@dataclass(slots=True)
class FieldStats:
    """``present + missing == rows``; ``invalid`` counts the present values that failed."""

    present: int = 0
    missing: int = 0
    invalid: int = 0
    missing_rows: list[int] = field(default_factory=list)
    invalid_examples: list[Example] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "present": self.present,
            "missing": self.missing,
            "invalid": self.invalid,
            "missing_rows": self.missing_rows,
            "invalid_examples": [e.as_dict() for e in self.invalid_examples],
        }


@dataclass(slots=True)
class DuplicateStats:
    """Rows repeating a value an earlier row already had (``duplicates``), in ``groups``
    distinct values; ``examples`` maps up to five such values to all their rows."""

    duplicates: int = 0
    groups: int = 0
    examples: dict[str, list[int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"duplicates": self.duplicates, "groups": self.groups, "examples": self.examples}


@dataclass(slots=True)
class QualityReport:
    rows: int = 0
    fields: dict[str, FieldStats] = field(default_factory=dict)
    duplicates: dict[str, DuplicateStats] = field(default_factory=dict)

    @property
    def invalid(self) -> int:
        return sum(s.invalid for s in self.fields.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "fields": {k: v.as_dict() for k, v in self.fields.items()},
            "duplicates": {k: v.as_dict() for k, v in self.duplicates.items()},
        }


def quality_report(
    rows_before_normalisation: Sequence[dict[str, Any]],
    rows_after: Sequence[dict[str, Any]],
    row_numbers: Sequence[int] | None = None,
) -> QualityReport:
    """Per-field present/missing/invalid counts and within-source duplicates.

    Both row lists use storelens field names (after the column mapping) and are
    aligned; ``row_numbers`` are what examples cite (file line numbers for CSV and
    JSON Lines), by default 1, 2, 3, …. Duplicates compare normalised values, so
    ``Anna@X.de`` and ``anna@x.de`` count as the same e-mail.
    """
    if len(rows_before_normalisation) != len(rows_after):
        raise ValueError("rows before and after normalisation must be aligned")
    numbers = list(row_numbers) if row_numbers is not None else None
    if numbers is None:
        numbers = list(range(1, len(rows_after) + 1))
    elif len(numbers) != len(rows_after):
        raise ValueError("row_numbers must have one number per row")

    stats = {name: FieldStats() for name in REPORTED_FIELDS}
    seen: dict[str, dict[str, list[int]]] = {key: {} for key in DUPLICATE_KEYS}
    for row, before, after in zip(numbers, rows_before_normalisation, rows_after, strict=True):
        bad = invalid_fields(before, after)
        for name, stat in stats.items():
            if _blank(before.get(name)):
                stat.missing += 1
                if len(stat.missing_rows) < MAX_EXAMPLES:
                    stat.missing_rows.append(row)
                continue
            stat.present += 1
            if name in bad:
                stat.invalid += 1
                if len(stat.invalid_examples) < MAX_EXAMPLES:
                    stat.invalid_examples.append(Example(row, mask_value(before.get(name))))
        for key in DUPLICATE_KEYS:
            value = after.get(key)
            if not _blank(value):
                seen[key].setdefault(str(value).strip(), []).append(row)

    duplicates: dict[str, DuplicateStats] = {}
    for key, by_value in seen.items():
        dup = DuplicateStats()
        for value, rows in by_value.items():
            if len(rows) < 2:
                continue
            dup.groups += 1
            dup.duplicates += len(rows) - 1
            if len(dup.examples) < MAX_EXAMPLES:
                shown = value if key == "source_record_id" else mask_value(value)
                dup.examples[shown] = rows
        duplicates[key] = dup
    return QualityReport(rows=len(rows_after), fields=stats, duplicates=duplicates)
