"""Transaction files for lifetime-value work: read, check, and point at the first bad cell.

A marketer's export is the usual input (``customer_id,date,amount`` plus whatever else
the till wrote), so a bad file must say *where* it is bad: the line number as a text
editor shows it (the header is line 1) and the column. Refunds (negative amounts) are
refused rather than netted, because BG/NBD counts purchases and a refund is not one.

Dates are ISO 8601 (``1997-01-01``, ``19970101`` or a timestamp); a timestamp with an
offset counts on its UTC day. Purchases are counted per customer per day downstream.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from storelens.core.errors import StorelensError
from storelens.core.tabular import TabularFileError, csv_rows, mask_value, separator_hint

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["REQUIRED_COLUMNS", "TransactionFileError", "check_window", "read_transactions"]

REQUIRED_COLUMNS = ("customer_id", "date", "amount")
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z_ ;\t]{0,39}")
FIRST_YEAR, LAST_YEAR = 1678, 2261
"""The whole years pandas' nanosecond timestamps hold."""
_HEADER_LINES = 1


class TransactionFileError(StorelensError, ValueError):
    """A transactions file or window that cannot be used; names the line and column.

    ``line`` is the 1-based line in the file (``None`` when the whole file or an option
    is at fault); ``column`` is the CSV column or the command-line option.
    """

    def __init__(self, message: str, *, column: str, line: int | None = None) -> None:
        self.line, self.column, self.message = line, column, message
        where = f"line {line}, column '{column}'" if line is not None else f"'{column}'"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class _Cell:
    line: int
    value: str


@dataclass(frozen=True, slots=True)
class _Rows:
    """The required columns' cells (stripped) and the line each row starts on."""

    columns: dict[str, list[str]]
    lines: list[int]


def _first_bad(rows: _Rows, mask: pd.Series, column: str) -> _Cell | None:
    """The first row where ``mask`` is true, as the line it starts on and its raw value."""
    hits = mask.to_numpy().nonzero()[0]
    if len(hits) == 0:
        return None
    pos = int(hits[0])
    return _Cell(line=rows.lines[pos], value=rows.columns[column][pos])


def _read_rows(path: Path) -> _Rows:
    """The file's rows as the csv module reads them, each with the line it starts on.

    The file is read once, by the csv module, and nothing else: it read the file for the
    checks and pandas read it again for the values, and the two disagreed. pandas skips
    blank lines and joins a quoted field over several lines, so an error after either
    named the wrong line (a new user's review); an unclosed quote passed the csv module's
    lenient check and stopped pandas with a traceback. It is refused here, naming the
    line its row starts on. Reading stays lenient otherwise (``"C1" ,2020-01-01`` reads
    as before; the strict reader refused it). Every row must have as many fields as the
    header: pandas took the first column of a file whose rows had one field more as an
    index, so the error blamed the wrong column; a row of empty fields (an export's
    trailing ``,,``) is skipped like a blank line."""
    try:
        rows = csv_rows(path, skipinitialspace=True)
        first = next(rows, None)
        if first is None:
            raise TransactionFileError("the file is empty (no header)", column=str(path))
        header = [h.strip() for h in first[1]]
        _check_header(header)
        where = [header.index(c) for c in REQUIRED_COLUMNS]
        columns: dict[str, list[str]] = {c: [] for c in REQUIRED_COLUMNS}
        lines: list[int] = []
        ended, line, last = first[0], first[0], first[1]
        for end, row in rows:
            line, ended, last = ended + 1, end, row  # a row starts after the last ended
            if not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise TransactionFileError(
                    f"{len(row)} fields where the header has {len(header)} (a stray comma, "
                    "or a value with a comma that needs quotes?)",
                    column="(row)",
                    line=line,
                )
            for column, at in zip(REQUIRED_COLUMNS, where, strict=True):
                columns[column].append(row[at].strip())
            lines.append(line)
    except TabularFileError as exc:
        column = "(file)" if exc.line is not None else str(path)
        raise TransactionFileError(exc.message, column=column, line=exc.line) from None
    if any("\n" in field or "\r" in field for field in last) and _quote_left_open(path, line):
        raise TransactionFileError(
            "a quote opened in this row is never closed: the rest of the file would be one value",
            column="(file)",
            line=line,
        )
    return _Rows(columns, lines)


def _quote_left_open(path: Path, start: int) -> bool:
    """Whether the file's last row, starting on line ``start``, runs to the end of the
    file inside a quote. Only such a row can: the lenient reader takes the rest of the
    file into the open field, so it is the last one read."""
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for _ in range(start - 1):
            fh.readline()
        try:
            for _ in csv.reader(fh, skipinitialspace=True, strict=True):
                pass
        except csv.Error:
            return True
    return False


def _shown(header: list[str]) -> str:
    """The header's names, each masked unless it reads as a column name: a file without a
    header row has a customer's id, date and amount there."""
    return ", ".join(h if _COLUMN_NAME.fullmatch(h) else mask_value(h) for h in header) or "none"


def _check_header(header: list[str]) -> None:
    """The three columns, once each; a semicolon or tab file is named as such."""
    for column in REQUIRED_COLUMNS:
        if header.count(column) > 1:
            raise TransactionFileError(
                "appears more than once in the header", column=column, line=_HEADER_LINES
            )
        if column not in header:
            raise TransactionFileError(
                f"missing column (found: {_shown(header)}){separator_hint(header)}",
                column=column,
                line=_HEADER_LINES,
            )


def read_transactions(source: Path | str) -> pd.DataFrame:
    """``customer_id`` (str), ``date`` (datetime64, day), ``amount`` (float), file order.

    Extra columns are dropped. Raises :class:`TransactionFileError` for a missing file
    or column, an empty customer id, an unparseable date, or a missing, non-numeric,
    non-finite or negative amount.
    """
    import pandas as pd

    path = Path(source)
    rows = _read_rows(path)
    if not rows.lines:
        raise TransactionFileError("the file has a header and no rows", column=str(path))
    frame = pd.DataFrame(rows.columns, dtype=str)

    bad = _first_bad(rows, frame["customer_id"] == "", "customer_id")
    if bad:
        raise TransactionFileError("empty customer id", column="customer_id", line=bad.line)

    when = pd.to_datetime(frame["date"], format="ISO8601", errors="coerce", utc=True)
    bad = _first_bad(rows, when.isna(), "date")
    if bad:
        raise TransactionFileError(_unreadable_date(bad.value), column="date", line=bad.line)

    amount = pd.to_numeric(frame["amount"], errors="coerce")
    bad = _first_bad(rows, amount.isna() | ~amount.abs().lt(float("inf")), "amount")
    if bad:
        raise TransactionFileError(
            f"cannot read a value shaped {mask_value(bad.value)!r} as a finite number",
            column="amount",
            line=bad.line,
        )
    bad = _first_bad(rows, amount < 0, "amount")
    if bad:
        raise TransactionFileError(
            "negative amount (refunds are not purchases; drop or net them first)",
            column="amount",
            line=bad.line,
        )
    return pd.DataFrame(
        {
            "customer_id": frame["customer_id"],
            "date": when.dt.tz_localize(None).dt.normalize(),
            "amount": amount.astype("float64"),
        }
    )


def _unreadable_date(value: str) -> str:
    """Why a date cell was refused, by the value's shape (never the value itself): its
    year only when the year is what is wrong (an hour of 25 on a good day is not)."""
    year = re.match(r"\d{4}", value)
    if year and not FIRST_YEAR <= int(year.group()) <= LAST_YEAR:
        return f"{int(year.group())} is outside the years this reads ({FIRST_YEAR}-{LAST_YEAR})"
    return f"cannot read a value shaped {mask_value(value)!r} as an ISO 8601 date"


def check_window(calibration_end: date, holdout_end: date) -> None:
    """A holdout must end after the calibration does, or there is nothing to predict;
    both within the years pandas' timestamps hold (year 1 was a traceback, a review)."""
    for option, day in (("--calibration-end", calibration_end), ("--holdout-end", holdout_end)):
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise TransactionFileError(
                f"{day} is outside the years this reads ({FIRST_YEAR}-{LAST_YEAR})",
                column=option,
            )
    if holdout_end <= calibration_end:
        raise TransactionFileError(
            f"holdout end {holdout_end} is not after calibration end {calibration_end}",
            column="--holdout-end",
        )
