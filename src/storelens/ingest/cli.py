"""``storelens edge`` and ``storelens mqtt-bridge``: the ways devices feed the log."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from storelens.config import Settings
from storelens.core.errors import ConfigError
from storelens.storage.command_line import refuse

__all__ = ["edge_app", "mqtt_bridge"]

edge_app = typer.Typer(
    help="Store-and-forward on an edge box (camera box, POS bridge).", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


@edge_app.command("run")
def edge_run(
    server: Annotated[str, typer.Option(help="the storelens server, e.g. https://hq:8000")],
    api_key: Annotated[
        str, typer.Option(envvar="STORELENS_API_KEY", help="a device key (storelens keys create)")
    ],
    outbox: Annotated[Path, typer.Option(help="the outbox file on this box")] = Path(
        "storelens-outbox.db"
    ),
    source: Annotated[
        str | None,
        typer.Option(
            help="a JSON Lines file to follow, or - for standard input; omit to only forward"
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="events per request to the server")
    ] = 1000,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--once",
            help="keep reading the file as it grows, or read it to the end, forward what it "
            "queued and exit; without --source the run forwards until stopped either way",
        ),
    ] = True,
) -> None:
    """Queue events on disk and forward them; nothing is lost while the server is away.

    Events are deleted from the outbox only once the server has acknowledged them;
    events the server rejects are set aside with its reason (see `edge status`).
    Lines that are not events are reported and skipped. With --once, a server that stays
    away ends the run after a few tries with the events still queued. Exit 1 when a line
    was skipped or events still wait.
    """
    from storelens.ingest.edge import EdgeAuthError
    from storelens.ingest.edge_sources import STDIN, run_edge

    src = None if source is None else STDIN if source == "-" else Path(source)
    if src is not None and src != STDIN and not src.is_file():
        raise typer.BadParameter(f"no such file: {src}", param_hint="--source")

    def bad_line(line: int, reason: str) -> None:
        console.print(f"[yellow]line {line} skipped:[/yellow] {escape(reason)}")

    try:
        report = run_edge(
            outbox,
            server,
            api_key,
            src,
            _stop_on_signals(),
            batch_size=batch_size,
            follow=follow,
            on_bad_line=bad_line,
        )
    except EdgeAuthError as exc:
        console.print(f"[red]the server refused the key:[/red] {escape(str(exc))}")
        raise typer.Exit(3) from exc
    console.print(
        f"read {report.lines:,} lines, queued {report.queued:,}, "
        f"{report.bad_lines:,} bad; acknowledged {report.stats.acked:,}, "
        f"set aside {report.stats.quarantined:,}"
    )
    if report.pending:
        console.print(
            f"[yellow]{report.pending:,} event(s) still wait in {outbox}[/yellow] "
            f"(last error: {escape(report.stats.last_error or 'none')}); "
            "the next run forwards them"
        )
    # Skipped lines are not in the outbox: like `storelens ingest`, say so in the exit code.
    if report.bad_lines or report.pending:
        raise typer.Exit(1)


@edge_app.command("status")
def edge_status_cmd(
    outbox: Annotated[Path, typer.Option(help="the outbox file")] = Path("storelens-outbox.db"),
) -> None:
    """How many events wait to be sent, how many were set aside, and how old the backlog is."""
    from storelens.ingest.edge_sources import edge_status

    try:
        status = edge_status(outbox)
    except (FileNotFoundError, ConfigError) as exc:  # no outbox there, or not an outbox file
        raise refuse(exc) from exc
    typer.echo(json.dumps(status, indent=2, default=str))


def mqtt_bridge(
    database_url: Annotated[str | None, typer.Option(envvar="STORELENS_DATABASE_URL")] = None,
    mqtt_url: Annotated[
        str | None, typer.Option(envvar="STORELENS_MQTT_URL", help="mqtt://host:1883")
    ] = None,
) -> None:
    """Subscribe to {prefix}/{store}/{source}/{type} and append what arrives to the log.

    Malformed messages go to the dead-letter table with the reason. `serve` runs the
    bridge itself when STORELENS_MQTT_URL is set.
    """
    from storelens.ingest.mqtt import run_bridge

    overrides = {k: v for k, v in (("database_url", database_url), ("mqtt_url", mqtt_url)) if v}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if not settings.mqtt_url:
        raise typer.BadParameter("set --mqtt-url or STORELENS_MQTT_URL", param_hint="--mqtt-url")
    console.print(
        f"bridging {settings.mqtt_url} topics {settings.mqtt_topic_prefix}/+/+/+ "
        "into the event log (Ctrl-C to stop)"
    )
    run_bridge(settings, _stop_on_signals())
