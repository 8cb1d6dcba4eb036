"""``storelens privacy``: answer access and erasure requests from the command line.

Run by an operator on the server, so the audit trail names the operating-system user
(``cli:<user>``) as the actor. Exports are written with owner-only permissions: the
file holds everything storelens knows about a person.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from storelens.core.errors import NotFound
from storelens.core.paths import unwritable, write_error
from storelens.privacy.audit import operator
from storelens.privacy.erasure import erase_customer, export_customer
from storelens.privacy.scan import expand_log_paths
from storelens.storage.command_line import (
    EXIT_FAILED,
    DbOption,
    open_database_or_exit,
    refuse,
)

__all__ = ["privacy_app"]

privacy_app = typer.Typer(
    help="Data-subject requests: export or erase everything held about a customer.",
    no_args_is_help=True,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)

Customer = Annotated[str, typer.Argument(help="any id the person is known by")]


_open = open_database_or_exit


@privacy_app.command("export")
def export_command(
    customer: Customer,
    out: Annotated[
        Path | None, typer.Option("--out", help="write the JSON here (mode 0600)")
    ] = None,
    database_url: DbOption = None,
) -> None:
    """Everything registered about a customer, as JSON (one key per store under ``stores``)."""
    if out is not None and (problem := unwritable("--out", out)):
        raise refuse(problem)  # before the export is gathered and audited
    engine, settings = _open(database_url)
    try:
        data = export_customer(
            engine, customer, operator(), log_paths=expand_log_paths(settings.privacy_log_paths)
        )
    except NotFound as exc:
        raise refuse(exc) from exc
    text = orjson.dumps(data, option=orjson.OPT_INDENT_2)
    if out is None:
        typer.echo(text.decode())
        return
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(text)
    except OSError as exc:
        raise refuse(write_error("--out", out, exc)) from None
    counts = ", ".join(f"{name} {len(items)}" for name, items in data["stores"].items())
    console.print(f"exported to {out}: {counts}")


@privacy_app.command("erase")
def erase_command(
    customer: Customer,
    reason: Annotated[str, typer.Option("--reason", help="the request's reference or ground")],
    database_url: DbOption = None,
) -> None:
    """Erase a customer everywhere, then scan for traces; exits 1 if any are left."""
    engine, settings = _open(database_url)
    try:
        erasure = erase_customer(
            engine,
            customer,
            operator(),
            reason,
            log_paths=expand_log_paths(settings.privacy_log_paths),
        )
    except (NotFound, ValueError) as exc:
        raise refuse(exc) from exc
    table = Table("store", "erased", "kept")
    for name, count in erasure.erased.items():
        table.add_row(name, str(count), erasure.kept.get(name, ""))
    console.print(table)
    console.print(f"kept rows now carry the pseudonym [bold]{erasure.pseudonym}[/bold]")
    scan = erasure.scan
    searched = f"{scan.stores} stores, {scan.tables} tables, {scan.files} log files"
    for other in scan.namesakes:  # not this person: say so, apart from the traces
        console.print(
            f"not a trace: {other.location}.{other.column}: {other.count} row(s) of another "
            "customer with the same name, not erased"
        )
    if scan.total == 0:
        console.print(f"verification scan: [green]0 traces[/green] ({searched})")
        return
    for trace in scan.traces:
        where = f"{trace.location}.{trace.column}" if trace.column else trace.location
        err.print(f"trace: {where}: {trace.count} {trace.kind}")
    err.print(f"[red]verification scan: {scan.total} traces left[/red] ({searched})")
    raise typer.Exit(EXIT_FAILED)
