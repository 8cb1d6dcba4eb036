"""``storelens predict``: lifetime value and churn commands (mounted in the main CLI).

Heavy imports (pandas, lifetimes) wait until a command runs, so ``storelens --help``
stays fast and works without the ``predict`` extra.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from storelens.core.errors import Conflict, MissingExtra
from storelens.storage.command_line import print_error

if TYPE_CHECKING:
    from storelens.predict.evaluate import ClvEvaluation

__all__ = ["predict_app"]

predict_app = typer.Typer(
    help="Predictive analytics: lifetime value, churn risk, segments.", no_args_is_help=True
)


@predict_app.callback()
def _group() -> None:
    """Predictive analytics: lifetime value, churn risk, segments."""
    # A callback keeps ``eval-clv`` a subcommand even while it is the only one.


def _fail(message: str) -> typer.Exit:
    print_error(message)
    return typer.Exit(2)


def _moment(value: str, option: str, *, with_time: bool = False) -> datetime:
    """A date (or, where ``with_time``, a date and time) given on the command line.

    Click's own parsing said "'2026-13-01' does not match the formats '%Y-%m-%d', ..."
    in a box, for a value that matches the format and names no month (a new user's
    review): the one-line error says what is wrong with it."""
    formats = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"] if with_time else ["%Y-%m-%d"]
    for fmt in formats:
        try:
            return datetime.strptime(value.strip(), fmt)
        except ValueError:
            continue
    like = "2026-11-02" + (" or 2026-11-02T08:00:00" if with_time else "")
    why = ""
    try:
        date.fromisoformat(value.strip()[:10])
    except ValueError as exc:
        if len(value.strip()) >= 10 and value.strip()[4:5] == "-":
            why = f": {exc}"
    raise _fail(f"{option} must be a date like {like}, got {value!r}{why}")


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _pct(value: float | None) -> str:
    return "n/a (nothing happened)" if value is None else f"{value:+.1f} %"


@predict_app.command("eval-clv")
def eval_clv(
    transactions: Annotated[
        Path, typer.Option("--transactions", help="CSV with customer_id,date,amount")
    ],
    calibration_end: Annotated[
        str, typer.Option("--calibration-end", help="last day fitted on (YYYY-MM-DD)")
    ],
    holdout_end: Annotated[
        str, typer.Option("--holdout-end", help="last day predicted (YYYY-MM-DD)")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Fit up to the calibration end and score the holdout: storelens's model beside BG/NBD.

    storelens's model is the best of BG/NBD, Pareto/NBD, a boosted BG/NBD and the
    honeymoon BG/NBD on a validation window cut from the end of the calibration period
    (never the holdout). The BG/NBD-family models quote per-customer forecasts chosen for
    absolute error that add up to their expected total; the MAE of their expected counts
    is shown beside it.
    """
    try:
        from storelens.predict.clv import FitError
        from storelens.predict.evaluate import PERIOD_CONVENTION, evaluate_clv
        from storelens.predict.transactions import (
            TransactionFileError,
            check_window,
            read_transactions,
        )
    except MissingExtra as exc:  # pragma: no cover - the dev install has the extra
        raise _fail(str(exc)) from exc
    cal_end = _moment(calibration_end, "--calibration-end").date()
    hold_end = _moment(holdout_end, "--holdout-end").date()
    try:
        check_window(cal_end, hold_end)  # before reading a large file
        from storelens.config import get_settings

        tolerance = get_settings().predict_validation_tolerance_pct
        result = evaluate_clv(
            read_transactions(transactions), cal_end, hold_end, challenge_with=tolerance
        )
    except (TransactionFileError, FitError, MissingExtra) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(orjson.dumps(result.as_json(), option=orjson.OPT_INDENT_2).decode())
        return
    console = Console(width=120)
    console.print(
        f"calibration to {cal_end}, holdout to {hold_end} ({result.holdout_weeks:.1f} weeks); "
        f"{result.customers} customers, {result.repeat_buyers} repeat buyers; {PERIOD_CONVENTION}",
        highlight=False,
    )
    p, g = result.bgnbd, result.gamma_gamma
    spend_params = (
        f"not fitted: {result.spend_unavailable}"
        if g is None
        else f"{g.p:.3f}, {g.q:.3f}, {g.v:.3f}"
    )
    console.print(
        _table(
            "fitted parameters",
            [
                ("BG/NBD r, α", f"{p.r:.3f}, {p.alpha:.3f}"),
                ("BG/NBD a, b", f"{p.a:.3f}, {p.b:.3f}"),
                ("Gamma-Gamma p, q, ν", spend_params),
            ],
        )
    )
    if result.challenger is not None and result.challenger_purchases is not None:
        ours, classic = result.challenger_purchases, result.purchases
        side = Table(
            title=f"holdout repeat purchases: storelens ({result.challenger.winner}) vs BG/NBD"
        )
        for col in ("", "storelens", "BG/NBD"):
            side.add_column(col, justify="right")
        side.add_row("customers", f"{result.customers:,}", f"{result.customers:,}")
        side.add_row("predicted", f"{ours.predicted:,.1f}", f"{classic.predicted:,.1f}")
        side.add_row("actual", f"{ours.actual:,.1f}", f"{classic.actual:,.1f}")
        side.add_row(
            "aggregate error", _pct(ours.aggregate_error_pct), _pct(classic.aggregate_error_pct)
        )
        side.add_row("per-customer MAE", f"{ours.mae:.3f}", f"{classic.mae:.3f}")
        if result.challenger_expected is not None:
            side.add_row(
                "MAE of expected counts",
                f"{result.challenger_expected.mae:.3f}",
                f"{classic.mae:.3f}",
            )
        console.print(side)
        for name, why in (result.challenger.excluded or {}).items():
            console.print(f"left out of the choice: {name} ({why})", highlight=False)
    _print_uncertainty(console, result)
    for title, err in (
        ("holdout repeat purchases", result.purchases),
        ("holdout spend", result.spend),
    ):
        if err is None:
            console.print(f"BG/NBD: {title}: not measured ({result.spend_unavailable})")
            continue
        console.print(
            _table(
                f"BG/NBD: {title}",
                [
                    ("predicted", f"{err.predicted:,.1f}"),
                    ("actual", f"{err.actual:,.1f}"),
                    ("aggregate error", _pct(err.aggregate_error_pct)),
                    ("per-customer MAE", f"{err.mae:.3f}"),
                ],
            )
        )


def _interval(ci: tuple[float, float] | None, fmt: str, unit: str = "") -> str:
    return "n/a (nothing happened)" if ci is None else f"[{ci[0]:{fmt}}, {ci[1]:{fmt}}]{unit}"


def _print_uncertainty(console: Console, result: ClvEvaluation) -> None:
    """storelens minus BG/NBD and each aggregate error, with paired bootstrap intervals."""
    band = result.uncertainty
    if band is None or result.challenger_purchases is None:
        return
    table = Table(title="95 % CI, paired bootstrap over customers")
    for col in ("", "point", "95 % CI"):
        table.add_column(col, justify="right")
    table.add_row(
        "MAE, storelens − BG/NBD", f"{band.mae_diff:+.3f}", _interval(band.mae_diff_ci95, "+.3f")
    )
    for name, err, ci in (
        ("storelens", result.challenger_purchases, band.storelens_aggregate_error_pct_ci95),
        ("BG/NBD", result.purchases, band.bgnbd_aggregate_error_pct_ci95),
    ):
        table.add_row(
            f"aggregate error, {name}", _pct(err.aggregate_error_pct), _interval(ci, "+.1f", " %")
        )
    console.print(table)
    console.print(
        f"({band.resamples:,} resamples of the {band.customers:,} customers, seed {band.seed}; "
        "the forecasts above are fitted once and not refitted per resample, so the intervals "
        "cover which customers were drawn, not parameter uncertainty)",
        highlight=False,
    )


def _champion_line(params: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Which purchase model scored, and on what evidence (or why BG/NBD stood in, or why
    there is no lifetime value)."""
    if metrics.get("not_fitted"):
        return f"not scored: {metrics['not_fitted']}"
    if metrics.get("fallback_reason"):
        line = f"{params['model']} ({metrics['fallback_reason']})"
    else:
        window, best = metrics["validation"], metrics["validation"]["winner"]
        line = (
            f"{params['model']}, chosen on the validation window {window['from']}..{window['to']} "
            f"(predicted {best['predicted']:,.0f} of {best['actual']:,.0f} purchases, "
            f"{_pct(best['aggregate_error_pct'])}, per-customer MAE {best['mae']:.3f})"
        )
    if metrics.get("spend_unavailable"):
        line += (
            f"; no lifetime value, expected purchases and P(alive) kept: "
            f"{metrics['spend_unavailable']}"
        )
    return line


@predict_app.command("score")
def score(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="score as of this moment, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS (UTC; default "
            "now): nothing at or after it counts",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="STORELENS_DATABASE_URL",
            help="SQLAlchemy URL; default sqlite:///./storelens.db",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the run as JSON")] = False,
) -> None:
    """Re-score every customer with analytics consent: features, CLV, churn risk, segments.

    Expected purchases, P(alive) and CLV come from the purchase model that wins on a
    validation window cut from the store's own history before the as-of date (the
    choice ``eval-clv`` makes); BG/NBD when that history is too short.

    The snapshot is replaced as a whole: a customer who withdrew consent has no score
    afterwards. Models are kept in the registry with their data window and metrics.
    """
    from datetime import UTC

    from rich.progress import Progress, SpinnerColumn, TextColumn

    from storelens.storage.command_line import open_database_or_exit

    moment = _moment(as_of, "--as-of", with_time=True) if as_of is not None else None
    engine, settings = open_database_or_exit(database_url)
    now = datetime.now(UTC)
    when = moment.replace(tzinfo=UTC) if moment else now
    if when > now:
        raise _fail(f"--as-of {when.date()} is in the future: nothing after now is known")
    try:
        from storelens.predict.store import list_segments, rescore_as_configured, scored_count
    except MissingExtra as exc:  # pragma: no cover - the dev install has the extra
        raise _fail(str(exc)) from exc
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), transient=True, disable=as_json
    ) as progress:
        progress.add_task(f"scoring customers as of {when.isoformat()}", total=None)
        try:
            run = rescore_as_configured(engine, when, settings)
        except Conflict as exc:  # nothing scored: the live snapshot is kept
            raise _fail(str(exc)) from exc
    # What was written, not what was fitted: someone erased or withdrawn during the fit
    # is not written, and a small segment they left has no share (a review saw the
    # command count and describe them).
    with engine.connect() as conn:
        written, stored = scored_count(conn), list_segments(conn)
    segment_rows: list[dict[str, Any]] = [
        {
            "id": s["id"],
            "customers": s["customers"],
            "revenue_share": (None if s["revenue_share"] is None else round(s["revenue_share"], 4)),
        }
        for s in stored
    ]
    summary = {
        "as_of": run.as_of.isoformat(),
        "version": run.version,
        "customers": written,
        "segments": segment_rows,
        "models": [
            {"kind": m.kind, "model": m.params.get("model", m.kind), "metrics": m.metrics}
            for m in run.models
        ],
    }
    if as_json:
        typer.echo(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
        return
    console = Console(width=120)
    console.print(
        f"scored {summary['customers']} consenting customers as of {summary['as_of']} "
        f"(version {run.version})",
        highlight=False,
    )
    purchases = next((m for m in run.models if m.kind == "clv"), None)
    if purchases is not None:
        console.print(f"lifetime value: {_champion_line(purchases.params, purchases.metrics)}")
    table = Table(title="segments")
    for col in ("segment", "customers", "revenue share"):
        table.add_column(col, justify="right" if col != "segment" else "left")
    for seg in segment_rows:
        share = seg["revenue_share"]
        table.add_row(
            seg["id"],
            f"{seg['customers']:,}",
            "withdrawn" if share is None else f"{100 * share:.0f} %",
        )
    console.print(table)
