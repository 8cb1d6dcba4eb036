"""Reading event files (JSON Lines, CSV, Parquet) as numbered raw items.

Each reader yields ``(line, item)``; a line that cannot even be parsed yields an
:class:`Unreadable` instead, so the caller reports it by line number and goes on.
CSV and Parquet hold one event per row: the envelope columns, and the payload either
as a JSON ``payload`` column or as ``payload.<field>`` columns.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "FORMATS",
    "Unreadable",
    "count_items",
    "detect_format",
    "json_cell",
    "read_items",
]

FORMATS = ("jsonl", "csv", "parquet")


@dataclass(frozen=True, slots=True)
class Unreadable:
    reason: str


Item = dict[str, Any] | Unreadable


def detect_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffixes and suffixes[-1] in (".csv", ".tsv"):
        return "csv"
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    raise ValueError(f"cannot tell the format of {path.name}: use --format {'/'.join(FORMATS)}")


def json_cell(value: Any) -> Any:
    """A CSV cell holding a JSON object or array, decoded; anything else as it was, so
    that validation later names the field rather than the reader failing here."""
    if isinstance(value, str) and value[:1] in "[{":
        with suppress(orjson.JSONDecodeError):
            return orjson.loads(value)
    return value


def _nest(row: dict[str, Any]) -> dict[str, Any]:
    """Turn flat columns into an envelope: ``payload`` JSON text or ``payload.x`` columns."""
    out: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or value == "":
            continue
        if key.startswith("payload."):
            name = key[len("payload.") :]
            payload[name] = json_cell(value)
        elif key == "payload" and isinstance(value, str):
            out["payload"] = orjson.loads(value)
        else:
            out[key] = value
    if payload:
        out.setdefault("payload", {}).update(payload)
    return out


def _jsonl(path: Path) -> Iterator[tuple[int, Item]]:
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield n, Unreadable(f"not valid JSON: {exc}")
                continue
            yield n, value if isinstance(value, dict) else Unreadable("not a JSON object")


ENVELOPE_COLUMNS = ("id", "type", "ts", "source")
"""Columns every event has; a file whose header lacks one is refused as a whole."""


def _check_header(path: Path, columns: list[str]) -> None:
    """Refuse a table whose header cannot hold events at all (a customer export, a file
    with its header missing): without this each row was rejected with pydantic's
    "Unable to extract tag using discriminator 'type'", which names no column."""
    missing = [c for c in ENVELOPE_COLUMNS if c not in columns]
    if missing:
        shown = ", ".join(columns[:12]) + (", …" if len(columns) > 12 else "")
        raise ValueError(
            f"{path.name}: no column {', '.join(missing)} in the header (found: {shown}); "
            "event files have the envelope columns id, type, ts, source (and store_id, "
            "subject) and the payload as a JSON payload column or payload.<field> columns"
        )


def _csv(path: Path) -> Iterator[tuple[int, Item]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        reader = csv.DictReader(fh, dialect=dialect)
        if reader.fieldnames is None:  # an empty file: nothing to read
            return
        _check_header(path, list(reader.fieldnames))
        for row in reader:
            line = reader.line_num
            if None in row:
                yield line, Unreadable("more values than header columns")
                continue
            try:
                yield line, _nest(row)
            except orjson.JSONDecodeError as exc:
                yield line, Unreadable(f"payload column is not valid JSON: {exc}")


def _parquet(path: Path) -> Iterator[tuple[int, Item]]:
    import pyarrow.parquet as pq

    n = 0
    table = pq.ParquetFile(path)
    _check_header(path, list(table.schema_arrow.names))
    for batch in table.iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            n += 1
            try:
                yield n, _nest(row)
            except orjson.JSONDecodeError as exc:
                yield n, Unreadable(f"payload column is not valid JSON: {exc}")


def read_items(path: Path, fmt: str | None = None) -> Iterator[tuple[int, Item]]:
    """Yield ``(line or row number, raw event or Unreadable)`` from an event file."""
    fmt = fmt or detect_format(path)
    readers = {"jsonl": _jsonl, "csv": _csv, "parquet": _parquet}
    if fmt not in readers:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return readers[fmt](path)


def count_items(path: Path, fmt: str | None = None) -> int | None:
    """Rows in the file, for a progress bar; cheap for Parquet, a line count otherwise."""
    fmt = fmt or detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open("rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - 1, 0) if fmt == "csv" else lines  # an empty CSV has no header row
