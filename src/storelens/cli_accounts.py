"""``storelens users`` and ``storelens keys``: the people and devices that may sign in.

Every change is audited with the operating-system user who ran it. Disabling a user,
changing their role or resetting their password bumps their token version, so
tokens they already hold stop working at once instead of when they expire.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine

from storelens import accounts
from storelens.core.errors import StorelensError
from storelens.privacy import audit
from storelens.storage.command_line import DbOption, open_database_or_exit, refuse


class PersonRole(StrEnum):
    """The roles a person can have: ``device`` is for API keys (``storelens keys``),
    and offering it here only led to an error."""

    admin = "admin"
    analyst = "analyst"
    staff = "staff"


__all__ = ["keys_app", "users_app"]

users_app = typer.Typer(help="People who sign in to the API and dashboard.", no_args_is_help=True)
keys_app = typer.Typer(
    help="API keys for devices (cameras, POS bridges, sensors).", no_args_is_help=True
)
console = Console()
err = Console(stderr=True, soft_wrap=True)


def _engine(database_url: str | None) -> Engine:
    return open_database_or_exit(database_url)[0]


def _fail(exc: Exception) -> typer.Exit:
    """A refused change (no such user or key, a name taken, a scope not allowed): exit 2."""
    return refuse(exc)


def _change(database_url: str | None, action: str, username: str, **kwargs: object) -> None:
    """Run one account change and its audit row in one transaction."""
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            if action == "user.disable":
                accounts.set_active(conn, username, False)
            elif action == "user.enable":
                accounts.set_active(conn, username, True)
            elif action == "user.role":
                accounts.set_role(conn, username, accounts.Role(str(kwargs["role"])))
            elif action == "user.delete":
                accounts.delete_user(conn, username)
            audit.record(conn, audit.operator(), action, "user", username, dict(kwargs) or None)
    except (StorelensError, ValueError) as exc:
        raise _fail(exc) from exc


@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[PersonRole, typer.Option(help="what the user may do")] = PersonRole.analyst,
    database_url: DbOption = None,
) -> None:
    """Create a user; the generated password is shown once."""
    engine = _engine(database_url)
    password = accounts.generate_password()
    try:
        with engine.begin() as conn:
            accounts.create_user(conn, username, password, accounts.Role(role.value))
            audit.record(
                conn, audit.operator(), "user.create", "user", username, {"role": role.value}
            )
    except (StorelensError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(
        f"created {role.value} [bold]{username}[/bold], password: "
        f"[bold green]{password}[/bold green]"
    )


@users_app.command("list")
def users_list(database_url: DbOption = None) -> None:
    """Every user with their role, state and last sign-in."""
    table = Table()
    for col in ("id", "username", "role", "active", "last sign-in"):
        table.add_column(col)
    for u in accounts.list_users(_engine(database_url)):
        last = f"{u.last_login_at:%Y-%m-%d %H:%M}" if u.last_login_at else "never"
        table.add_row(str(u.id), u.username, u.role.value, "yes" if u.active else "no", last)
    console.print(table)


@users_app.command("reset-password")
def users_reset(username: str, database_url: DbOption = None) -> None:
    """Give a user a new generated password (shown once); their tokens stop working."""
    engine = _engine(database_url)
    password = accounts.generate_password()
    try:
        with engine.begin() as conn:
            accounts.set_password(conn, username, password)
            audit.record(conn, audit.operator(), "user.reset_password", "user", username)
    except StorelensError as exc:
        raise _fail(exc) from exc
    console.print(f"new password for [bold]{username}[/bold]: [bold green]{password}[/bold green]")


@users_app.command("disable")
def users_disable(username: str, database_url: DbOption = None) -> None:
    """Stop a user signing in; their tokens stop working at once."""
    _change(database_url, "user.disable", username)
    console.print(f"disabled [bold]{username}[/bold]")


@users_app.command("enable")
def users_enable(username: str, database_url: DbOption = None) -> None:
    """Let a disabled user sign in again."""
    _change(database_url, "user.enable", username)
    console.print(f"enabled [bold]{username}[/bold]")


@users_app.command("set-role")
def users_set_role(
    username: str,
    role: Annotated[PersonRole, typer.Argument(help="what the user may do")],
    database_url: DbOption = None,
) -> None:
    """Change a user's role; they sign in again to use it."""
    _change(database_url, "user.role", username, role=role.value)
    console.print(f"[bold]{username}[/bold] is now {role.value}")


@users_app.command("delete")
def users_delete(
    username: str,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask")] = False,
    database_url: DbOption = None,
) -> None:
    """Remove a user (the audit trail keeps their name on what they did)."""
    if not yes:
        typer.confirm(f"delete user {username}?", abort=True)
    _change(database_url, "user.delete", username)
    console.print(f"deleted [bold]{username}[/bold]")


@keys_app.command("create")
def keys_create(
    name: str,
    store: Annotated[str | None, typer.Option(help="limit the key to this store's events")] = None,
    event_type: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            help="an event type the key may send (repeat); default: the store-level "
            "operational types. Chain-wide types (customer.upserted, web.event) need this.",
        ),
    ] = None,
    consent_source: Annotated[
        bool, typer.Option("--consent-source", help="the key may send consent.changed")
    ] = False,
    database_url: DbOption = None,
) -> None:
    """Create a device API key; the secret is shown once."""
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            key, secret = accounts.create_api_key(
                conn,
                name,
                store_id=store,
                created_by=audit.operator().name,
                event_types=event_type or None,
                consent_source=consent_source,
            )
            detail = {"name": name, "store_id": store, "event_types": sorted(key.event_types)}
            audit.record(conn, audit.operator(), "api_key.create", "api_key", key.prefix, detail)
    except (StorelensError, ValueError) as exc:
        raise _fail(exc) from exc
    console.print(f"key [bold]{key.name}[/bold] (id {key.id}): [bold green]{secret}[/bold green]")
    console.print(f"may send: {', '.join(sorted(key.event_types))}")


@keys_app.command("list")
def keys_list(database_url: DbOption = None) -> None:
    """Every key: its prefix (never the secret), store, types, state and last use."""
    table = Table()
    for col in ("id", "name", "prefix", "store", "types", "state", "last used"):
        table.add_column(col)
    for k in accounts.list_api_keys(_engine(database_url)):
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "live"
        used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
        extra = ", ".join(sorted(k.event_types - accounts.DEFAULT_KEY_TYPES))
        if k.event_types >= accounts.DEFAULT_KEY_TYPES:
            scope = "store types" + (f" + {extra}" if extra else "")
        else:
            scope = ", ".join(sorted(k.event_types))
        table.add_row(str(k.id), k.name, k.prefix, k.store_id or "any", scope, state, used)
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[
        int,
        # api_keys.id is an INTEGER column: PostgreSQL's int4 (and so every id ever
        # issued) stops at 2**31 - 1; a larger number overflowed the driver.
        typer.Argument(min=1, max=2**31 - 1, help="the key's id (storelens keys list)"),
    ],
    database_url: DbOption = None,
) -> None:
    """Revoke a key at once; devices using it get 401 from their next request."""
    engine = _engine(database_url)
    try:
        with engine.begin() as conn:
            accounts.revoke_api_key(conn, key_id)
            audit.record(conn, audit.operator(), "api_key.revoke", "api_key", str(key_id))
    except StorelensError as exc:
        raise _fail(exc) from exc
    console.print(f"revoked key {key_id}")
