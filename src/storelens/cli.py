"""The ``storelens`` command line (Typer + Rich)."""

from __future__ import annotations

import contextlib
import ipaddress
import logging.config
import os
import sys
import threading
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

import storelens.cdp.cli_identity  # registers cdp resolve, profile, unmerge, eval
import storelens.cli_entrance  # registers vision recognise (the faces extra)
import storelens.cli_vision  # noqa: F401  # registers vision simulate and render
from storelens import accounts, cli_help, stores
from storelens.cdp.cli import cdp_app
from storelens.cli_accounts import keys_app, users_app
from storelens.cli_ingest import ingest, progress_bar
from storelens.config import Settings, write_secret_key_file
from storelens.core.errors import Conflict, LayoutError, StorelensError
from storelens.core.layout import load_layout
from storelens.core.paths import unwritable, write_error
from storelens.core.tracebacks import traceback_without_messages
from storelens.ingest.cli import edge_app, mqtt_bridge
from storelens.instore.cli import ops_app
from storelens.instore.cli import print_report as print_ops_report
from storelens.instore.cli_export import export_command
from storelens.instore.cli_insights import insights_command
from storelens.predict.cli import predict_app  # light: pandas and lifetimes load per command
from storelens.privacy import audit
from storelens.privacy.cli import privacy_app
from storelens.recognition.cli import faces_app  # light: dlib loads only to embed faces
from storelens.recognition.keyring import write_key_file as write_face_key_file
from storelens.recommend.cli import recommend_app  # light: scipy and implicit load per command
from storelens.storage import migrate
from storelens.storage.command_line import (
    EXIT_FAILED,
    EXIT_INPUT,
    DbOption,
    print_error,
    settings_or_exit,
)
from storelens.storage.db import create_engine
from storelens.vision.cli import vision_app  # light: heavy vision imports wait for a command
from storelens.vision.models_cli import models_app

__all__ = ["SITE_FACTORY", "app", "main", "print_fault"]

SITE_FACTORY = "storelens.web.site:create_site"
"""What each worker of ``storelens serve --workers N`` imports and calls."""

app = typer.Typer(
    name="storelens",
    help="Self-hosted, privacy-first retail customer intelligence.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
layout_app = typer.Typer(help="Store layout files: check and load them.", no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(layout_app, name="layout")
app.add_typer(ops_app, name="ops")
app.command("insights")(insights_command)
app.command("export")(export_command)
app.add_typer(edge_app, name="edge")
app.add_typer(cdp_app, name="cdp")
app.add_typer(vision_app, name="vision")
app.add_typer(models_app, name="models")
app.add_typer(privacy_app, name="privacy")
app.add_typer(predict_app, name="predict")
app.add_typer(faces_app, name="faces")
app.add_typer(recommend_app, name="recommend")
app.command("mqtt-bridge")(mqtt_bridge)
app.command("ingest")(ingest)
sim_app = typer.Typer(help="The store simulator: events with ground truth.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")

console = Console()
err = Console(stderr=True, soft_wrap=True)


cli_help.install()


_settings = settings_or_exit


def _fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    print_error(message)
    return typer.Exit(code)


@app.command()
def init(
    database_url: DbOption = None,
    admin: Annotated[str, typer.Option(help="username of the first administrator")] = "admin",
) -> None:
    """Create or upgrade the database, the secret key file and the first admin (its
    password is shown once)."""
    settings = _settings(database_url)
    try:  # before any key file is written: a mistyped URL leaves nothing behind
        engine = migrate.reachable(settings.database_url, create=True)
    except StorelensError as exc:  # the ConfigError of an unreachable database
        raise _fail(str(exc), EXIT_INPUT) from exc
    if settings.placeholder_secret:
        path = settings.secret_key_file
        if write_secret_key_file(path):
            console.print(f"wrote a new secret key to [bold]{path}[/bold] (owner-only, 0600)")
    if write_face_key_file(settings.faces_key_path):
        console.print(
            f"wrote a new face-embedding key to [bold]{settings.faces_key_path}[/bold] "
            "(owner-only, 0600; back it up with the database)"
        )
    migrate.upgrade(engine)
    console.print(f"database ready at revision [bold]{migrate.current_revision(engine)}[/bold]")
    password = accounts.generate_password()
    try:
        with engine.begin() as conn:
            accounts.create_user(conn, admin, password, accounts.Role.admin)
            audit.record(conn, audit.SYSTEM, "user.create", "user", admin, {"role": "admin"})
    except Conflict:
        console.print(
            f"user [bold]{admin}[/bold] exists already; password unchanged "
            f"(reset it with: storelens users reset-password {admin})"
        )
        return
    console.print(
        f"created admin [bold]{admin}[/bold] with one-time password: "
        f"[bold green]{password}[/bold green]"
    )
    console.print("store it now: it is not shown again.")


@app.command()
def serve(
    database_url: DbOption = None,
    host: Annotated[
        str | None, typer.Option(help="bind address (default STORELENS_HOST, 127.0.0.1)")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="TCP port (default STORELENS_PORT, 8000)"),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="uvicorn worker processes; with more than one, each worker builds the "
            "app itself from the STORELENS_* settings (the --database-url given here "
            "is passed on to them)",
        ),
    ] = 1,
) -> None:
    """Run the server (uvicorn): the dashboard at / and the API under /v1."""
    import uvicorn

    from storelens.api.access_log import redacting_log_config
    from storelens.web.site import create_site

    settings = _settings(database_url)
    bind = host or settings.host
    if settings.placeholder_secret and not _loopback(bind):
        raise _fail(
            f"refusing to listen on {bind} with the public placeholder secret key: "
            "run `storelens init` (writes a key file) or set STORELENS_SECRET_KEY",
            EXIT_INPUT,
        )
    try:
        engine = migrate.open_database(settings.database_url)
    except StorelensError as exc:
        raise _fail(str(exc), EXIT_INPUT) from exc
    options: dict[str, Any] = {
        "host": bind,
        "port": port or settings.port,
        "log_level": "info",
        "log_config": redacting_log_config(settings.log_exception_messages),
        "proxy_headers": False,  # the app reads X-Forwarded-For from trusted_proxies only
    }
    if workers == 1:
        uvicorn.run(create_site(settings, engine=engine), **options)
        return
    if not settings.redis_url:
        err.print(
            f"warning: {workers} workers without STORELENS_REDIS_URL count sign-in failures "
            "and device keys' refused notices in each worker apart, so the sign-in throttle "
            f"and the refused-notice limit are {workers} times looser; set "
            "STORELENS_REDIS_URL to share them"
        )
    # uvicorn starts each worker process by importing the app, so it needs an import
    # string and a factory, not an app object; each worker reads its settings from the
    # environment, where the database chosen on this command line goes too.
    os.environ["STORELENS_DATABASE_URL"] = settings.database_url
    engine.dispose()  # no pooled connection crosses into the workers
    uvicorn.run(SITE_FACTORY, factory=True, workers=workers, **options)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def demo(
    directory: Annotated[Path, typer.Option("--dir", help="where the demo keeps its data")] = Path(
        "demo-data"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port of the demo server")] = 8000,
    seed: Annotated[int, typer.Option(help="seed of the simulation")] = 7,
    days: Annotated[
        int, typer.Option(min=1, max=60, help="finished café days of history, ending yesterday")
    ] = 7,
    till_weeks: Annotated[
        int,
        typer.Option(
            min=0,
            max=104,
            help="weeks of loyalty members' till orders before those days (0: none)",
        ),
    ] = 26,
    serve_api: Annotated[
        bool, typer.Option("--serve/--no-serve", help="start the server afterwards")
    ] = True,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="replay today's café day into the server")
    ] = True,
    speed: Annotated[
        float | None,
        typer.Option(
            min=0.001,
            max=100_000,
            help="café seconds per real second for the live day (default STORELENS_DEMO_SPEED, 60)",
        ),
    ] = None,
) -> None:
    """Simulate a café week, show its operations report, and serve the dashboard with
    today's café day running live at an accelerated clock. Ctrl-C stops everything.

    Before the week, the loyalty members' till orders of half a year (``--till-weeks``)
    give the Customers page lifetime value and churn risk.

    Each run prints the sign-in for the demo's admin user with a new password (the old
    one stops working), so a lost password is one more run away."""
    from storelens.demo.live import LiveDay, live_day_events, serve_with_replay
    from storelens.demo.run import HEATMAP_EVERY_S, prepare_demo

    if (problem := unwritable("--dir", directory, folder=True)) is not None:
        raise _fail(problem, EXIT_INPUT)  # before a week is simulated
    try:
        result = prepare_demo(
            directory,
            seed=seed,
            days=days,
            till_weeks=till_weeks,
            console=console,
            progress=progress_bar,
        )
    except StorelensError as exc:
        raise _fail(str(exc)) from exc
    except OSError as exc:  # a full disk, a folder removed meanwhile
        raise _fail(write_error("--dir", directory, exc), EXIT_INPUT) from None
    console.print(result.summary_table())
    print_ops_report(result.ops, console)
    url = f"http://127.0.0.1:{port}"
    live_day = None
    if serve_api and live:
        events_path = live_day_events(
            result.layout_path, result.today, seed, directory, HEATMAP_EVERY_S
        )
        live_day = LiveDay(events_path, result.store_id, speed or result.settings.demo_speed)
        console.print(
            f"\nlive: {result.today} replays from opening at {live_day.speed:g}x "
            "(an hour of café time every "
            f"{3600 / live_day.speed:.3g} s) through POST /v1/events"
        )
    if serve_api:
        console.print(f"\nDashboard: [bold]{url}/[/bold]")
        console.print(f"API docs:  {url}/docs")
    else:  # no address that answers: say how to serve what was just prepared
        console.print(
            "\nnot serving (--no-serve); to sign in to this data later (the key file "
            "too: from another folder, serve would use another key): "
            f"STORELENS_SECRET_KEY_FILE={result.settings.secret_key_file.resolve()} "
            f"storelens serve --database-url {result.settings.database_url}",
            markup=False,
            soft_wrap=True,  # one line to copy, however long the path
        )
    console.print(f"username:  [bold]{result.username}[/bold]")
    console.print(f"password:  [bold green]{result.password}[/bold green]  (new on every run)")
    if not serve_api:
        return
    from storelens.api.access_log import redacting_log_config
    from storelens.web.site import create_site

    engine = create_engine(result.settings.database_url)
    console.print("Ctrl-C stops the server and the live replay.")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn passes Ctrl-C on after shutting down
        serve_with_replay(
            create_site(result.settings, engine=engine),
            engine,
            result.settings,
            live_day,
            port=port,
            on_done=lambda r: console.print(
                f"live day finished: {r.accepted:,} events accepted, "
                f"{r.duplicates:,} already there; the server keeps running"
            ),
            log_config=redacting_log_config(result.settings.log_exception_messages),
        )
    console.print("stopped the server and the live replay")


@app.command()
def retention(
    database_url: DbOption = None,
    days: Annotated[
        int | None,
        typer.Option(
            # 100 years keeps everything a store has; about 7e5 days reaches back past
            # year 1, where the cutoff date overflowed with a traceback.
            min=1,
            max=36_500,
            help="keep this many days (default: STORELENS_RAW_TRACKING_RETENTION_DAYS)",
        ),
    ] = None,
    impression_days: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=36_500,
            help="keep this many days of shown recommendation lists "
            "(default: STORELENS_RECOMMEND_IMPRESSIONS_KEEP_DAYS)",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count, delete nothing")] = False,
) -> None:
    """Delete raw tracking events (positions, zone crossings) and shown recommendation
    lists past their retention windows.

    The API server does this hourly; run it from cron when the server is not running.
    """
    from storelens.privacy.retention import purge_impressions, purge_raw_tracking

    settings = _settings(database_url)
    engine = migrate.open_database(settings.database_url)
    tracking = purge_raw_tracking(
        engine, days or settings.raw_tracking_retention_days, dry_run=dry_run
    )
    shown = purge_impressions(
        engine, impression_days or settings.recommend_impressions_keep_days, dry_run=dry_run
    )
    verb = "would delete" if tracking.dry_run else "deleted"
    console.print(
        f"{verb} {tracking.deleted:,} raw tracking events before "
        f"{tracking.cutoff:%Y-%m-%d %H:%M} UTC"
    )
    console.print(
        f"{verb} {shown.deleted:,} shown recommendation lists before "
        f"{shown.cutoff:%Y-%m-%d %H:%M} UTC"
    )


@sim_app.command("run")
def sim_run(
    out: Annotated[Path, typer.Option(help="directory for events.jsonl and truth.json")],
    layout: Annotated[
        Path | None, typer.Option(help="layout file (default: the sample café)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=366)] = 1,
    seed: Annotated[int, typer.Option()] = 7,
    positions_fps: Annotated[
        float | None,
        typer.Option(help="also write positions.parquet at this many frames per second"),
    ] = None,
) -> None:
    """Simulate store days: the events real systems would emit, and the ground truth."""
    from storelens.sim import default_layout_path, run_simulation

    try:
        with console.status(f"simulating {days} day(s)…"):
            summary = run_simulation(
                layout or default_layout_path(), days, seed, out, positions_fps=positions_fps
            )
    except OSError as exc:  # --out under a file, read-only, full: say where, not a traceback
        raise _fail(write_error("--out", out, exc), EXIT_INPUT) from None
    console.print(
        f"{summary.store_id}: {summary.visits:,} visits, {summary.orders:,} orders, "
        f"{summary.events:,} events in {summary.seconds:.1f} s"
    )
    console.print(f"wrote {summary.events_path} and {summary.truth_path}")


@layout_app.command("check")
def layout_check(file: Annotated[Path, typer.Argument(help="a layout .toml file")]) -> None:
    """Validate a layout file and summarise it."""
    try:
        layout = load_layout(file)
    except LayoutError as exc:
        raise _fail(str(exc), EXIT_INPUT) from exc
    console.print(
        f"[green]ok[/green] {layout.store_id}: {len(layout.zones)} zones, "
        f"{len(layout.lines)} lines, {len(layout.cameras)} cameras, "
        f"{layout.floor.width_m}×{layout.floor.height_m} m"
    )


@layout_app.command("load")
def layout_load(
    file: Annotated[Path, typer.Argument(help="a layout .toml file")],
    database_url: DbOption = None,
) -> None:
    """Store a layout as its store's newest version (creating the store if needed)."""

    engine = migrate.open_database(_settings(database_url).database_url)
    try:
        with engine.begin() as conn:
            version, layout = stores.load_layout_file(conn, file, "cli")
    except LayoutError as exc:
        raise _fail(str(exc), EXIT_INPUT) from exc
    console.print(f"stored layout version {version} of {layout.store_id}")


def _show_messages() -> bool:
    with contextlib.suppress(Exception):  # unreadable settings: hide, the safe side
        return Settings().log_exception_messages
    return False


def print_fault(exc: BaseException, show: bool) -> None:
    """A fault's traceback on stderr, each exception's message hidden unless ``show``
    (``log_exception_messages``): a command run from cron or systemd has its stderr
    kept in a log no erasure reaches, and a message can quote the value that failed
    (``KeyError('ada@…')``), as the server's log already knows (``core/tracebacks.py``).
    Frames and exception types stay, what a bug report needs."""
    try:
        if show:
            text = "".join(traceback.format_exception(exc)).rstrip("\n")
        else:
            text = traceback_without_messages(exc)
    except Exception:  # never fall back to the interpreter's hook: it prints messages
        text = f"{type(exc).__qualname__} (its traceback could not be formatted)"
    print(text, file=sys.stderr)


def main() -> None:
    # Commands that run for long (mqtt-bridge, serve, edge) log their faults: the same
    # filter as the server's log, so their tracebacks keep no messages either; and a
    # background thread's fault goes through print_fault, not Python's own hook.
    from storelens.api.access_log import redacting_log_config

    show = _show_messages()
    logging.config.dictConfig(redacting_log_config(show))

    def thread_fault(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        print(f"in thread {args.thread.name if args.thread else '?'}:", file=sys.stderr)
        print_fault(args.exc_value, show)

    threading.excepthook = thread_fault
    try:
        app()
    except StorelensError as exc:  # a problem the user can fix: no traceback
        print_error(exc)
        sys.exit(EXIT_INPUT)
    except Exception as exc:  # a fault: its traceback, without personal values
        print_fault(exc, show)
        sys.exit(1)
    except KeyboardInterrupt:  # pragma: no cover - interactive
        sys.exit(130)


if __name__ == "__main__":  # python -m storelens.cli
    main()
