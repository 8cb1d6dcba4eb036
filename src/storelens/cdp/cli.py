"""``storelens cdp``: customer data commands (wired into the main CLI as ``cdp``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from sqlalchemy import Engine

from storelens.cdp.records import ImportIds
from storelens.cdp.sources import (
    TARGETS,
    ImportResult,
    MappingError,
    import_customers,
    load_sources,
)
from storelens.ingest.write_audit import audited
from storelens.privacy import audit
from storelens.storage.command_line import open_database_or_exit, print_error
from storelens.storage.eventlog import EventLog

__all__ = ["cdp_app", "open_engine", "print_result"]

cdp_app = typer.Typer(
    help="Customer data: import records, resolve identities, read profiles.", no_args_is_help=True
)
SHOWN = 20


@cdp_app.callback()
def _group() -> None:
    """Customer data: import records, resolve identities, read profiles."""
    # A callback keeps ``import`` a subcommand even while it is the only one.


def open_engine(database_url: str | None) -> Engine:
    """The configured database, or exit 2 with the reason (not initialised, bad URL)."""
    return open_database_or_exit(database_url)[0]


def _console() -> Console:
    # Created per call so output follows the current stdout (CliRunner swaps it).
    return Console(width=120)


def print_result(result: ImportResult, console: Console) -> None:
    """Counts, rejected rows, and the quality report as tables."""
    summary = Table(title=f"import {result.source_system}")
    for col in ("rows", "accepted", "duplicates", "rejected", "fields flagged"):
        summary.add_column(col, justify="right")
    summary.add_row(
        str(result.rows),
        str(result.accepted),
        str(result.duplicates),
        str(len(result.rejected)),
        str(len(result.flagged)),
    )
    console.print(summary)
    if result.ignored_columns:
        console.print(
            f"ignored columns (not mapped, or a mapped column fills their field): "
            f"{', '.join(result.ignored_columns)}"
        )
    if result.rejected:
        rejected = Table(title="rejected rows")
        rejected.add_column("row", justify="right")
        rejected.add_column("errors")
        for r in result.rejected[:SHOWN]:
            rejected.add_row(str(r.row), "; ".join(f"{e.loc}: {e.msg}" for e in r.errors))
        console.print(rejected)
        if len(result.rejected) > SHOWN:
            console.print(f"… and {len(result.rejected) - SHOWN} more (see --json)")
    if result.flagged:
        by_field = ", ".join(f"{k}: {v}" for k, v in result.flagged_by_field().items())
        console.print(f"flagged and nulled for matching (records kept): {by_field}")

    quality = Table(title="data quality")
    quality.add_column("field")
    for col in ("present", "missing", "invalid"):
        quality.add_column(col, justify="right")
    quality.add_column("invalid examples (row: value)")
    for name, s in result.quality.fields.items():
        examples = ", ".join(f"{e.row}: {e.value!r}" for e in s.invalid_examples)
        quality.add_row(name, str(s.present), str(s.missing), str(s.invalid), examples)
    console.print(quality)

    dups = Table(title="duplicates within the source")
    for col in ("key", "duplicates", "values", "examples (value: rows)"):
        dups.add_column(col)
    for key, d in result.quality.duplicates.items():
        examples = "; ".join(f"{v}: {', '.join(map(str, rows))}" for v, rows in d.examples.items())
        dups.add_row(key, str(d.duplicates), str(d.groups), examples)
    console.print(dups)


# "\\[": Rich reads a bare "[sources.crm.fields]" as markup; it vanished from the help.
MAPPING_HELP = (
    'TOML: under \\[sources.SOURCE.fields] one line per column, column = "field" '
    '(Kundennummer = "source_record_id", Vorname = "first_name"); optionally '
    'default_region = "DE" under \\[sources.SOURCE]. '
    f"Fields: {', '.join(TARGETS)}. Columns named as a field need no line, others are "
    "ignored; one must give source_record_id. Example in docs/reference.md"
)


@cdp_app.command("import")
def import_command(
    source: Annotated[str, typer.Argument(help="source system name, e.g. crm or webshop")],
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help=".csv, .parquet, .json or .jsonl"
        ),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help=MAPPING_HELP,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(help="region for national phone numbers (default: the mapping's, or DE)"),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="STORELENS_DATABASE_URL",
            help="SQLAlchemy URL; default sqlite:///./storelens.db",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="reject rows holding an invalid value instead of importing them "
            "with that value flagged and nulled",
        ),
    ] = False,
) -> None:
    """Import customer records from a source export; exits 1 when rows were rejected.

    Rows without a record id (or repeating one) are rejected; a row with an invalid
    value is imported with that value flagged, unless ``--strict``.
    """
    console = _console()
    fields: dict[str, str] = {}
    default_region = region
    try:
        if mapping is not None:
            config = load_sources(mapping).get(source)
            if config is None:
                raise MappingError(f"{mapping}: no [sources.{source}] table")
            fields = config.fields
            default_region = default_region or config.default_region
        engine, settings = open_database_or_exit(database_url)
        log, ids = EventLog(engine), ImportIds.of(settings)
        operator = audit.operator()
        # Each batch's row is committed with it, naming the ids the records carry.
        then = audited(
            operator, None, action="customers.import", resource="customer", source=source
        )
        if as_json:
            result = import_customers(
                log,
                source,
                file,
                fields,
                (default_region or "DE").upper(),
                ids=ids,
                reject_invalid=strict,
                sent_by=operator.name,
                then=then,
            )
        else:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            ) as progress:
                task = progress.add_task(f"importing {file.name}", total=None)

                def advance(done: int, total: int) -> None:
                    progress.update(task, completed=done, total=total)

                result = import_customers(
                    log,
                    source,
                    file,
                    fields,
                    (default_region or "DE").upper(),
                    ids=ids,
                    reject_invalid=strict,
                    on_progress=advance,
                    sent_by=operator.name,
                    then=then,
                )
    except ValueError as exc:  # MappingError, unreadable file, bad settings
        print_error(exc)
        raise typer.Exit(2) from exc
    from storelens.processors import run_projections  # the command's layer, not cdp's

    run_projections(log)  # the customers table (and the rest) up to the new records
    if as_json:
        typer.echo(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        print_result(result, console)
    if result.rejected:
        raise typer.Exit(1)
