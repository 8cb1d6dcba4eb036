"""``storelens ops``: the operations report in the terminal or as JSON."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from storelens.config import Settings
from storelens.core.errors import InvalidInput
from storelens.core.layout import load_layout
from storelens.instore.processor import report_from_db, report_from_file
from storelens.processors import run_projections
from storelens.storage import migrate
from storelens.storage.command_line import DbOption, refuse
from storelens.storage.eventlog import EventLog

__all__ = ["ops_app", "print_report"]

ops_app = typer.Typer(
    help="Store operations: fulfillment, baristas, queues, dwell.", no_args_is_help=True
)
console = Console()


def _default_layout() -> Path:
    from importlib import resources

    return Path(str(resources.files("storelens.samples") / "layouts" / "cafe.toml"))


def _parse_day(day: str | None) -> date | None:
    """``--day`` as a date, checked before any work: ``2026-02-30`` or ``yesterday`` is a
    usage error naming the option (exit 2), not a traceback after the projections ran."""
    if day is None:
        return None
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(
            f"must be a date like 2026-11-02, got {day[:40]!r}", param_hint="--day"
        ) from None


def _window(d: date | None, tz: str) -> tuple[datetime | None, datetime | None]:
    if d is None:
        return None, None
    start = datetime.combine(d, time(0), tzinfo=ZoneInfo(tz))
    return start, start + timedelta(days=1)


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f} min"


def _period(report: dict[str, Any], tz: ZoneInfo) -> str:
    """The report's ``[from, to)`` as local dates: one day, a range, or all of them."""
    since, until = report.get("from"), report.get("to")
    if since is None and until is None:
        return "all days on record"
    first = f"{datetime.fromisoformat(since).astimezone(tz):%Y-%m-%d}" if since else "the start"
    last = "now"
    if until is not None:  # exclusive: the day before a midnight end
        end = datetime.fromisoformat(until) - timedelta(microseconds=1)
        last = f"{end.astimezone(tz):%Y-%m-%d}"
    return first if first == last else f"{first} to {last}"


def print_report(report: dict[str, Any], console: Console = console) -> None:
    """The report as a manager reads it: what it covers, headline figures, small tables."""
    tz = report.get("timezone") or "UTC"
    console.print(
        f"[bold]{escape(report.get('store_id') or 'all stores')}[/bold], "
        f"{_period(report, ZoneInfo(tz))} ({tz})"
    )
    f = report["fulfillment"]
    console.print(
        f"[bold]Order fulfillment[/bold] (payment → hand-off): {f['complete']} orders, "
        f"p50 {_minutes(f['p50_s'])}, p90 {_minutes(f['p90_s'])}, "
        f"max {_minutes(f['max_s'])}; {f['incomplete']} incomplete"
        + (
            f"; {f['untracked']:,} paid on days with no hand-off recorded (not tracked)"
            if f.get("untracked")
            else ""
        )
    )
    for title, rows in (
        ("by daypart", f["by_daypart"]),
        ("by channel", f["by_channel"]),
        ("by register", f["by_register"]),
    ):
        table = Table(title=f"fulfillment {title}")
        for col in ("", "orders", "p50", "p90", "max"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                r["key"],
                str(r["count"]),
                _minutes(r["p50_s"]),
                _minutes(r["p90_s"]),
                _minutes(r["max_s"]),
            )
        console.print(table)
    table = Table(title="baristas")
    for col in ("barista", "on shift", "orders", "drinks", "drinks/hour", "utilisation"):
        table.add_column(col, justify="right")
    for b in report["baristas"]:
        util = "–" if b["utilisation"] is None else f"{b['utilisation']:.0%}"
        dph = "–" if b["drinks_per_hour"] is None else f"{b['drinks_per_hour']:.1f}"
        table.add_row(
            b["staff_id"], f"{b['on_shift_h']:.1f} h", str(b["orders"]), str(b["drinks"]), dph, util
        )
    console.print(table)
    q, d = report["queue"], report["dwell"]
    peak = max((b["max"] for b in q["length"]), default=0)
    console.print(
        f"[bold]Queue[/bold]: {q['wait_count']} customers, wait p50 "
        f"{_minutes(q['wait_p50_s'])}, p90 {_minutes(q['wait_p90_s'])}; "
        f"longest queue {peak}"
    )
    console.print(
        f"[bold]Dwell[/bold]: {d['count']} visits, p50 {_minutes(d['p50_s'])}, "
        f"p90 {_minutes(d['p90_s'])}; {d['walk_bys']} walk-bys (never past the entrance)"
    )
    for a in report.get("alerts", []):
        at = datetime.fromisoformat(a["at"]).astimezone(ZoneInfo(tz))
        console.print(
            f"  alert {a['state']} {at:%Y-%m-%d %H:%M} ({tz}): {a['rule_id']}: {a['message']}"
        )


@ops_app.command("report")
def report(
    events: Annotated[
        str, typer.Option(help="a JSON Lines events file, or 'db' for the database's event log")
    ] = "db",
    day: Annotated[str | None, typer.Option(help="local date YYYY-MM-DD (default: all)")] = None,
    layout: Annotated[
        Path | None, typer.Option(help="layout file for an events file (default: the sample café)")
    ] = None,
    store: Annotated[str | None, typer.Option(help="store id (database mode)")] = None,
    database_url: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    detail: Annotated[
        bool,
        typer.Option(
            help="with --json: add per-order fulfillment, per-customer queue wait and "
            "per-visit dwell (the terminal report shows totals only)"
        ),
    ] = False,
) -> None:
    """Fulfillment time, drinks per barista-hour, queue wait and dwell."""
    the_day = _parse_day(day)
    if events != "db":
        path = Path(events)
        if not path.is_file():
            raise typer.BadParameter(f"no such events file: {path}", param_hint="--events")
        lay = layout or _default_layout()
        since, until = _window(the_day, load_layout(lay).timezone)
        try:
            result = report_from_file(path, lay, since=since, until=until, detail=detail)
        except InvalidInput as exc:  # lines that are not events, named
            raise refuse(exc) from None
    else:
        from storelens import stores

        settings = Settings(database_url=database_url) if database_url else Settings()
        engine = migrate.open_database(settings.database_url)
        try:  # bring facts up to the head of the log (safe beside a running server)
            run_projections(EventLog(engine))
        except Exception as exc:  # each failure is logged with its position
            Console(stderr=True, soft_wrap=True).print(
                f"[yellow]warning:[/yellow] a projection failed ({type(exc).__name__}); "
                "the report may be behind the event log"
            )
        with engine.connect() as conn:
            known = stores.list_stores(conn)
        if not known:
            raise typer.BadParameter("the database has no stores", param_hint="--store")
        chosen = next((s for s in known if s["id"] == store), None) if store else known[0]
        if chosen is None:
            raise typer.BadParameter(f"no store {store!r}", param_hint="--store")
        if store is None and len(known) > 1 and not as_json:  # which one; how to pick another
            console.print(
                f"{len(known)} stores ({', '.join(s['id'] for s in known)}): reporting on "
                f"{chosen['id']}; choose one with --store",
                markup=False,
            )
        since, until = _window(the_day, chosen["timezone"])
        result = report_from_db(
            engine,
            chosen["id"],
            timezone=chosen["timezone"],
            since=since,
            until=until,
            detail=detail,
        )
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=str))
        return
    if detail:  # the per-item figures are for machines: thousands of rows a day
        Console(stderr=True).print("note: --detail adds per-item figures to --json output only")
    print_report(result)


@ops_app.command("process")
def process(
    database_url: DbOption = None,
    follow: Annotated[
        bool,
        typer.Option("--follow/--once", help="keep running and pick up new events every second"),
    ] = False,
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="events per transaction")] = 5000,
) -> None:
    """Run the stream processors (ops metrics, alerts, read models) over the event log.

    The API server does this itself; run it separately when the server runs with
    STORELENS_RUN_PROJECTIONS=false. Safe to kill at any point: it resumes exactly.
    """
    import time as _time

    from storelens.processors import ProjectionLoop

    settings = Settings(database_url=database_url) if database_url else Settings()
    event_log = EventLog(migrate.open_database(settings.database_url))
    if not follow:
        counts = run_projections(event_log, batch=batch)
        console.print(", ".join(f"{k}: {v:,}" for k, v in counts.items()))
        return
    loop = ProjectionLoop(event_log, batch=batch)  # each projection fails alone, with backoff
    while True:
        loop.run_once()
        _time.sleep(1.0)
