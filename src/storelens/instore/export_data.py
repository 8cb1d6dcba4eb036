"""Exports' I/O half: read a store's days from the database, write Parquet and CSV.

Days are read and computed one at a time, so memory stays flat over a long range and
the command line can show progress per day. A directory export writes one file per
table and day (``zones/zones_cafe-01_2026-11-02.parquet``): a BI tool reads a table's
folder as one table, and exporting a day again replaces its file rather than adding
a second copy. Files are written beside their final name and renamed into place, so a
dashboard refreshing mid-export never reads half a file.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from sqlalchemy import Engine

from storelens import catalogue, stores
from storelens.core.errors import FieldError, InvalidInput, NotFound
from storelens.core.layout import StoreLayout, parse_layout
from storelens.core.spreadsheet import FORMULA_START
from storelens.instore.export_tables import (
    EXPORT_TABLES,
    DayInputs,
    ExportTable,
    export_schema,
    heat_table,
    operations_table,
    zones_table,
)
from storelens.instore.insights_data import load_heat, load_sales, local_period
from storelens.instore.insights_settings import InsightSettings
from storelens.instore.store import load_facts

__all__ = [
    "CSV_TYPE",
    "PARQUET_TYPE",
    "ExportSummary",
    "NoExportData",
    "day_tables",
    "export_days",
    "export_range",
    "store_layout",
    "table_bytes",
    "write_export_dir",
]

PARQUET_TYPE = "application/vnd.apache.parquet"
CSV_TYPE = "text/csv; charset=utf-8"


class NoExportData(NotFound):
    """Nothing happened in the store in the period: there is nothing to export."""


def store_layout(engine: Engine, store_id: str) -> StoreLayout:
    """The store's layout; NotFound for an unknown store or one without a layout."""
    with engine.connect() as conn:
        stores.get_store(conn, store_id)
        _, document = stores.get_layout(conn, store_id)
    return parse_layout(document, path=f"layout of {store_id}")


def export_days(first: date, last: date, max_days: int | None = None) -> list[date]:
    """The days from ``first`` to ``last`` inclusive; refuses a backwards or too long range."""
    if first > last:
        message = f"the period starts ({first}) after it ends ({last})"
        raise InvalidInput(message, [FieldError.at(("query", "to"), message, "range")])
    count = (last - first).days + 1
    if max_days is not None and count > max_days:
        message = f"the period spans {count} days; at most {max_days} per export"
        raise InvalidInput(message, [FieldError.at(("query", "to"), message, "range")])
    return [first + timedelta(days=i) for i in range(count)]


def _day_inputs(engine: Engine, layout: StoreLayout, day: date) -> DayInputs:
    since, until = local_period(day, day, layout.timezone)
    store_id = layout.store_id
    facts = load_facts(engine, store_id, since, until)
    with engine.connect() as conn:
        placed = catalogue.product_zones(conn)
    return DayInputs(
        layout=layout,
        day=day,
        since=since,
        until=until,
        visits=facts.zone_visits,
        sales=load_sales(engine, store_id, since, until),
        product_zones=placed,
        heat=load_heat(engine, store_id, since, until),
        facts=facts,
    )


def day_tables(
    engine: Engine,
    layout: StoreLayout,
    day: date,
    tables: Sequence[ExportTable] = EXPORT_TABLES,
    settings: InsightSettings | None = None,
) -> dict[ExportTable, pa.Table]:
    """The asked tables for one local day (possibly empty tables)."""
    inputs = _day_inputs(engine, layout, day)
    build: dict[ExportTable, Callable[[], pa.Table]] = {
        "zones": lambda: zones_table(inputs, settings),
        "operations": lambda: operations_table(inputs),
        "heat": lambda: heat_table(inputs),
    }
    return {name: build[name]() for name in tables}


def _check_table(table: str) -> ExportTable:
    for name in EXPORT_TABLES:
        if name == table:
            return name
    raise NotFound(f"no export table {table!r}; choose one of {', '.join(EXPORT_TABLES)}")


def export_range(
    engine: Engine,
    store_id: str,
    table: str,
    first: date,
    last: date,
    *,
    max_days: int | None = None,
    settings: InsightSettings | None = None,
) -> pa.Table:
    """One table over the days, concatenated; NoExportData when every day is empty."""
    name = _check_table(table)
    layout = store_layout(engine, store_id)
    days = export_days(first, last, max_days)
    parts = [day_tables(engine, layout, day, (name,), settings)[name] for day in days]
    result = pa.concat_tables(parts) if parts else export_schema(name).empty_table()
    if result.num_rows == 0:
        raise NoExportData(
            f"{store_id} has no {name} data from {first} to {last} "
            f"({layout.timezone}); pick a period with data"
        )
    return result


def table_bytes(table: pa.Table, fmt: str) -> bytes:
    """``table`` as a Parquet file (schema metadata kept) or as CSV with a header row."""
    sink = io.BytesIO()
    if fmt == "parquet":
        pq.write_table(table, sink, compression="zstd")
    elif fmt == "csv":
        pa_csv.write_csv(_inert_text(table), sink)
    else:
        raise ValueError(f"format must be csv or parquet, got {fmt!r}")
    return sink.getvalue()


def _inert_text(table: pa.Table) -> pa.Table:
    """Text columns with formula-looking cells quoted for spreadsheets (core.spreadsheet)."""
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = pc.replace_substring_regex(
                column, pattern=f"({FORMULA_START.pattern})", replacement="'\\1"
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


@dataclass
class ExportSummary:
    """What a directory export wrote: files, rows per table and the days with data."""

    files: list[Path] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    days_with_data: int = 0
    days: int = 0


def _write_atomically(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    pq.write_table(table, partial, compression="zstd")
    os.replace(partial, path)


def write_export_dir(
    engine: Engine,
    store_id: str,
    first: date,
    last: date,
    directory: Path,
    *,
    on_day: Callable[[date], None] | None = None,
    settings: InsightSettings | None = None,
) -> ExportSummary:
    """Write each day's non-empty tables under ``directory/<table>/``.

    NoExportData (and nothing written) when the whole period is empty; days without
    data get no file, so a BI tool never shows a gap as a day of zeros.
    """
    layout = store_layout(engine, store_id)
    days = export_days(first, last)
    summary = ExportSummary(rows=dict.fromkeys(EXPORT_TABLES, 0), days=len(days))
    for day in days:
        tables = day_tables(engine, layout, day, settings=settings)
        if any(t.num_rows for t in tables.values()):
            summary.days_with_data += 1
        for name, t in tables.items():
            if t.num_rows:  # an empty table is never written, so nothing is for an empty period
                path = directory / name / f"{name}_{store_id}_{day.isoformat()}.parquet"
                _write_atomically(t, path)
                summary.rows[name] += t.num_rows
                summary.files.append(path)
        if on_day is not None:
            on_day(day)
    if summary.days_with_data == 0:
        raise NoExportData(
            f"{store_id} has no zone visits, orders, shifts or heatmaps from {first} to {last} "
            f"({layout.timezone}); nothing was written"
        )
    return summary
