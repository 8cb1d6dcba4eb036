"""What every command group shares: one ``--database-url`` option, one way to turn it
into settings and an engine, and one way to print an error (:func:`print_error`).

Each group (``storelens``, ``users``/``keys``, ``privacy``, ``cdp``) used to declare
the option and the settings check itself; a bad URL or an uninitialised database now
reads the same everywhere and exits 2.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine

from storelens.config import Settings
from storelens.core.errors import ConfigError
from storelens.storage import migrate

__all__ = ["DbOption", "open_database_or_exit", "print_error", "settings_or_exit"]

# Soft wrap: when stderr is not a terminal (CI, a pipe, a log) Rich would break a line
# at 80 columns, splitting a long path where nobody can copy it.
_STDERR = Console(stderr=True, soft_wrap=True, highlight=False)


def print_error(message: object, label: str = "error") -> None:
    """What went wrong, one way for every command: the label in red, the message as
    plain text (a file named ``plan[/b].toml`` is not markup) on one unbroken line."""
    _STDERR.print(f"[red]{label}:[/red] {escape(str(message))}")


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
        raise typer.Exit(2) from exc


def open_database_or_exit(database_url: str | None) -> tuple[Engine, Settings]:
    """The initialised database and its settings, or exit 2 (bad URL, not initialised)."""
    settings = settings_or_exit(database_url)
    try:
        return migrate.open_database(settings.database_url), settings
    except (ConfigError, ValueError) as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
