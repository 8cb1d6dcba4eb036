"""Transaction files: a bad cell is named by its line and column; extra columns are ignored."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from storelens.predict.transactions import TransactionFileError, check_window, read_transactions


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tx.csv"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> TransactionFileError:
    with pytest.raises(TransactionFileError) as caught:
        read_transactions(_write(tmp_path, text))
    return caught.value


def test_reads_required_columns_and_drops_the_rest(tmp_path: Path) -> None:
    frame = read_transactions(
        _write(
            tmp_path,
            "store,customer_id,amount,date\n"
            "s1,c1,10.5,2024-03-01\n"
            "s1, c2 ,0,2024-03-02T23:30:00+00:00\n"
            "s2,c1,3,20240305\n",
        )
    )
    assert list(frame.columns) == ["customer_id", "date", "amount"]
    assert frame["customer_id"].tolist() == ["c1", "c2", "c1"]
    assert frame["date"].tolist() == [
        pd.Timestamp("2024-03-01"),
        pd.Timestamp("2024-03-02"),
        pd.Timestamp("2024-03-05"),
    ]
    assert frame["amount"].tolist() == [10.5, 0.0, 3.0]


def test_offset_timestamps_count_on_their_utc_day(tmp_path: Path) -> None:
    frame = read_transactions(
        _write(tmp_path, "customer_id,date,amount\nc1,2024-03-02T01:00:00+02:00,1\n")
    )
    assert frame["date"].tolist() == [pd.Timestamp("2024-03-01")]


def test_missing_column_is_named(tmp_path: Path) -> None:
    err = _error(tmp_path, "customer_id,when,amount\nc1,2024-03-01,1\n")
    assert (err.line, err.column) == (1, "date")
    assert str(err) == "line 1, column 'date': missing column (found: customer_id, when, amount)"


def test_unparseable_date_names_line_and_column(tmp_path: Path) -> None:
    err = _error(
        tmp_path, "customer_id,date,amount\nc1,2024-03-01,1\nc2,2024-03-02,2\nc3,03/13/2024,3\n"
    )
    assert (err.line, err.column) == (4, "date")
    assert str(err) == (
        "line 4, column 'date': cannot read a value shaped '99/99/9999' as an ISO 8601 date"
    )


def test_negative_amount_names_line_and_column(tmp_path: Path) -> None:
    err = _error(tmp_path, "customer_id,date,amount\nc1,2024-03-01,1\nc1,2024-03-02,-4.5\n")
    assert (err.line, err.column) == (3, "amount")
    assert "negative amount" in str(err)


@pytest.mark.parametrize("bad", ["", "ten", "nan", "inf"])
def test_unreadable_amount_names_line_and_column(tmp_path: Path, bad: str) -> None:
    err = _error(tmp_path, f"customer_id,date,amount\nc1,2024-03-01,{bad}\n")
    assert (err.line, err.column) == (2, "amount")


def test_empty_customer_id_is_refused(tmp_path: Path) -> None:
    err = _error(tmp_path, "customer_id,date,amount\nc1,2024-03-01,1\n  ,2024-03-01,1\n")
    assert (err.line, err.column) == (3, "customer_id")


def test_missing_and_empty_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(TransactionFileError, match="no such file"):
        read_transactions(tmp_path / "absent.csv")
    assert "empty" in str(_error(tmp_path, ""))


@pytest.mark.parametrize("holdout_end", [date(2024, 6, 30), date(2024, 5, 1)])
def test_holdout_must_end_after_calibration(holdout_end: date) -> None:
    with pytest.raises(TransactionFileError) as caught:
        check_window(date(2024, 6, 30), holdout_end)
    assert caught.value.column == "--holdout-end"
    assert caught.value.line is None


@pytest.mark.parametrize(
    ("text", "line", "fields"),
    [
        # The only row has one field more: pandas took the first column as an index and
        # blamed the date column for the amount (a new user's report).
        ("customer_id,date,amount\nc1,2025-01-01,3.5,extra\n", 2, 4),
        # A longer row further down stopped the read with pandas' traceback.
        ("customer_id,date,amount\nc1,2025-01-01,3\nc2,2025-01-02,4\nc1,2025-01-03,5,x\n", 4, 4),
        ("customer_id,date,amount\nc1,2025-01-01,3\nc2,2025-01-02\n", 3, 2),
    ],
)
def test_a_row_with_the_wrong_number_of_fields_is_named(
    tmp_path: Path, text: str, line: int, fields: int
) -> None:
    err = _error(tmp_path, text)
    assert (err.line, err.column) == (line, "(row)")
    assert f"{fields} fields where the header has 3" in str(err)


def test_blank_lines_and_quoted_commas_are_not_ragged_rows(tmp_path: Path) -> None:
    # Spaces after the commas and a line of spaces too: pandas reads these, so the
    # field count must as well (a review found both refused).
    frame = read_transactions(
        _write(
            tmp_path,
            'customer_id,date,amount,note\n\nc1,2025-01-01,3,"a, b"\n'
            'c2, 2025-01-02, 4, "latte, large"\n   \n',
        )
    )
    assert frame["customer_id"].tolist() == ["c1", "c2"]


# A review fed these to `predict eval-clv`: each was a traceback, a silent wrong result,
# or an error quoting a customer's e-mail or phone back into logs.
@pytest.mark.parametrize(
    ("content", "line", "says"),
    [
        (b"customer_id,date,amount\nc1,2024-03-01,1\nc\xe9,2024-03-02,5\n", 3, "not UTF-8"),
        ("customer_id,date,amount\nc1,2024-03-01,1\n".encode("utf-16"), None, "UTF-16"),
        (b"customer_id,date,amount\nc1,2024-03-01,1\n\x00\x01\x02,x,y\n", 3, "NUL"),
        (b"customer_id,date,amount\nc1,2024-03-01," + b"9" * 200_000 + b"\n", 2, "longer than"),
        (b"customer_id,date,amount,amount\nc1,2024-03-01,1,-1\n", 1, "more than once"),
        (b"customer_id;date;amount\nc1;2024-03-01;1\n", 1, "semicolon-separated"),
        (b"customer_id,date,amount\n", None, "a header and no rows"),
        (b"customer_id,date,amount\nc1,2999-01-01,1\n", 2, "2999 is outside"),
    ],
)
def test_files_a_review_broke_are_refused_by_line(
    tmp_path: Path, content: bytes, line: int | None, says: str
) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(TransactionFileError) as caught:
        read_transactions(path)
    assert caught.value.line == line and says in str(caught.value)


def test_a_directory_is_named_as_one(tmp_path: Path) -> None:
    with pytest.raises(TransactionFileError, match="is a directory"):
        read_transactions(tmp_path)


@pytest.mark.parametrize(
    ("cell", "column", "shown"),
    [
        ("alice.smith@example.com", "date", "a•••@example.com"),
        ("+49 170 1234567", "amount", "+99 999 9999999"),
    ],
)
def test_a_bad_cell_is_described_by_its_shape_not_its_value(
    tmp_path: Path, cell: str, column: str, shown: str
) -> None:
    row = {"date": "2024-03-01", "amount": "1", column: cell}
    err = _error(tmp_path, f'customer_id,date,amount\nc1,"{row["date"]}","{row["amount"]}"\n')
    assert (err.line, err.column) == (2, column)
    assert shown in str(err) and cell not in str(err)


def test_a_file_without_a_header_row_is_not_quoted(tmp_path: Path) -> None:
    err = _error(tmp_path, "alice@example.com,2024-03-01,5\n")
    assert err.column == "customer_id" and "alice@" not in str(err)


@pytest.mark.parametrize(
    ("calibration_end", "holdout_end", "option"),
    [
        (date(1, 1, 1), date(2024, 1, 1), "--calibration-end"),
        (date(2024, 1, 1), date(9999, 12, 31), "--holdout-end"),
    ],
)
def test_window_dates_outside_what_pandas_holds_name_the_option(
    calibration_end: date, holdout_end: date, option: str
) -> None:
    """Year 1 was pandas' OutOfBoundsDatetime traceback (a review)."""
    with pytest.raises(TransactionFileError) as caught:
        check_window(calibration_end, holdout_end)
    assert caught.value.column == option and "outside the years" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # blank lines between rows: pandas skipped them and the error named line 3
        ("customer_id,date,amount\nA,1997-01-01,10\n\n\n\nA,1997-02-01,-5\n", 6),
        # a quoted note over three lines: the next row starts on line 5, not 3
        ('note,customer_id,date,amount\n"a\nb\nc",A,1997-01-01,1\nx,B,1997-01-02,-1\n', 5),
        # a row of empty fields (an export's trailing commas) is skipped, not a row
        ("customer_id,date,amount\n,,\nA,1997-01-01,-1\n", 3),
    ],
)
def test_the_line_named_is_the_line_a_text_editor_shows(
    tmp_path: Path, text: str, line: int
) -> None:
    err = _error(tmp_path, text)
    assert (err.line, err.column) == (line, "amount")


def test_a_quote_never_closed_is_refused_by_line_not_with_a_traceback(tmp_path: Path) -> None:
    err = _error(tmp_path, 'customer_id,date,amount\nA,1997-01-01,9\nB,1997-01-01,"10\n')
    assert (err.line, err.column) == (3, "(file)")
    assert "never closed" in str(err)
    # Opened early in a long file: the line it opens on, not the file's last (a review)
    rows = "".join(f"C{i},1997-01-02,{i}\n" for i in range(200))
    err = _error(tmp_path, f'customer_id,date,amount\nA,1997-01-01,9\nB,1997-01-01,"10\n{rows}')
    assert (err.line, err.column) == (3, "(file)")


def test_quoted_values_the_lenient_reader_took_are_still_read(tmp_path: Path) -> None:
    """The strict reader briefly refused these; pandas and the lenient reader take them."""
    frame = read_transactions(
        _write(
            tmp_path,
            'customer_id,date,amount,note\n"C1" ,2020-01-01,5,x\nC2,2020-01-02,6,"big" order\n'
            'C3,2020-01-03,7,"two\nlines"\n',
        )
    )
    assert frame["customer_id"].tolist() == ["C1", "C2", "C3"]
    assert frame["amount"].tolist() == [5.0, 6.0, 7.0]


@pytest.mark.parametrize("value", ["1997-01-01T25:00", "1997-01-01Z", "1997-13-01"])
def test_a_bad_date_in_a_good_year_does_not_blame_the_year(tmp_path: Path, value: str) -> None:
    err = _error(tmp_path, f"customer_id,date,amount\nA,{value},10\n")
    assert (err.line, err.column) == (2, "date")
    assert "ISO 8601" in str(err) and "outside the years" not in str(err)
    assert "1997" not in str(err)  # described by shape, not quoted


def test_a_year_outside_what_pandas_holds_is_named(tmp_path: Path) -> None:
    err = _error(tmp_path, "customer_id,date,amount\nA,1500-01-01,10\n")
    assert "1500 is outside the years this reads (1678-2261)" in str(err)
