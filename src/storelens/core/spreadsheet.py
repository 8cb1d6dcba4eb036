"""Text cells that a spreadsheet would run as a formula, made inert before they go in a CSV.

Till, staff and register ids arrive from device keys and names from customers, so an
export opened in Excel or LibreOffice must not treat ``=HYPERLINK(...)`` or
``@SUM(...)`` as a formula (OWASP "CSV injection"). The usual defence is used: a cell
that starts with one of ``= + - @``, a tab or a carriage return gets a leading ``'``,
which spreadsheets show as text and drop from the value. Parquet keeps values as they
are: its readers are typed tools, not spreadsheets.
"""

from __future__ import annotations

import re

__all__ = ["FORMULA_START", "inert_cell"]

# what a spreadsheet reads as the start of a formula (or DDE call)
FORMULA_START = re.compile(r"^[=+\-@\t\r]")


def inert_cell(value: object) -> object:
    """``value`` with a leading ``'`` if it is text a spreadsheet would evaluate."""
    if isinstance(value, str) and FORMULA_START.match(value):
        return "'" + value
    return value
