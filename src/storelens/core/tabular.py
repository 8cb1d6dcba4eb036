"""CSV files users hand the command line: rows with their line numbers, and errors that
say where a file is bad without repeating what it holds.

Every reader of a user's file met the same failures one at a time, each found by a
review as a traceback: an Excel export in Windows-1252 or UTF-16, a directory or a
binary file given by mistake, a field over the csv module's size limit. They are read
here once, as :class:`TabularFileError` naming the line. A bad cell is described by its
shape (:func:`mask_value`), not its content: ids, e-mails and phone numbers end up in
the wrong column, and a command's output lands in logs that no erasure reaches.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TabularFileError", "csv_rows", "mask_value", "separator_hint", "shape"]

_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
_SAVE_AS = "save it as UTF-8 (Excel: 'CSV UTF-8')"


class TabularFileError(ValueError):
    """A file that cannot be read as CSV text; ``line`` is 1-based, None for the file."""

    def __init__(self, path: Path, message: str, line: int | None = None) -> None:
        self.path, self.message, self.line = path, message, line
        where = f"{path}: line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {message}")


def shape(text: str) -> str:
    """Letters as ``x``, digits as ``9``, everything else as it is."""
    return "".join("9" if c.isdigit() else "x" if c.isalpha() else c for c in text)


def separator_hint(header: Sequence[str]) -> str:
    """ "; the file looks semicolon-separated, ..." for a header read as one column
    because the file is not comma-separated (Excel in many locales saves ``;``), else
    "": "missing column order_id" alone sent users looking for a typo."""
    found = ", ".join(header)
    return next(
        (f"; the file looks {name}-separated, it must be comma-separated"
         for sep, name in ((";", "semicolon"), ("\t", "tab")) if sep in found),
        "",
    )  # fmt: skip


def mask_value(value: Any) -> str:
    """A value's shape without its content, so a message can circulate without leaking
    personal data.

    Letters become ``x`` and digits ``9`` while punctuation stays, which is what a user
    needs to see why a value failed (``99.99.9999`` is a date in the wrong format); an
    e-mail keeps its domain (``j•••@example.de``), which is not personal. Long values are
    cut (a 5 MB cell in an error message helps nobody).
    """
    text = str(value)
    local, at, domain = text.rpartition("@")
    if at and local and domain and "@" not in local:
        return f"{local[0]}•••@{domain[:60]}"
    return shape(text[:60]) + (f"… ({len(text):,} characters)" if len(text) > 60 else "")


def _opened(path: Path) -> None:
    """Refuse what is not a readable file of 8-bit text before reading it as CSV."""
    if path.is_dir():
        raise TabularFileError(path, "is a directory, not a file")
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        raise TabularFileError(path, "no such file") from None
    except OSError as exc:  # permissions, a device
        raise TabularFileError(path, f"cannot be read ({exc.strerror or exc})") from None
    for bom, name in _WIDE_BOMS:
        if head.startswith(bom):
            raise TabularFileError(path, f"is {name} text; {_SAVE_AS}")


def _first_undecodable_line(path: Path) -> int | None:
    """The line holding the first byte that is not UTF-8: text is decoded a block at a
    time, so the reader's own line count can be far short of it."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            try:
                decoder.decode(raw)
            except UnicodeDecodeError:
                return number
    return None


def csv_rows(path: Path, *, skipinitialspace: bool = False) -> Iterator[tuple[int, list[str]]]:
    """Each row of a UTF-8 CSV file (a byte-order mark allowed) with the line it ends on.

    Raises :class:`TabularFileError` for a missing file, a directory, UTF-16/32 text,
    bytes that are not UTF-8, a NUL byte (a binary file) and whatever else the csv
    reader refuses (an unclosed quote, a field over its size limit), with the line.
    """
    _opened(path)
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, skipinitialspace=skipinitialspace)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                line = _first_undecodable_line(path)
                raise TabularFileError(path, f"not UTF-8 text; {_SAVE_AS}", line) from None
            except csv.Error as exc:
                line = reader.line_num
                if "field larger than" in str(exc):
                    limit = csv.field_size_limit()
                    message = f"a field longer than {limit:,} characters"
                    raise TabularFileError(path, message, line) from None
                raise TabularFileError(path, f"not readable as CSV ({exc})", line) from None
            if any("\x00" in field for field in row):  # the csv module reads NUL since 3.11
                raise TabularFileError(path, "holds a NUL byte: not CSV text", reader.line_num)
            yield reader.line_num, row
