"""``storelens recommend``: offline evaluation and training (mounted in the main CLI).

Heavy imports (scipy, scikit-learn, implicit) wait until a command runs, so
``storelens --help`` stays fast and works without the ``recommend`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from storelens.core.errors import InvalidInput, MissingExtra
from storelens.storage.command_line import DbOption, open_database_or_exit, print_error

if TYPE_CHECKING:
    from storelens.recommend.evaluate import EvalReport

__all__ = ["recommend_app"]

recommend_app = typer.Typer(
    help="Recommendations: offline evaluation on basket files, training from orders.",
    no_args_is_help=True,
)
METRIC_COLUMNS = ("precision", "recall", "ndcg", "map", "coverage", "novelty")


@recommend_app.callback()
def _group() -> None:
    """Recommendations: offline evaluation on basket files, training from orders."""


def _fail(message: str) -> typer.Exit:
    print_error(message)
    return typer.Exit(2)


@recommend_app.command("eval")
def eval_command(
    baskets: Annotated[
        Path,
        typer.Option(
            "--baskets",
            help="CSV with columns order_id, user_id, product_id, order_number (extra columns "
            "ignored)",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="list length scored")] = 10,
    tune: Annotated[
        bool,
        typer.Option(help="tune hyper-parameters on the last training basket of each user"),
    ] = True,
    products: Annotated[
        Path | None,
        typer.Option(
            "--products",
            help="CSV with columns product_id, category (and any more: brand, ...) for content "
            "similarity "
            "(unlisted products have no category)",
        ),
    ] = None,
    category_features: Annotated[
        bool,
        typer.Option(
            "--category-features",
            help="with --products: add the customer x category features to the blend "
            "(off: no gain on Instacart's validation split)",
        ),
    ] = False,
) -> None:
    """Hold out each user's last order; score every source, the baselines and the blend."""
    try:
        from storelens.recommend.baskets import read_baskets_csv
        from storelens.recommend.evaluate import evaluate_history
        from storelens.recommend.products import read_products_csv
    except MissingExtra as exc:  # pragma: no cover - the dev install has the extra
        raise _fail(str(exc)) from exc
    if category_features and products is None:
        # Was ignored without a word: the table then looked like the features' result.
        raise _fail("--category-features needs --products (the categories come from it)")
    err = Console(stderr=True, soft_wrap=True)
    try:
        attributes = read_products_csv(products) if products is not None else None
        history = read_baskets_csv(baskets)
        with err.status("evaluating") as status:
            report = evaluate_history(
                history,
                k=k,
                attributes=attributes,
                tuned=tune,
                progress=lambda s: status.update(s),
                category_features=category_features,
            )
    except InvalidInput as exc:
        raise _fail(str(exc)) from exc
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode())
        return
    left_out = (
        f" ({report.single_order_users:,} with a single order left out)"
        if report.single_order_users
        else ""
    )
    title = f"{report.users:,} users{left_out}, {report.items:,} items, last order held out"
    _print_report(report, k, title)


def _print_report(report: EvalReport, k: int, title: str) -> None:
    # Folded, not cut with an ellipsis, in a narrow terminal: a method's name or a
    # metric's header cut short ("persona…", "precis…") left the table unreadable.
    table = Table(title=title)
    table.add_column("method", style="bold", overflow="fold")
    for col in METRIC_COLUMNS:
        table.add_column(col, justify="right", overflow="fold")
    table.add_column("hits / held out", justify="right", overflow="fold")
    for name, score in report.methods.items():
        table.add_row(
            name,
            *(
                f"{score.novelty:.2f}" if c == "novelty" else f"{getattr(score, c):.4f}"
                for c in METRIC_COLUMNS
            ),
            f"{score.hits:,} / {score.held_out_items:,}",
        )
    Console().print(table)
    if report.paired:
        Console().print(_paired_table(report, k))


def _paired_table(report: EvalReport, k: int) -> Table:
    """Blend minus each baseline on the same users: a lead whose interval holds 0 is
    not distinguishable from noise on this many held-out baskets."""
    metrics = next(iter(report.paired.values())).keys()
    table = Table(title=f"blend minus baseline, 95 % CI (paired bootstrap over users, @{k})")
    table.add_column("baseline", style="bold", overflow="fold")
    for m in metrics:
        table.add_column(f"{m}@{k}", justify="right", overflow="fold")
        table.add_column("95 % CI", justify="right", overflow="fold")
    for name, diffs in report.paired.items():
        cells: list[str] = []
        for m in metrics:
            d = diffs[m]
            cells += [f"{d.diff:+.4f}", f"[{d.low:+.4f}, {d.high:+.4f}]"]
        table.add_row(name, *cells)
    return table


@recommend_app.command("train")
def train_command(
    database_url: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
    precompute: Annotated[
        bool,
        typer.Option(
            help="write each consenting customer's blend scores and candidates "
            "(candidates only with STORELENS_RECOMMEND_CANDIDATE_STORE=redis); "
            "--no-precompute only tunes and evaluates, writing neither"
        ),
    ] = True,
) -> None:
    """Tune and evaluate on the database's orders (each customer's last order held out),
    then fit the blend on all orders, keep each consenting customer's next-basket scores
    and precompute their candidates for serving (Redis in production). Only customers
    whose latest personalization decision is a grant are learned from and precomputed;
    everyone else is served the store's popularity."""
    from storelens.recommend.candidate_store import candidate_store
    from storelens.recommend.evaluate import evaluate_history
    from storelens.recommend.training import (
        history_from_orders,
        precompute_candidates,
        store_blend_scores,
    )

    engine, settings = open_database_or_exit(database_url)
    with engine.connect() as conn:
        history = history_from_orders(conn)
    if history.n_users == 0 or all(len(b) < 2 for b in history.baskets):
        raise _fail(
            "no customer who consents to personalization has two orders yet: "
            "nothing to learn from (only they are learned from)"
        )
    err = Console(stderr=True, soft_wrap=True)
    with err.status("training") as status:
        report = evaluate_history(history, progress=lambda s: status.update(s))
    if precompute:
        with err.status("scoring every customer's next basket with the blend"):
            scored, rows = store_blend_scores(engine, settings, history, report.params)
        err.print(
            f"blend scores written for {scored} consenting customers, every one with an "
            f"order ({rows} rows; the table below scores those with two or more)"
        )
        if settings.recommend_candidate_store == "memory":
            # This process's memory ends with the command: "written (memory)" promised
            # lists nobody would read (a new user's walk-through). The server builds
            # each customer's list from the tables on its first request instead.
            err.print(
                "candidates: not precomputed (the candidate store is this process's "
                "memory; the server builds each list on its first request). With "
                "STORELENS_RECOMMEND_CANDIDATE_STORE=redis they are written here."
            )
        else:
            store = candidate_store(settings)
            with Progress(
                TextColumn("candidates"), BarColumn(), MofNCompleteColumn(), console=err
            ) as bar:
                task = bar.add_task("candidates", total=history.n_users)
                written = precompute_candidates(
                    engine, settings, store, list(history.users), lambda: bar.advance(task)
                )
            err.print(f"{written} customers' candidates written to Redis")
    if as_json:
        typer.echo(orjson.dumps(report.as_json(), option=orjson.OPT_INDENT_2).decode())
    else:
        title = f"{report.users} customers with two or more orders, last order held out"
        _print_report(report, report.k, title)
