"""The verification scan: after an erasure, look everywhere for what is left of the person.

Three independent looks, so that one store's bug cannot hide its own leftovers:

1. every registered store's exporter, run again (what it still returns is a trace);
2. every text and JSON column of every table in the live database, found by reflection
   (so tables added by later migrations are searched without being named anywhere);
3. the configured log files, line by line.

A trace names where it is and what kind of identifier it is (id, email, phone, name),
never the value: the report is shown and may be logged, and must not re-leak the person.
A row that matches by name alone and belongs to a customer still on file is another
person with the same name (the subject's own rows are gone, and would hold one of their
ids besides): it is counted apart, as a namesake, and is no trace.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData

from storelens.privacy.registry import PersonalStore, Subject, SubjectRequest, registered_stores
from storelens.privacy.subject import current_ids
from storelens.privacy.traces import (
    Matcher,
    by_name_alone,
    mentioning_rows,
    row_owner,
    text_columns,
)

__all__ = ["ScanReport", "Trace", "expand_log_paths", "scan_subject"]


@dataclass(frozen=True, slots=True)
class Trace:
    """``count`` items of ``kind`` left at ``location``: ``store:x``, ``table:x`` or ``file:x``."""

    location: str
    kind: str
    count: int
    column: str | None = None


@dataclass(slots=True)
class ScanReport:
    traces: list[Trace] = field(default_factory=list)
    namesakes: list[Trace] = field(default_factory=list)  # other customers, same name
    stores: int = 0
    tables: int = 0
    columns: int = 0
    files: int = 0
    identifiers: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(t.count for t in self.traces)

    def as_dict(self) -> dict[str, Any]:
        return {
            "traces": self.total,
            "found": [
                {"location": t.location, "column": t.column, "kind": t.kind, "count": t.count}
                for t in self.traces
            ],
            "namesakes": [
                {"location": t.location, "column": t.column, "count": t.count}
                for t in self.namesakes
            ],
            "searched": {
                "stores": self.stores,
                "tables": self.tables,
                "columns": self.columns,
                "files": self.files,
                "identifiers": dict(self.identifiers),
            },
        }


def expand_log_paths(patterns: Iterable[str]) -> tuple[Path, ...]:
    """Configured log paths with globs expanded (``server.log*`` takes rotated files too)."""
    out: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(str(Path(pattern).expanduser())))
        out += [Path(m) for m in matches] if matches else [Path(pattern).expanduser()]
    return tuple(dict.fromkeys(out))


def _identifier_counts(subject: Subject) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind, _ in subject.identifiers():
        counts[kind] = counts.get(kind, 0) + 1
    if subject.names:
        counts["name"] = len(subject.names)
    return counts


def _stores(
    engine: Engine, subject: Subject, stores: Sequence[PersonalStore], log_paths: tuple[Path, ...]
) -> list[Trace]:
    traces = []
    with engine.connect() as conn:
        request = SubjectRequest(conn, subject, log_paths=log_paths)
        for store in stores:
            left = len(store.export(request))
            if left:
                traces.append(Trace(f"store:{store.name}", "record", left))
    return traces


def _tables(engine: Engine, matcher: Matcher, report: ScanReport) -> list[Trace]:
    live = MetaData()
    live.reflect(bind=engine)
    traces = []
    with engine.connect() as conn:
        for table in live.sorted_tables:
            columns = text_columns(table)
            report.tables += 1
            report.columns += len(columns)
            counts: dict[tuple[str, str], int] = {}
            others: dict[str, int] = {}
            for row, kinds in mentioning_rows(conn, table, matcher, columns):
                if _namesake(conn, row, kinds):
                    for column in kinds:
                        others[column] = others.get(column, 0) + 1
                    continue
                for column, found in kinds.items():
                    for kind in found:
                        counts[(column, kind)] = counts.get((column, kind), 0) + 1
            traces += [
                Trace(f"table:{table.name}", kind, n, column)
                for (column, kind), n in sorted(counts.items())
            ]
            report.namesakes += [
                Trace(f"table:{table.name}", "name", n, column)
                for column, n in sorted(others.items())
            ]
    return traces


def _namesake(conn: Connection, row: dict[str, Any], kinds: dict[str, set[str]]) -> bool:
    """A row found by name alone that belongs to a customer still on file (by its
    ``customer_id``, or a customer record event by its ``source:record`` key)."""
    if not by_name_alone(kinds):
        return False
    owner = row_owner(row)
    return owner is not None and bool(current_ids(conn, {owner}))


def _files(matcher: Matcher, log_paths: tuple[Path, ...], report: ScanReport) -> list[Trace]:
    traces = []
    for path in log_paths:
        if not path.is_file():
            continue
        report.files += 1
        counts: dict[str, int] = {}
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                for kind in matcher.kinds_in(line):
                    counts[kind] = counts.get(kind, 0) + 1
        traces += [Trace(f"file:{path}", kind, n) for kind, n in sorted(counts.items())]
    return traces


def scan_subject(
    engine: Engine,
    subject: Subject,
    log_paths: tuple[Path, ...] = (),
    stores: Sequence[PersonalStore] | None = None,
) -> ScanReport:
    """Search every registered store, every table and every log file for ``subject``."""
    stores = list(stores if stores is not None else registered_stores())
    matcher = Matcher(subject)
    report = ScanReport(stores=len(stores), identifiers=_identifier_counts(subject))
    report.traces += _stores(engine, subject, stores, log_paths)
    report.traces += _tables(engine, matcher, report)
    report.traces += _files(matcher, log_paths, report)
    return report
