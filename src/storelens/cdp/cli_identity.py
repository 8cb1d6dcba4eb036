"""``storelens cdp resolve|profile|unmerge|eval``: identity resolution from the shell.

Registered on :data:`storelens.cdp.cli.cdp_app`; import-time cost is Typer only, the
Splink model loads when a command runs.
"""

from __future__ import annotations

import csv
import dataclasses
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from storelens.cdp.cli import cdp_app, open_engine
from storelens.cdp.linkage_detail import detail_report, read_truth, told_apart_report
from storelens.cdp.linkage_eval import clusters_to_pairs, score_pairs
from storelens.cdp.profile import build_profile
from storelens.cdp.resolution import canonical_id, record_key, resolve
from storelens.cdp.unmerge import unmerge
from storelens.core.errors import Conflict, NotFound
from storelens.privacy import audit
from storelens.storage.command_line import print_error, refuse
from storelens.storage.tables import customers

__all__ = ["eval_command", "profile_command", "read_true_pairs", "resolve_command"]

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="STORELENS_DATABASE_URL",
        help="SQLAlchemy URL; default sqlite:///./storelens.db",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(type(value).__name__)


def _dump(value: Any) -> str:
    return orjson.dumps(
        value, default=_json_default, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS
    ).decode()


@cdp_app.command("resolve")
def resolve_command(
    full: Annotated[
        bool,
        typer.Option(
            "--full/--incremental",
            help="--full retrains and may merge or split customers (ids kept where possible); "
            "--incremental links only new records with the last model and changes no id",
        ),
    ] = True,
    threshold: Annotated[
        float, typer.Option(min=0.5, max=1.0, help="match probability that links two records")
    ] = 0.9,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Link customer records into customers with stable ids."""
    console = Console()
    mode: Literal["full", "incremental"] = "full" if full else "incremental"
    try:
        with console.status(f"resolving identities ({mode})…"):
            run = resolve(open_engine(database_url), mode, threshold=threshold, actor="cli")
    except Conflict as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(_dump(run.as_dict()))
        return
    table = Table(title=f"identity resolution ({run.mode}, {run.model})")
    for col in ("records", "new", "pairs", "customers", "seconds"):
        table.add_column(col, justify="right")
    table.add_row(
        str(run.records), str(run.new_records), str(run.pairs), str(run.customers), str(run.seconds)
    )
    console.print(table)
    changes = ", ".join(f"{k}: {v}" for k, v in sorted(run.changes.items())) or "none"
    console.print(f"changes: {changes}")
    if run.changes.get("merge_suggested"):
        console.print("merges were suggested for review; a --full run performs them")


@cdp_app.command("profile")
def profile_command(
    customer_id: Annotated[str, typer.Argument(help="customer id, retired id or loyalty id")],
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show one customer's unified profile (the read is audited)."""
    engine = open_engine(database_url)
    with engine.begin() as conn:
        profile = build_profile(conn, customer_id)
        if profile is None:
            raise refuse(f"no customer {customer_id!r}")
        audit.record(conn, audit.operator(), "customer.read", "customer", customer_id)
    if as_json:
        typer.echo(_dump(profile))
        return
    console = Console()
    conf = profile["confidence"]
    console.print(
        f"[bold]{profile['customer_id']}[/bold]  confidence {conf['score']} "
        f"({conf['records']} records; identity {conf['identity']})"
    )
    golden = Table(title="golden record")
    for col in ("field", "value", "source", "rule", "agree/conflict"):
        golden.add_column(col)
    for field, v in profile["golden"].items():
        golden.add_row(
            field,
            str(v["value"]),
            f"{v['source_system']}:{v['source_record_id']}",
            v["rule"],
            f"{v['agreeing']}/{v['conflicting']}",
        )
    console.print(golden)
    eng, prefs = profile["engagement"], profile["preferences"]
    console.print(
        f"orders {eng['orders']}, spent {eng['total_spent']}, last order {eng['last_order']}, "
        f"web sessions {profile['web']['sessions']}, visits tied {profile['visits']['tied']}"
    )
    top = ", ".join(f"{c['category']} ({c['items']})" for c in prefs["top_categories"]) or "-"
    console.print(f"top categories: {top}; price band: {prefs['price_band'] or '-'}")
    consent = ", ".join(f"{c.purpose}={'yes' if c.granted else 'no'}" for c in profile["consent"])
    console.print(f"consent: {consent or 'none recorded'}")


@cdp_app.command("unmerge")
def unmerge_command(
    customer_id: Annotated[str, typer.Argument(help="the customer to split")],
    records: Annotated[list[str], typer.Argument(help="records to split off, as source:record")],
    reason: Annotated[str | None, typer.Option(help="why; kept in the audit log")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Split wrongly merged records off a customer; later runs keep them apart."""
    engine = open_engine(database_url)
    try:
        with engine.begin() as conn:
            current = canonical_id(conn, customer_id) or customer_id
        split = unmerge(engine, current, records, audit.operator(), reason)
    except (NotFound, Conflict, ValueError) as exc:  # Conflict: a card on both sides
        print_error(exc)
        raise typer.Exit(2) from exc
    typer.echo(f"{', '.join(split.records)} split off {current} into {split.new_customer_id}")
    if split.customer_id != current:
        typer.echo(f"{current} was made for those records: the rest are {split.customer_id}")
    if split.aliases:
        typer.echo(f"retired ids that went with them: {', '.join(split.aliases)}")


def read_true_pairs(path: Path) -> set[tuple[str, str]]:
    """Pairs of record keys from a CSV: the first two columns (a header row is skipped)."""
    pairs: set[tuple[str, str]] = set()
    with path.open(newline="") as fh:
        for n, row in enumerate(csv.reader(fh), start=1):
            if len(row) < 2:
                raise ValueError(f"{path}:{n}: expected two record keys, got {row!r}")
            a, b = row[0].strip(), row[1].strip()
            if n == 1 and ":" not in a and ":" not in b:
                continue  # header
            if ":" not in a or ":" not in b:
                raise ValueError(f"{path}:{n}: record keys look like source:record, got {row!r}")
            if a != b:
                pairs.add((a, b) if a < b else (b, a))
    if not pairs:
        raise ValueError(f"{path}: no pairs found")
    return pairs


def _assigned(database_url: str | None) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """Record key -> customer id, and the values that can tell two people apart."""
    import pandas as pd

    from storelens.cdp.matching_keys import add_match_keys
    from storelens.cdp.normalise import normalise_text

    with open_engine(database_url).begin() as conn:
        rows = list(
            conn.execute(
                select(
                    customers.c.source_system,
                    customers.c.source_record_id,
                    customers.c.customer_id,
                    customers.c.first_name,
                    customers.c.last_name,
                    customers.c.email,
                    customers.c.dob,
                )
            )
        )
    assigned = {record_key(r.source_system, r.source_record_id): r.customer_id for r in rows}
    frame = pd.DataFrame(
        {
            "unique_id": list(assigned),
            "first_name": [normalise_text(r.first_name) for r in rows],
            "last_name": [normalise_text(r.last_name) for r in rows],
            "email": [r.email for r in rows],
            "dob": [r.dob.isoformat() if r.dob else None for r in rows],
        }
    )
    keyed = add_match_keys(frame) if len(frame) else frame
    values = {
        str(u): {"dob": d, "suffix": s, "email_key": e}
        for u, d, s, e in zip(
            keyed["unique_id"],
            keyed.get("dob", []),
            keyed.get("suffix", []),
            keyed.get("email_key", []),
            strict=True,
        )
    }
    return assigned, values


def _detail_tables(result: dict[str, Any]) -> list[Table]:
    tables = []
    for key, title, what in (
        ("recall_by_source_pair", "recall by source pair", "recall"),
        ("false_merge_by_relation", "false merges by hard-negative relation", "merged"),
        ("parent_child_records", "same-name parent/child record pairs", "merged"),
        ("recall_by_pattern", "recall by pattern", "recall"),
    ):
        table = Table(title=title)
        for col in ("", "pairs", "hit", what):
            table.add_column(col, justify="right")
        for name, row in result[key].items():
            rate = "-" if row["rate"] is None else f"{row['rate']:.3f}"
            table.add_row(name, f"{row['pairs']:,}", f"{row['hit']:,}", rate)
        tables.append(table)
    return tables


@cdp_app.command("eval")
def eval_command(
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs", exists=True, dir_okay=False, help="CSV of true pairs: record_a,record_b"
        ),
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(
            "--truth",
            exists=True,
            dir_okay=False,
            help="truth JSON (records -> person and patterns, hard negatives), as the retail "
            "generator writes it",
        ),
    ] = None,
    detail: Annotated[
        bool,
        typer.Option(
            "--detail",
            help="with --truth: recall per source pair and per pattern, false merges per "
            "hard-negative relation, parent/child pairs split by whether anything tells "
            "them apart",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Precision, recall and F1 of the current customer ids against known truth."""
    err = Console(stderr=True, soft_wrap=True)
    if (pairs is None) == (truth is None) or (detail and truth is None):
        err.print("[red]error:[/red] give --pairs or --truth (and --detail only with --truth)")
        raise typer.Exit(2)
    try:
        if truth is not None:
            try:
                data = orjson.loads(truth.read_bytes())
            except orjson.JSONDecodeError as exc:  # name the file, not only the position
                raise ValueError(f"{truth}: not valid JSON: {exc}") from exc
            if not isinstance(data, dict):  # a list used to end in an AttributeError
                raise ValueError(f"{truth}: not a JSON object with 'records'")
            person_of, patterns_of, negatives = read_truth(data)
            true_pairs = clusters_to_pairs(person_of)
        else:
            assert pairs is not None
            true_pairs = read_true_pairs(pairs)
    except ValueError as exc:
        print_error(exc)
        raise typer.Exit(2) from exc
    assigned, values = _assigned(database_url)
    unknown = sorted({k for p in true_pairs for k in p} - set(assigned))
    if truth is not None:
        unknown = sorted(set(person_of) - set(assigned))
        assigned = {k: v for k, v in assigned.items() if k in person_of}
    scores = score_pairs(clusters_to_pairs(assigned), true_pairs)
    result: dict[str, Any] = {
        "precision": round(scores.precision, 5),
        "recall": round(scores.recall, 5),
        "f1": round(scores.f1, 5),
        "true_positives": scores.true_positives,
        "false_positives": scores.false_positives,
        "false_negatives": scores.false_negatives,
        "unknown_records": len(unknown),
    }
    if detail:
        report = detail_report(assigned, person_of, patterns_of, negatives)
        report["parent_child_records"] = told_apart_report(assigned, person_of, values, negatives)
        result = {**report, "unknown_records": len(unknown)}
    if as_json:
        typer.echo(_dump(result))
        return
    console = Console()
    name = (truth or pairs or Path("?")).name
    table = Table(title=f"linkage against {name}")
    head = {k: v for k, v in result.items() if not isinstance(v, dict)}
    for key in head:
        table.add_column(key.replace("_", " "), justify="right")
    table.add_row(*(str(v) for v in head.values()))
    console.print(table)
    if detail:
        for t in _detail_tables(result):
            console.print(t)
    if unknown:
        console.print(f"{len(unknown)} records in the truth file are not in the database")
