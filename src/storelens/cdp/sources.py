"""Importing customer records from a source system's export (CSV, Parquet, JSON/JSONL).

Every source names its columns its own way (``Vorname``, ``E-Mail``, ``Kundennummer``),
so each has a field mapping onto the storelens fields; a typo in a mapping fails
loudly before anything is written rather than silently dropping a column. Rows are
normalised, checked, and stored as ``customer.upserted`` events whose ids are a keyed
hash of their content (``records.ImportIds``), so importing the same export again
stores nothing twice.

A row is rejected (with its row number and field errors) only when it has no record
id or repeats a record id an earlier row of the same file had (one would silently
overwrite the other). A value that is present but not valid (an e-mail without ``@``,
a phone that parses in no region the record suggests, a placeholder date) is *flagged*:
nulled for matching, its shape kept in the result (``+99 (9)99 …``, never the value),
and the record imported, because a CDP must not lose a customer over one field.
``reject_invalid=True`` (``--strict`` on the command line) rejects such rows instead.
"""

from __future__ import annotations

import csv
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection

from storelens.cdp.normalise import normalise_record
from storelens.cdp.quality import QualityReport, invalid_fields, mask_value, quality_report
from storelens.cdp.records import FIELDS, ImportIds, customer_events
from storelens.core.errors import FieldError, InvalidInput
from storelens.ingest.batch import IngestReport, InTransaction, RejectedItem, ingest_items
from storelens.storage.eventlog import EventLog

__all__ = [
    "BATCH",
    "TARGETS",
    "FlaggedField",
    "ImportResult",
    "MappingError",
    "RejectedRow",
    "SourceConfig",
    "SourceRows",
    "apply_mapping",
    "check_mapping",
    "import_customers",
    "load_mapping",
    "load_sources",
    "read_rows",
]

TARGETS = ("source_record_id", *FIELDS)
BATCH = 1000
"""Records per transaction, and per audit row, of an import."""
FLAGS_SHOWN = 100
"""Flagged fields listed one by one in :meth:`ImportResult.as_dict` (counts cover all)."""


class MappingError(InvalidInput):
    """A field mapping or mapping file that cannot be used as it is."""

    where = ("mapping",)
    error_type = "mapping"


@dataclass(frozen=True, slots=True)
class SourceConfig:
    fields: dict[str, str]
    default_region: str | None = None


def check_mapping(mapping: Mapping[str, str]) -> dict[str, str]:
    """The mapping as a plain dict, or :class:`MappingError` naming the bad target."""
    out: dict[str, str] = {}
    used: dict[str, str] = {}
    for column, target in mapping.items():
        if not isinstance(target, str) or target not in TARGETS:
            raise MappingError(
                f"column {column!r} maps to unknown field {target!r}; "
                f"known fields: {', '.join(TARGETS)}"
            )
        if target in used:
            raise MappingError(f"columns {used[target]!r} and {column!r} both map to {target!r}")
        used[target] = column
        out[str(column)] = target
    return out


def load_sources(path: Path) -> dict[str, SourceConfig]:
    """Every ``[sources.<name>]`` table of a TOML file: ``fields`` and ``default_region``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML: {exc}") from exc
    sources = data.get("sources")
    if not isinstance(sources, dict):
        raise MappingError(f"{path}: no [sources.<name>] tables")
    out: dict[str, SourceConfig] = {}
    for name, table in sources.items():
        fields = table.get("fields", {}) if isinstance(table, dict) else None
        if not isinstance(fields, dict):
            raise MappingError(f"{path}: [sources.{name}.fields] must be a table")
        try:
            checked = check_mapping(fields)
        except MappingError as exc:
            raise MappingError(f"{path} [sources.{name}.fields]: {exc}") from exc
        region = table.get("default_region")
        out[name] = SourceConfig(checked, str(region).upper() if region else None)
    return out


def load_mapping(path: Path, source_system: str) -> dict[str, str]:
    """The field mapping of one source from a TOML file (``[sources.crm.fields]``)."""
    sources = load_sources(path)
    if source_system not in sources:
        known = ", ".join(sorted(sources)) or "none"
        raise MappingError(f"{path}: no [sources.{source_system}] (sources there: {known})")
    return sources[source_system].fields


def apply_mapping(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    """Rename mapped columns; columns already named as a storelens field pass through."""
    out: dict[str, Any] = {}
    for column, value in row.items():
        target = mapping.get(column)
        if target is None and column in TARGETS and column not in mapping.values():
            target = column
        if target is not None:
            out[target] = value
    return out


@dataclass(slots=True)
class SourceRows:
    """Rows read from a file with the numbers reports cite: file line for CSV and JSON
    Lines (the header is line 1), position (from 1) for Parquet and JSON arrays."""

    numbers: list[int]
    rows: list[dict[str, Any]]
    columns: list[str]


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        reader = csv.DictReader(fh, dialect=dialect)
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if k is not None}


def _parquet_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq

    n = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            n += 1
            yield n, row


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    text = path.read_bytes()
    if text.lstrip()[:1] == b"[":
        items = orjson.loads(text)
        numbered = list(enumerate(items, start=1))
    else:
        numbered = [
            (n, orjson.loads(line))
            for n, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    for n, item in numbered:
        if not isinstance(item, dict):
            raise ValueError(f"{path.name}:{n}: not a JSON object")
        yield n, item


def read_rows(path: Path) -> SourceRows:
    """All rows of a CSV/TSV, Parquet or JSON (array or lines) customer export."""
    suffix = path.suffix.lower()
    readers: dict[str, Callable[[Path], Iterator[tuple[int, dict[str, Any]]]]] = {
        ".csv": _csv_rows,
        ".tsv": _csv_rows,
        ".parquet": _parquet_rows,
        ".pq": _parquet_rows,
        ".json": _json_rows,
        ".jsonl": _json_rows,
        ".ndjson": _json_rows,
    }
    if suffix not in readers:
        raise ValueError(f"cannot read {path.name}: use .csv, .tsv, .parquet, .json or .jsonl")
    try:
        numbered = list(readers[suffix](path))
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path.name}: not valid JSON: {exc}") from exc
    columns: dict[str, None] = {}
    for _, row in numbered:
        columns.update(dict.fromkeys(row))
    return SourceRows([n for n, _ in numbered], [r for _, r in numbered], list(columns))


@dataclass(frozen=True, slots=True)
class RejectedRow:
    row: int
    errors: list[FieldError]

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "errors": [e.as_dict() for e in self.errors]}


@dataclass(frozen=True, slots=True)
class FlaggedField:
    """A value nulled for matching: where it was and its shape, so a steward can fix the
    source without the report carrying the personal value itself."""

    row: int
    field: str
    shape: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "shape": self.shape, "reason": self.reason}


@dataclass(slots=True)
class ImportResult:
    source_system: str
    rows: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)
    conflicts: int = 0  # of the rejected: an id that names a different event (see ingest.batch)
    ignored_columns: list[str] = field(default_factory=list)
    quality: QualityReport = field(default_factory=QualityReport)
    flagged: list[FlaggedField] = field(default_factory=list)

    def flagged_by_field(self) -> dict[str, int]:
        """How many imported records had each field flagged (and nulled)."""
        counts: dict[str, int] = {}
        for flag in self.flagged:
            counts[flag.field] = counts.get(flag.field, 0) + 1
        return dict(sorted(counts.items()))

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_system": self.source_system,
            "rows": self.rows,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "conflicts": self.conflicts,
            "errors": [r.as_dict() for r in self.rejected],
            "ignored_columns": self.ignored_columns,
            "flagged": self.flagged_by_field(),
            "flagged_fields": [f.as_dict() for f in self.flagged[:FLAGS_SHOWN]],
            "quality": self.quality.as_dict(),
        }


def _record_id(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def import_customers(
    log: EventLog,
    source_system: str,
    path: Path,
    mapping: Mapping[str, str] | None = None,
    default_region: str = "DE",
    *,
    ids: ImportIds,
    reject_invalid: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    sent_by: str | None = None,
    then: InTransaction | None = None,
) -> ImportResult:
    """Import one export of ``source_system`` as ``customer.upserted`` events.

    The ``customers`` table is a projection of those events: the caller wakes the
    projections' owner (or runs them) afterwards; an importer never runs them itself.

    ``on_progress(done, total)`` is called after each stored batch (for a progress bar);
    ``then`` runs in each batch's transaction (the import's audit rows).
    Raises :class:`MappingError` for an unusable mapping, ``ValueError`` for a file it
    cannot read; bad rows never raise, they come back in ``rejected``. Invalid values
    come back in ``flagged`` (their records imported without them) unless
    ``reject_invalid`` rejects their rows.
    """
    checked = check_mapping(mapping or {})
    source = read_rows(path)
    # Unmapped columns, and a column named like a field another column is mapped onto
    # (the mapped one wins): that one was dropped without a word (a new user's report).
    overridden = set(checked.values())
    ignored = [
        c for c in source.columns if c not in checked and (c not in TARGETS or c in overridden)
    ]
    has_id = "source_record_id" in checked.values() or "source_record_id" in source.columns
    if source.rows and not has_id:
        raise MappingError(
            f"no column of {path.name} maps to 'source_record_id' "
            f"(columns: {', '.join(source.columns)})"
        )
    before = [apply_mapping(row, checked) for row in source.rows]
    after = []
    for row in before:
        norm = normalise_record(row, default_region)
        norm["source_record_id"] = _record_id(row.get("source_record_id"))
        after.append(norm)
    result = ImportResult(source_system, rows=len(before), ignored_columns=ignored)
    result.quality = quality_report(before, after, source.numbers)

    keep: list[tuple[int, dict[str, Any]]] = []
    seen_ids: dict[str, int] = {}
    for number, raw, norm in zip(source.numbers, before, after, strict=True):
        errors: list[FieldError] = []
        record_id = norm["source_record_id"]
        if record_id is None:
            errors.append(FieldError("source_record_id", "missing record id", "missing"))
        elif record_id in seen_ids:
            msg = f"record id {record_id!r} already on row {seen_ids[record_id]}"
            errors.append(FieldError("source_record_id", msg, "duplicate_id"))
        else:
            seen_ids[record_id] = number
        bad = invalid_fields(raw, norm)
        if reject_invalid:
            errors.extend(FieldError(name, msg, "invalid") for name, msg in bad.items())
        if errors:
            result.rejected.append(RejectedRow(number, errors))
            continue
        result.flagged.extend(
            FlaggedField(number, name, mask_value(raw[name]), msg) for name, msg in bad.items()
        )
        fields = {k: norm.get(k) for k in TARGETS}
        keep.append((number, {k: (None if k in bad else v) for k, v in fields.items()}))

    refused = [RejectedItem(r.row, r.errors) for r in result.rejected]  # never reached the log

    def with_refused(conn: Connection, report: IngestReport) -> None:
        """The first batch's row also counts the rows refused before the log."""
        assert then is not None
        then(conn, replace(report, rejected=[*refused, *report.rejected]))
        refused.clear()

    # At least one batch: an import that stored nothing still leaves its audit row.
    for start in range(0, max(len(keep), 1), BATCH):
        chunk = keep[start : start + BATCH]
        rows = [r for _, r in chunk]
        events = customer_events(source_system, rows, ids)
        hook = None if then is None else with_refused
        report = ingest_items(log, events, sent_by=sent_by, then=hook)
        result.accepted += report.accepted
        result.duplicates += report.duplicates
        result.conflicts += report.conflicts
        result.rejected.extend(RejectedRow(chunk[r.index][0], r.errors) for r in report.rejected)
        if on_progress is not None:
            on_progress(min(start + BATCH, len(keep)), len(keep))
    result.rejected.sort(key=lambda r: r.row)
    return result
