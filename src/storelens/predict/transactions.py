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
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from storelens.core.errors import StorelensError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["REQUIRED_COLUMNS", "TransactionFileError", "check_window", "read_transactions"]

REQUIRED_COLUMNS = ("customer_id", "date", "amount")
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


def _first_bad(frame: pd.DataFrame, mask: pd.Series, column: str) -> _Cell | None:
    """The first row where ``mask`` is true, as a file line and its raw value."""
    hits = mask.to_numpy().nonzero()[0]
    if len(hits) == 0:
        return None
    pos = int(hits[0])
    raw = frame[column].iloc[pos]
    return _Cell(line=pos + 1 + _HEADER_LINES, value="" if raw is None else str(raw))


def _check_rows(path: Path) -> None:
    """Every row has as many fields as the header. pandas reads a file whose only rows
    have one field more by taking the first column as an index, so every value moves one
    column left and the error blames the wrong column (a new user's report); a longer
    row further down stopped it with a traceback."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        rows = csv.reader(fh, skipinitialspace=True)  # as pandas reads it
        header = next(rows, None)
        if header is None:
            return  # empty: pandas says so
        for row in rows:
            if any(field.strip() for field in row) and len(row) != len(header):
                raise TransactionFileError(
                    f"{len(row)} fields where the header has {len(header)} (a stray comma, "
                    "or a value with a comma that needs quotes?)",
                    column="(row)",
                    line=rows.line_num,
                )


def read_transactions(source: Path | str) -> pd.DataFrame:
    """``customer_id`` (str), ``date`` (datetime64, day), ``amount`` (float), file order.

    Extra columns are dropped. Raises :class:`TransactionFileError` for a missing file
    or column, an empty customer id, an unparseable date, or a missing, non-numeric,
    non-finite or negative amount.
    """
    import pandas as pd

    path = Path(source)
    try:
        _check_rows(path)
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError as exc:
        raise TransactionFileError("no such file", column=str(path)) from exc
    except pd.errors.EmptyDataError as exc:
        raise TransactionFileError("the file is empty (no header)", column=str(path)) from exc
    raw.columns = [str(c).strip() for c in raw.columns]
    for column in REQUIRED_COLUMNS:
        if column not in raw.columns:
            found = ", ".join(raw.columns) or "none"
            raise TransactionFileError(
                f"missing column (found: {found})", column=column, line=_HEADER_LINES
            )
    frame = raw[list(REQUIRED_COLUMNS)].apply(lambda col: col.str.strip())

    bad = _first_bad(frame, frame["customer_id"] == "", "customer_id")
    if bad:
        raise TransactionFileError("empty customer id", column="customer_id", line=bad.line)

    when = pd.to_datetime(frame["date"], format="ISO8601", errors="coerce", utc=True)
    bad = _first_bad(frame, when.isna(), "date")
    if bad:
        raise TransactionFileError(
            f"cannot read {bad.value!r} as an ISO 8601 date", column="date", line=bad.line
        )

    amount = pd.to_numeric(frame["amount"], errors="coerce")
    bad = _first_bad(frame, amount.isna() | ~amount.abs().lt(float("inf")), "amount")
    if bad:
        raise TransactionFileError(
            f"cannot read {bad.value!r} as a finite number", column="amount", line=bad.line
        )
    bad = _first_bad(frame, amount < 0, "amount")
    if bad:
        raise TransactionFileError(
            f"negative amount {bad.value} (refunds are not purchases; drop or net them first)",
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


def check_window(calibration_end: date, holdout_end: date) -> None:
    """A holdout must end after the calibration does, or there is nothing to predict."""
    if holdout_end <= calibration_end:
        raise TransactionFileError(
            f"holdout end {holdout_end} is not after calibration end {calibration_end}",
            column="--holdout-end",
        )
