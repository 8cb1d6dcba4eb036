"""``storelens export``: a store's daily aggregates as Parquet files a BI tool reads.

An empty period writes nothing and exits with code 2, like ``storelens insights``: a
scheduled export that silently produced no files would leave a dashboard showing stale
numbers as if they were current, so cron must see the failure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from storelens.config import Settings
from storelens.core.errors import InvalidInput, NotFound
from storelens.core.paths import unwritable, write_error
from storelens.instore.cli_insights import cli_failure, parse_day
from storelens.instore.export_data import export_days, store_layout, write_export_dir
from storelens.processors import run_projections
from storelens.storage import migrate
from storelens.storage.command_line import DbOption
from storelens.storage.eventlog import EventLog

__all__ = ["export_command"]

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def export_command(
    store: Annotated[str, typer.Option(help="store id")],
    from_: Annotated[str, typer.Option("--from", help="first local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option(help="last local day, YYYY-MM-DD (inclusive)")],
    to_dir: Annotated[
        Path,
        typer.Option(
            "--to-dir", file_okay=False, help="folder for zones/, operations/ and heat/ files"
        ),
    ],
    database_url: DbOption = None,
) -> None:
    """Write daily zone traffic, operations and heat as Parquet for Superset, Metabase or
    Power BI: one file per table and day, typed, with units; no customer ids.

    Exporting a day again replaces its files. A period with no data writes nothing and
    exits with code 2."""
    first, last = parse_day(from_, "--from"), parse_day(to, "--to")
    if first > last:
        raise cli_failure(
            f"--from {first} is after --to {last}; the period runs from --from to --to"
        )
    if (problem := unwritable("--to-dir", to_dir, folder=True)) is not None:
        raise cli_failure(problem)  # before the catch-up and the export, not after
    settings = Settings(database_url=database_url) if database_url else Settings()
    engine = migrate.open_database(settings.database_url)
    try:
        store_layout(engine, store)  # an unknown store fails before any work
    except NotFound as exc:
        raise cli_failure(str(exc)) from None
    try:  # the same catch-up as `storelens insights`: safe beside a running server
        run_projections(EventLog(engine))
    except Exception as exc:
        errors.print(f"[yellow]warning:[/yellow] a projection failed ({type(exc).__name__})")
    days = export_days(first, last)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as progress:
        task = progress.add_task(f"exporting {store}", total=len(days))
        try:
            summary = write_export_dir(
                engine,
                store,
                first,
                last,
                to_dir,
                on_day=lambda day: progress.update(task, advance=1, description=f"{day}"),
            )
        except (NotFound, InvalidInput) as exc:
            raise cli_failure(str(exc)) from None
        except OSError as exc:  # a full disk, a folder removed meanwhile
            raise cli_failure(write_error("--to-dir", to_dir, exc)) from None
    table = Table(title=f"{store}: {first} to {last} → {to_dir}")
    for col in ("table", "rows", "files"):
        table.add_column(col, justify="right")
    for name, rows in summary.rows.items():
        files = sum(1 for f in summary.files if f.parent.name == name)
        table.add_row(name, f"{rows:,}", f"{files:,}")
    console.print(table)
    skipped = summary.days - summary.days_with_data
    console.print(
        f"{summary.days_with_data} of {summary.days} day(s) had data"
        + (f"; {skipped} empty day(s) got no files" if skipped else "")
    )
