"""``storelens faces``: the store switch and key rotation for returning-customer recognition."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from storelens.core.errors import StorelensError
from storelens.privacy import audit
from storelens.recognition.store import recognition_enabled, rotate_key, set_recognition
from storelens.storage.command_line import DbOption, open_database_or_exit, print_error

__all__ = ["faces_app"]

faces_app = typer.Typer(
    help="Returning-customer recognition (members with biometric consent only).",
    no_args_is_help=True,
)
console = Console()


@faces_app.command("rotate-key")
def rotate_key_command(database_url: DbOption = None) -> None:
    """Re-encrypt every face embedding under a new key and replace the key file.

    Safe to interrupt: run it again to finish. Keep a backup of the key file with the
    database backup; without it the embeddings cannot be read (members re-enroll).
    """
    engine, settings = open_database_or_exit(database_url)
    try:
        key_id, rows = rotate_key(engine, settings.faces_key_path)
    except StorelensError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
    console.print(f"re-encrypted {rows} embeddings under key {key_id}")


@faces_app.command("switch")
def switch_command(
    store: Annotated[str, typer.Option("--store", help="store id")],
    on: Annotated[bool, typer.Option("--on/--off", help="turn recognition on or off")],
    database_url: DbOption = None,
) -> None:
    """Turn recognition on or off for one store (off until an admin turns it on)."""
    engine, _ = open_database_or_exit(database_url)
    try:
        with engine.begin() as conn:
            set_recognition(conn, store, on, by=audit.SYSTEM.name, at=datetime.now(UTC))
            audit.record(conn, audit.SYSTEM, "store.recognition", "store", store, {"enabled": on})
            state = recognition_enabled(conn, store)
    except StorelensError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
    console.print(f"recognition in {store}: {'on' if state else 'off'}")
