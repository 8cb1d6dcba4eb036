"""``storelens faces``: the store switch, enrollment approval and key rotation for
returning-customer recognition."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from storelens.privacy import audit
from storelens.recognition.approval import approve, read_pending, refuse
from storelens.recognition.consent_texts import (
    MAX_BODY_CHARS,
    current_text,
    list_texts,
    publish,
    retire,
    text_of,
)
from storelens.recognition.key_rotation import rotate_key
from storelens.recognition.store import recognition_enabled, set_recognition
from storelens.storage.command_line import (
    DbOption,
    open_database_or_exit,
    refusals_exit_2,
)
from storelens.storage.command_line import refuse as refuse_input

__all__ = ["faces_app"]

faces_app = typer.Typer(
    help="Returning-customer recognition (members with biometric consent only).",
    no_args_is_help=True,
)
console = Console()
consent_text_app = typer.Typer(
    help="The consent texts members read before agreeing to recognition.",
    no_args_is_help=True,
)
faces_app.add_typer(consent_text_app, name="consent-text")


@faces_app.command("rotate-key")
def rotate_key_command(database_url: DbOption = None) -> None:
    """Re-encrypt every face embedding under a new key and replace the key file.

    Safe to interrupt: run it again to finish. Keep a backup of the key file with the
    database backup; without it the embeddings cannot be read (members re-enroll).
    """
    engine, settings = open_database_or_exit(database_url)
    with refusals_exit_2():
        key_id, rows = rotate_key(engine, settings.faces_key_path)
    console.print(f"re-encrypted {rows} embeddings under key {key_id}")


@faces_app.command("switch")
def switch_command(
    store: Annotated[str, typer.Option("--store", help="store id")],
    on: Annotated[bool, typer.Option("--on/--off", help="turn recognition on or off")],
    database_url: DbOption = None,
) -> None:
    """Turn recognition on or off for one store (off until an admin turns it on)."""
    engine, _ = open_database_or_exit(database_url)
    with refusals_exit_2(), engine.begin() as conn:
        set_recognition(conn, store, on, by=audit.SYSTEM.name, at=datetime.now(UTC))
        audit.record(conn, audit.SYSTEM, "store.recognition", "store", store, {"enabled": on})
        state = recognition_enabled(conn, store)
    console.print(f"recognition in {store}: {'on' if state else 'off'}")


@faces_app.command("pending")
def pending_command(
    limit: Annotated[int, typer.Option("--limit", min=1, max=500, help="most rows")] = 100,
    database_url: DbOption = None,
) -> None:
    """List enrollments waiting for an admin's approval, oldest first (audited)."""
    engine, _ = open_database_or_exit(database_url)
    with engine.begin() as conn:
        rows = read_pending(conn, limit, audit.operator())
    if not rows:
        console.print("no enrollment waits for approval")
        return
    table = Table("enrollment", "customer", "recorded by", "granted at", "photos", "stores")
    for r in rows:
        stores = ", ".join(r["store_ids"]) if r["store_ids"] is not None else "every store"
        table.add_row(
            str(r["id"]),
            str(r["customer_id"]),
            str(r["recorded_by"]),
            r["granted_at"].isoformat(timespec="seconds"),
            str(r["photos"]),
            stores,
        )
    console.print(table)


@faces_app.command("approve")
def approve_command(
    enrollment: Annotated[
        int, typer.Argument(min=1, max=2**31 - 1, help="the enrollment id from 'pending'")
    ],
    database_url: DbOption = None,
) -> None:
    """Approve one enrollment so the entrance may recognise the member.

    Approve only when you know the photos are the member's (you saw them enrolled, or
    asked them): a staff member's enrollment waits for this check. Refused (exit 2) when
    it was withdrawn or replaced, a newer one of the member is in force, or it is
    already approved. Recorded as approved by ``cli:<your login>``.
    """
    engine, _ = open_database_or_exit(database_url)
    operator = audit.operator()
    with refusals_exit_2(), engine.begin() as conn:
        row = approve(conn, enrollment, actor=operator, at=datetime.now(UTC))
    console.print(
        f"approved enrollment {enrollment}: recorded by {row['recorded_by']},"
        f" approved by {row['approved_by']} at {row['approved_at'].isoformat(timespec='seconds')}"
    )


@faces_app.command("refuse")
def refuse_command(
    enrollment: Annotated[
        int, typer.Argument(min=1, max=2**31 - 1, help="the enrollment id from 'pending'")
    ],
    database_url: DbOption = None,
) -> None:
    """Refuse one waiting enrollment: its photos' embeddings are deleted now.

    For photos you do not know to be the member's. Refused (exit 2) when it was
    withdrawn or replaced already, or is approved (end that with a withdrawal).
    Recorded as refused by ``cli:<your login>``.
    """
    engine, _ = open_database_or_exit(database_url)
    with refusals_exit_2(), engine.begin() as conn:
        deleted = refuse(conn, enrollment, actor=audit.operator(), at=datetime.now(UTC))
    console.print(f"refused enrollment {enrollment}: {deleted} embedding(s) deleted")


def _shown(name: str) -> str:
    """A login name as plain text: no rich markup, no terminal control characters (the
    CLI records ``cli:<$USER>``, which anyone starting it chooses)."""
    return escape("".join(c for c in name if c.isprintable()))


def _read_text(path: str) -> str:
    """The file's words (``-``: standard input), or exit 2 saying why not."""
    most = MAX_BODY_CHARS * 4  # bytes: four per character at most in UTF-8
    try:
        raw = sys.stdin.buffer.read(most + 1) if path == "-" else None
        if raw is None:
            with Path(path).open("rb") as f:
                raw = f.read(most + 1)
        if len(raw) > most:  # read whole or not at all: never publish a cut text
            console.print(
                f"error: {path} is over {MAX_BODY_CHARS:,} characters; a consent text must "
                "be read whole by the member",
                style="red",
            )
            raise typer.Exit(2)
        return raw.decode("utf-8-sig")  # a byte-order mark (Notepad) is no part of the text
    except OSError as exc:
        console.print(f"error: cannot read {path}: {exc.strerror or exc}", style="red")
        raise typer.Exit(2) from exc
    except UnicodeDecodeError as exc:
        console.print(f"error: {path} is not UTF-8 text (byte {exc.start})", style="red")
        raise typer.Exit(2) from exc


@consent_text_app.command("publish")
def publish_text_command(
    version: Annotated[str, typer.Option("--version", help="e.g. 2026-12; never reused")],
    file: Annotated[
        str, typer.Option("--file", help="the text, UTF-8, 20 to 20,000 characters (- reads stdin)")
    ],
    database_url: DbOption = None,
) -> None:
    """Publish the text members read before agreeing to recognition, and put it in force.

    Its words never change: publishing the same version with other words is refused
    (exit 2), and so is a retired version; the same words again change nothing. The text
    in force before is retired (consents given under it stay); enrollment names the text
    in force, which the staff app shows to the member."""
    body = _read_text(file)
    engine, _ = open_database_or_exit(database_url)
    with refusals_exit_2(), engine.begin() as conn:
        done = publish(conn, version, body, actor=audit.operator(), at=datetime.now(UTC))
    text = done.text
    state = "published" if done.created else "already published with these words:"
    console.print(f"{state} consent text {text.version} ({len(text.body):,} characters, "
                  f"sha256 {text.sha256}); it is the text in force")  # fmt: skip
    for old in done.replaced:
        console.print(f"retired consent text {old}: consents given under it stay in force")


@consent_text_app.command("list")
def list_texts_command(
    retired: Annotated[bool, typer.Option("--retired", help="list retired texts too")] = False,
    database_url: DbOption = None,
) -> None:
    """The published consent texts, newest first, and which one is in force."""
    engine, _ = open_database_or_exit(database_url)
    with engine.connect() as conn:
        texts = list_texts(conn, include_retired=True)
    shown = texts if retired else [t for t in texts if t.in_force]
    if not texts:
        console.print("no consent text is published: storelens faces consent-text publish")
        return
    if not shown:
        console.print(
            f"no consent text is in force ({len(texts)} retired: list them with --retired); "
            "enrollment waits until one is published"
        )
        return
    table = Table("version", "in force", "published (UTC)", "by", "retired (UTC)", "characters")
    for t in shown:
        table.add_row(
            t.version,
            "yes" if t.in_force else "no",
            _when(t.published_at),
            _shown(t.published_by),
            _when(t.retired_at) if t.retired_at else "",
            f"{len(t.body):,}",
        )
    console.print(table)


@consent_text_app.command("show")
def show_text_command(
    version: Annotated[str, typer.Argument(help="the version to show")],
    database_url: DbOption = None,
) -> None:
    """Print a text's words exactly as published, with its SHA-256 (to compare with a
    printed copy or an access export)."""
    engine, _ = open_database_or_exit(database_url)
    with engine.connect() as conn:
        text = text_of(conn, version)
    if text is None:
        raise refuse_input(f"no consent text {version!r} is published")
    state = "in force" if text.in_force else f"retired {_when(text.retired_at)}"
    console.print(f"consent text {text.version} ({state}), sha256 {text.sha256}", highlight=False)
    console.print(escape(text.body), highlight=False, soft_wrap=True)


@consent_text_app.command("retire")
def retire_text_command(
    version: Annotated[str, typer.Argument(help="the version to retire")],
    database_url: DbOption = None,
) -> None:
    """No new enrollment may name this text; consents given under it stay in force.
    Retiring the text in force stops enrollment until another is published."""
    engine, _ = open_database_or_exit(database_url)
    with refusals_exit_2(), engine.begin() as conn:
        before = text_of(conn, version)
        text = retire(conn, version, actor=audit.operator(), at=datetime.now(UTC))
        left = current_text(conn)
    if before is not None and not before.in_force:
        console.print(
            f"consent text {text.version} was already retired at {_when(text.retired_at)}"
        )
        return
    console.print(f"retired consent text {text.version} at {_when(text.retired_at)}")
    if left is None:
        console.print(
            "no consent text is in force now: enrollment waits until one is published "
            "(storelens faces consent-text publish)"
        )


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
