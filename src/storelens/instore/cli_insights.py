"""``storelens insights``: zone traffic against sales, findings and heatmaps for a period."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from storelens.config import Settings
from storelens.core.dayparts import DAYPARTS
from storelens.core.durations import duration_in, duration_unit
from storelens.core.errors import NotFound
from storelens.instore.insights import StoreInsights
from storelens.instore.insights_data import InsightInputs, insights_of, load_inputs
from storelens.instore.insights_heat import (
    HeatDensity,
    average_density,
    density_png,
    side_by_side_png,
)
from storelens.instore.insights_html import HeatPicture, insights_html
from storelens.processors import run_projections
from storelens.storage import migrate
from storelens.storage.command_line import DbOption, print_error
from storelens.storage.eventlog import EventLog

__all__ = ["cli_failure", "heat_pictures", "insights_command", "parse_day"]

console = Console()
errors = Console(stderr=True, soft_wrap=True)


def cli_failure(message: str) -> typer.Exit:
    """The red one-line error and exit code 2 the insights and export commands share."""
    print_error(message)
    return typer.Exit(2)


def parse_day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise cli_failure(f"{option} must be a date like 2026-11-02, got {value!r}") from None


def _densities(inputs: InsightInputs, label: str) -> list[HeatDensity]:
    parts: list[tuple[str | None, str]] = [(None, f"{label}, all day")]
    parts += [(name, f"{label}, {name} ({lo:02d}-{hi:02d} h)") for name, lo, hi in DAYPARTS]
    out = [
        average_density(
            inputs.heat,
            timezone=inputs.layout.timezone,
            label=caption,
            daypart=daypart,
            since=inputs.since,
            until=inputs.until,
            floor=inputs.layout.floor,
        )
        for daypart, caption in parts
    ]
    return [d for d in out if d is not None]


def heat_pictures(
    inputs: InsightInputs, label: str, compare: tuple[InsightInputs, str] | None = None
) -> list[HeatPicture]:
    """The period's heat over the whole day and per daypart, and the two periods side by side."""
    layout = inputs.layout
    shown = _densities(inputs, label)
    pictures = [(d.label, density_png(layout, d)) for d in shown]
    if compare is not None and shown:
        other, other_label = compare
        theirs = _densities(other, other_label)
        if theirs:
            png = side_by_side_png(layout, theirs[0], shown[0])
            pictures.insert(0, (f"{other_label} (left) against {label} (right)", png))
    return pictures


def _print(result: StoreInsights) -> None:
    console.print(f"[bold]{result.store_name}[/bold]: store insights ({result.timezone})")
    for f in result.findings:
        console.print(f"  • {f.sentence}")
    if not result.findings:
        console.print("  Nothing stands out in this period.")
    channels = ", ".join(c.replace("_", "-") for c in result.settings.sales_channels)
    # The columns say what they count: a new user read the zones' revenue (in-store
    # orders only) against the demo report's (every order) and the entrance's visits
    # (each customer goes in and out through it) as double the footfall.
    table = Table(
        title="zone traffic against sales",
        caption=(
            f"units and revenue: {channels} orders only (app and web orders are in no "
            "zone); units/100: units per 100 zone visits; a zone visit is one entry, so "
            "an entrance counts each customer going in and going out"
        ),
    )
    for col in ("zone", "visits", "stoppers", "median dwell", "units",
                f"revenue ({channels})", "units/100"):  # fmt: skip
        table.add_column(col, justify="right")
    dwell_unit = duration_unit(r.median_dwell_s for r in result.zones)
    for r in result.zones:
        rate = r.sales_per_100_visits
        table.add_row(
            r.name,
            f"{r.visits:,}",
            f"{r.stoppers:,}",
            duration_in(r.median_dwell_s, dwell_unit),
            f"{r.units:,}",
            f"{r.revenue:,.2f}",
            "–" if rate is None else f"{rate:.1f}",
        )
    console.print(table)


def insights_command(
    store: Annotated[str, typer.Option(help="store id")],
    from_: Annotated[str, typer.Option("--from", help="first local day, YYYY-MM-DD")],
    to: Annotated[str, typer.Option(help="last local day, YYYY-MM-DD (inclusive)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    html: Annotated[
        Path | None, typer.Option(help="write a self-contained HTML report to this file")
    ] = None,
    compare_from: Annotated[
        str | None, typer.Option(help="a second period's first day, for heatmaps side by side")
    ] = None,
    compare_to: Annotated[str | None, typer.Option(help="the second period's last day")] = None,
    database_url: DbOption = None,
) -> None:
    """Which zones draw people, which are cold, and which have high traffic but low sales."""
    first, last = parse_day(from_, "--from"), parse_day(to, "--to")
    if first > last:
        raise cli_failure(
            f"--from {first} is after --to {last}; the period runs from --from to --to"
        )
    if (compare_from is None) != (compare_to is None):
        raise cli_failure("--compare-from and --compare-to go together")
    if as_json and html is not None:
        raise cli_failure("choose --json or --html, not both")
    if html is not None and not html.parent.is_dir():  # before the work, not after it
        raise cli_failure(f"--html {html}: no such directory {str(html.parent)!r}")
    compare_days = None
    if compare_from is not None and compare_to is not None:
        compare_days = (
            parse_day(compare_from, "--compare-from"),
            parse_day(compare_to, "--compare-to"),
        )
        if compare_days[0] > compare_days[1]:
            raise cli_failure(f"--compare-from {compare_from} is after --compare-to {compare_to}")
    settings = Settings(database_url=database_url) if database_url else Settings()
    engine = migrate.open_database(settings.database_url)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), console=errors, transient=True
    ) as progress:
        step = progress.add_task("bringing facts up to date", total=None)
        try:  # the same catch-up as `storelens ops report`: safe beside a running server
            run_projections(EventLog(engine))
        except Exception as exc:
            errors.print(f"[yellow]warning:[/yellow] a projection failed ({type(exc).__name__})")
        progress.update(step, description="reading the period")
        try:
            inputs = load_inputs(engine, store, first, last)
            result = insights_of(inputs)
            other = load_inputs(engine, store, *compare_days) if compare_days else None
        except NotFound as exc:
            raise cli_failure(str(exc)) from None
        pictures: list[HeatPicture] = []
        note = None
        if html is not None:
            progress.update(step, description="drawing heatmaps")
            label = f"{first} to {last}"
            against = (other, f"{compare_from} to {compare_to}") if other else None
            try:
                pictures = heat_pictures(inputs, label, against)
            except RuntimeError as exc:  # OpenCV missing: the report still has its tables
                note = str(exc)
            if not pictures and note is None:
                note = "No heatmaps were recorded for this period."
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, default=str))
    elif html is not None:
        try:
            html.write_text(insights_html(result, pictures, note), encoding="utf-8")
        except OSError as exc:  # a directory, no permission, a full disk
            raise cli_failure(f"--html {html}: {exc.strerror or exc}") from None
        console.print(f"wrote {html}")
    else:
        _print(result)
