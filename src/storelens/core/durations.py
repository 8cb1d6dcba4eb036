"""Durations as a store manager reads a column of them: one unit for the column.

A table that said "88 s" above "1.6 min" made the reader compare unlike figures; the
dashboard's tables and the command line's both pick the unit once per column.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["duration_in", "duration_unit"]


def duration_unit(values: Iterable[float | None]) -> str:
    """One unit for a column of durations ("min" if any would be said in minutes):
    "88 s" above "1.6 min" in one column made a reader compare unlike figures."""
    return "min" if any(v is not None and v >= 90 for v in values) else "s"


def duration_in(seconds: float | None, unit: str) -> str:
    """``seconds`` in the column's unit from :func:`duration_unit`."""
    if seconds is None:
        return "–"
    return f"{seconds / 60:.1f} min" if unit == "min" else f"{seconds:.0f} s"
