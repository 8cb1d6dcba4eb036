"""Reading users' CSV files: the line a bad file is bad on, and values shown by shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from storelens.core.tabular import TabularFileError, csv_rows, mask_value


def test_rows_come_with_the_line_they_end_on(tmp_path: Path) -> None:
    f = tmp_path / "a.csv"
    f.write_text('\ufeffa,b\n1,"two\nlines"\n3,4\n')
    assert list(csv_rows(f)) == [(1, ["a", "b"]), (3, ["1", "two\nlines"]), (4, ["3", "4"])]


def test_a_bad_byte_far_into_the_file_is_found_on_its_line(tmp_path: Path) -> None:
    """Text is decoded a block at a time: the reader's own count stops short of it."""
    f = tmp_path / "a.csv"
    f.write_bytes(b"a,b\n" + b"1,2\n" * 5000 + b"3,caf\xe9\n" + b"5,6\n" * 10)
    with pytest.raises(TabularFileError) as caught:
        list(csv_rows(f))
    assert caught.value.line == 5002 and "not UTF-8" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("a,b\n1,2\n".encode("utf-32"), "UTF-32"),
        ("a,b\n1,2\n".encode("utf-16-be"), "NUL byte"),  # no BOM: valid UTF-8, with NULs
    ],
)
def test_wide_text_is_named(tmp_path: Path, content: bytes, says: str) -> None:
    f = tmp_path / "a.csv"
    f.write_bytes(content)
    with pytest.raises(TabularFileError, match=says):
        list(csv_rows(f))


def test_missing_files_and_directories(tmp_path: Path) -> None:
    with pytest.raises(TabularFileError, match="no such file"):
        list(csv_rows(tmp_path / "absent.csv"))
    with pytest.raises(TabularFileError, match="is a directory"):
        list(csv_rows(tmp_path))


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("ada@example.org", "a•••@example.org"),
        ("+49 30 901820", "+99 99 999999"),
        ("03/13/2024", "99/99/9999"),
        ("x" * 5000, "x" * 60 + "… (5,000 characters)"),
    ],
)
def test_a_value_is_shown_by_its_shape(value: str, shown: str) -> None:
    assert mask_value(value) == shown
