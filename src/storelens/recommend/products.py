"""Product attributes for the offline evaluation: a ``product_id,category[,...]`` file.

Real retail catalogues have categories (an aisle, a department, a brand) that basket
files do not carry. ``storelens recommend eval --products FILE.csv`` reads them into the
token form content similarity already takes (``category:coffee``, ``brand:x``: one
token per non-empty cell, named by its column), and the blend's user x category
features read the ``category`` token. A product missing from the file, or with an
empty category, simply has no category: a partial map is the common case (a
catalogue export that lags the tills), not an error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from storelens.core.errors import FieldError, InvalidInput
from storelens.core.tabular import TabularFileError, csv_rows

__all__ = ["CATEGORY_PREFIX", "item_categories", "read_products_csv"]

CATEGORY_PREFIX = "category:"
_REQUIRED = ("product_id", "category")
_EXTRA_FIELDS = 16  # cells past the header's that a row may carry (trailing commas)


def read_products_csv(path: Path) -> dict[str, tuple[str, ...]]:
    """Each product's attribute tokens, ``column:value`` for every non-empty cell.

    Errors name the line and column: a missing required column, a short or overlong
    row, an empty ``product_id``, one product listed twice with different values, and
    what the CSV reader itself refuses (an unclosed quote, a field over its size limit,
    bytes that are not UTF-8), so a bad file is never a traceback.
    """
    try:
        return _read(path, csv_rows(path))
    except TabularFileError as exc:
        where = f"line.{exc.line}" if exc.line is not None else "file"
        raise InvalidInput(str(exc), [FieldError(where, exc.message, "unreadable")]) from None


def _read(path: Path, reader: Iterator[tuple[int, list[str]]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    first_line: dict[str, int] = {}
    header = next(reader, None)
    if header is None:
        raise InvalidInput(f"{path}: empty file", [FieldError("header", "no header", "empty")])
    names = [h.strip() for h in header[1]]
    missing = [c for c in _REQUIRED if c not in names]
    if missing:
        raise InvalidInput(
            f"{path}: line 1: missing column(s) {', '.join(missing)}",
            [FieldError(f"header.{c}", "column is required", "missing") for c in missing],
        )
    key = names.index("product_id")
    columns = [(i, n) for i, n in enumerate(names) if i != key and n]
    width = max(names.index(c) for c in _REQUIRED) + 1
    for line, rec in reader:
        if not rec:
            continue
        if len(rec) > len(names) + _EXTRA_FIELDS:
            raise InvalidInput(
                f"{path}: line {line} has {len(rec)} fields, the header names {len(names)}",
                [FieldError(f"line.{line}", "too many fields", "long_row")],
            )
        if len(rec) < width:
            raise InvalidInput(
                f"{path}: line {line} has {len(rec)} fields, needs at least {width}",
                [FieldError(f"line.{line}", "too few fields", "short_row")],
            )
        product = rec[key].strip()
        if not product:
            raise InvalidInput(
                f"{path}: line {line}, column product_id is empty",
                [FieldError(f"line.{line}.product_id", "must not be empty", "missing")],
            )
        tokens = tuple(
            f"{name}:{rec[i].strip()}" for i, name in columns if i < len(rec) and rec[i].strip()
        )
        if product in out and out[product] != tokens:
            raise InvalidInput(
                f"{path}: line {line}, column product_id: {product!r} is already "
                f"listed with other values on line {first_line[product]}",
                [FieldError(f"line.{line}.product_id", "listed twice", "duplicate")],
            )
        out[product] = tokens
        first_line.setdefault(product, line)
    if not out:
        raise InvalidInput(f"{path}: no products", [FieldError("rows", "no data rows", "empty")])
    return out


def item_categories(
    items: Sequence[str], attributes: Mapping[str, Sequence[str]]
) -> NDArray[np.int64]:
    """Each item's category as an index (in order of first appearance), -1 for none."""
    index: dict[str, int] = {}
    out = np.full(len(items), -1, dtype=np.int64)
    for i, product in enumerate(items):
        for token in attributes.get(product, ()):
            if token.startswith(CATEGORY_PREFIX) and len(token) > len(CATEGORY_PREFIX):
                out[i] = index.setdefault(token, len(index))
                break
    return out
