"""``storelens ingest FILE``: a file of events into the log, every bad line accounted for.

Kept apart from ``cli.py`` because loading a file is a whole job of its own: a
progress bar with the rate, a summary, the rejected lines written out for fixing, and
the audit row that says which operator loaded which file about whom
(:mod:`storelens.privacy.writes`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy import Connection, Engine, select

from storelens.core.paths import unwritable, write_error
from storelens.ingest.batch import IngestReport, ingest_numbered
from storelens.ingest.files import count_items, read_items
from storelens.ingest.write_audit import audited
from storelens.privacy import audit
from storelens.processors import run_projections
from storelens.storage import migrate
from storelens.storage.command_line import (
    EXIT_FAILED,
    EXIT_INPUT,
    DbOption,
    print_error,
    settings_or_exit,
)
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import stores

__all__ = ["ingest", "ingest_file", "print_report", "progress_bar", "unknown_stores"]

console = Console()
err = Console(stderr=True, soft_wrap=True)


def progress_bar() -> Progress:
    """The bar long loads show (ingest, the demo's preparation): count, rate, time left."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def print_report(report: IngestReport, shown: int = 20) -> None:
    table = Table(title="ingest summary")
    for col in ("accepted", "duplicates", "rejected"):
        table.add_column(col, justify="right")
    table.add_row(str(report.accepted), str(report.duplicates), str(len(report.rejected)))
    console.print(table)
    if report.conflicts:
        err.print(
            f"  {report.conflicts} rejected line(s) reuse an id the log holds for a different "
            "event (id_conflict): give them new ids to store them"
        )
    for r in report.rejected[:shown]:
        detail = "; ".join(f"{e.loc}: {e.msg}" for e in r.errors)
        err.print(f"  line {r.index}: {escape(detail)}")
    if len(report.rejected) > shown:
        err.print(f"  … and {len(report.rejected) - shown} more (see --errors-out)")


def unknown_stores(engine: Engine, stored: Counter[str]) -> list[tuple[str, int]]:
    """``(store id, events)`` for each store a load stored events for that the database
    has no store for (no layout loaded yet). The events are kept: a layout loaded later
    finds them, so ``ingest`` warns and does not refuse."""
    with engine.connect() as conn:
        known = set(conn.execute(select(stores.c.id)).scalars())
    return sorted((s, n) for s, n in stored.items() if s not in known)


def ingest_file(
    engine_url: str, path: Path, fmt: str | None, batch_size: int
) -> tuple[IngestReport, list[tuple[str, int]]]:
    """Load the file; the report, and the :func:`unknown_stores` it stored events for."""
    engine = migrate.open_database(engine_url)
    event_log = EventLog(engine)
    total = count_items(path, fmt)
    operator = audit.operator()
    # who loaded which file, and about whom: a row per batch, committed with it
    audit_batch = audited(operator, None, channel="file", file=path.name)
    stored: Counter[str] = Counter()  # events stored (not duplicates) per store

    def then(conn: Connection, report: IngestReport) -> None:
        audit_batch(conn, report)
        stored.update(e.store_id for e in report.stored if e.store_id is not None)

    with progress_bar() as progress:
        task = progress.add_task(f"ingesting {path.name}", total=total, rate="")

        def advance(n: int) -> None:
            progress.advance(task, n)
            t = progress.tasks[task]
            if t.elapsed:
                progress.update(task, rate=f"{t.completed / t.elapsed:,.0f} ev/s")

        report = ingest_numbered(
            event_log,
            read_items(path, fmt),
            batch_size=batch_size,
            on_batch=advance,
            sent_by=operator.name,
            then=then,
        )
    run_projections(event_log)
    return report, unknown_stores(engine, stored)


def ingest(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="events as .jsonl, .csv or .parquet"
        ),
    ],
    database_url: DbOption = None,
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="jsonl, csv or parquet (default: from the file name)"),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 1000,
    errors_out: Annotated[
        Path | None, typer.Option(help="write every rejected line here as JSON Lines")
    ] = None,
) -> None:
    """Load events from a file; bad lines are reported with their line number, never dropped."""
    settings = settings_or_exit(database_url)
    if errors_out is not None and (problem := unwritable("--errors-out", errors_out)):
        print_error(problem)  # before the load: not after minutes of it
        raise typer.Exit(EXIT_INPUT)
    try:
        report, unknown = ingest_file(settings.database_url, file, fmt, batch_size)
    except ValueError as exc:
        print_error(str(exc))
        raise typer.Exit(EXIT_INPUT) from exc
    print_report(report)
    if unknown:
        named = ", ".join(f"{s} ({n:,} event{'s' * (n != 1)})" for s, n in unknown)
        err.print(
            f"[yellow]warning:[/yellow] kept events for stores with no layout loaded: "
            f"{escape(named)}; load theirs with `storelens layout load`"
        )
    if errors_out is not None:
        try:
            with errors_out.open("wb") as fh:
                for r in report.rejected:
                    line = {"line": r.index, "id": r.id, "errors": [e.as_dict() for e in r.errors]}
                    fh.write(orjson.dumps(line) + b"\n")
        except OSError as exc:  # the load is done; only the rejected lines' file is missing
            print_error(write_error("--errors-out", errors_out, exc))
            raise typer.Exit(EXIT_INPUT) from None
    if report.rejected:
        raise typer.Exit(EXIT_FAILED)
