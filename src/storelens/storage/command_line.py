"""What every command group shares: one ``--database-url`` option, one way to turn it
into settings and an engine, one way to print an error (:func:`print_error`), and what
its exit code means.

Each group (``storelens``, ``users``/``keys``, ``privacy``, ``cdp``) used to declare
the option and the settings check itself; a bad URL or an uninitialised database now
reads the same everywhere and exits 2.

Exit codes, for scripts that branch on them: 2 (:data:`EXIT_INPUT`) when a command
refuses what it was given, before doing anything: a bad option or date, a file it cannot
read, a name already taken, or an id or name that names nothing (a customer, user, key,
store or model). "Not found" is input: the same command with the right id works, and a
script must not read it as "ran, and failed". 1 (:data:`EXIT_FAILED`) is kept for a
command that ran and reports a failed result (ingest's rejected lines, an import's
rejected rows, traces left after an erasure). Groups that cannot import this module
(``vision``: it runs on camera boxes) keep the same numbers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine

from storelens.config import Settings
from storelens.core.errors import ConfigError, StorelensError
from storelens.storage import migrate

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "DbOption",
    "open_database_or_exit",
    "print_error",
    "refusals_exit_2",
    "refuse",
    "settings_or_exit",
]

EXIT_FAILED = 1  # the command ran; its result is a failure (rejected lines, traces left)
EXIT_INPUT = 2  # the command refused its input, unknown ids and names included

# Soft wrap: when stderr is not a terminal (CI, a pipe, a log) Rich would break a line
# at 80 columns, splitting a long path where nobody can copy it.
_STDERR = Console(stderr=True, soft_wrap=True, highlight=False)


def print_error(message: object, label: str = "error") -> None:
    """What went wrong, one way for every command: the label in red, the message as
    plain text (a file named ``plan[/b].toml`` is not markup) on one unbroken line."""
    _STDERR.print(f"[red]{label}:[/red] {escape(str(message))}")


def refuse(message: object) -> typer.Exit:
    """Print why the input cannot be used; raise what it returns (exit 2)."""
    print_error(message)
    return typer.Exit(EXIT_INPUT)


@contextlib.contextmanager
def refusals_exit_2() -> Iterator[None]:
    """A StorelensError inside (an unknown id, a withdrawn enrollment, a version taken)
    ends the command with its one-line reason and exit 2; ``storelens``'s entry point
    does the same, but commands run under Click's test runner do not pass through it."""
    try:
        yield
    except StorelensError as exc:
        raise refuse(exc) from exc


DbOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="STORELENS_DATABASE_URL",
        help="SQLAlchemy URL; default sqlite:///./storelens.db",
    ),
]


def settings_or_exit(database_url: str | None) -> Settings:
    """The settings with ``database_url`` applied, or exit 2 saying what is wrong."""
    try:
        return Settings(database_url=database_url) if database_url else Settings()
    except ValueError as exc:
        print_error(exc, "configuration error")
        raise typer.Exit(EXIT_INPUT) from exc


def open_database_or_exit(database_url: str | None) -> tuple[Engine, Settings]:
    """The initialised database and its settings, or exit 2 (bad URL, not initialised)."""
    settings = settings_or_exit(database_url)
    try:
        return migrate.open_database(settings.database_url), settings
    except (ConfigError, ValueError) as exc:
        raise refuse(exc) from exc
