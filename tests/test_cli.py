"""The command line as a user runs it: init, ingest with bad lines, layouts, users, keys."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from storelens.cli import app
from storelens.sim import default_layout_path
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog

runner = CliRunner()
RawEvent = Callable[..., dict[str, Any]]
_CONFIGURED_BY_MAIN = ("storelens", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """``main()`` configures logging for the process (the server's redacting filter):
    undo it, or later tests' caplog would miss every storelens record."""
    import logging
    import threading

    hook = threading.excepthook
    kept = []
    for name in _CONFIGURED_BY_MAIN:
        logger = logging.getLogger(name)
        kept.append((logger, list(logger.handlers), logger.level, logger.propagate))
    yield
    for logger, handlers, level, propagate in kept:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    threading.excepthook = hook


def test_init_creates_admin_once(db_url: str) -> None:
    first = runner.invoke(app, ["init", "--database-url", db_url, "--admin", "boss"])
    assert first.exit_code == 0, first.output
    assert re.search(r"one-time password: \S{20,}", first.output)
    second = runner.invoke(app, ["init", "--database-url", db_url, "--admin", "boss"])
    assert second.exit_code == 0 and "exists already" in second.output


def test_ingest_reports_bad_lines_and_exits_nonzero(
    db_url: str, tmp_path: Path, raw_event: RawEvent
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps(raw_event()) + "\nnot json\n" + json.dumps(raw_event()) + "\n")
    errors = tmp_path / "errors.jsonl"
    result = runner.invoke(
        app, ["ingest", str(path), "--database-url", db_url, "--errors-out", str(errors)]
    )
    assert result.exit_code == 1
    assert "line 2" in result.output
    assert json.loads(errors.read_text())["line"] == 2
    assert EventLog(create_engine(db_url)).head() == 2


def test_ingest_missing_file_and_unknown_format(db_url: str, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["ingest", str(tmp_path / "nope.jsonl"), "--database-url", db_url])
    assert missing.exit_code == 2
    odd = tmp_path / "events.xml"
    odd.write_text("<x/>")
    result = runner.invoke(app, ["ingest", str(odd), "--database-url", db_url])
    assert result.exit_code == 2 and "cannot tell the format" in result.output


def test_layout_check_and_load(db_url: str, tmp_path: Path) -> None:
    from importlib import resources

    cafe = Path(str(resources.files("storelens.samples") / "layouts" / "cafe.toml"))
    ok = runner.invoke(app, ["layout", "check", str(cafe)])
    assert ok.exit_code == 0 and "cafe-01" in ok.output
    broken = tmp_path / "bad.toml"
    broken.write_text(cafe.read_text().replace('kind = "queue"', 'kind = "queueue"', 1))
    bad = runner.invoke(app, ["layout", "check", str(broken)])
    assert bad.exit_code == 2 and "zones[" in bad.output and ".kind" in bad.output
    loaded = runner.invoke(app, ["layout", "load", str(cafe), "--database-url", db_url])
    assert loaded.exit_code == 0 and "version 1" in loaded.output


def test_users_and_keys(db_url: str) -> None:
    runner.invoke(app, ["init", "--database-url", db_url])
    made = runner.invoke(
        app, ["users", "create", "ana", "--role", "staff", "--database-url", db_url]
    )
    assert made.exit_code == 0 and "password" in made.output
    dup = runner.invoke(app, ["users", "create", "ana", "--database-url", db_url])
    assert dup.exit_code == 2 and "already exists" in dup.output  # refused input: exit 2
    key = runner.invoke(app, ["keys", "create", "door-counter", "--database-url", db_url])
    assert key.exit_code == 0 and re.search(r"slk_[0-9a-f]{8}_\S+", key.output)
    reset = runner.invoke(app, ["users", "reset-password", "ghost", "--database-url", db_url])
    assert reset.exit_code == 2 and "no user" in reset.output  # names nobody: exit 2


def test_demo_without_server(tmp_path: Path) -> None:
    args = ["demo", "--dir", str(tmp_path / "demo"), "--days", "1", "--no-serve"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pos.order_paid" in result.output
    assert re.search(r"password:\s+\S{20,}", result.output)
    text = " ".join(result.output.split())
    assert "Dashboard:" not in text  # no server answers there
    assert f"storelens serve --database-url sqlite:///{tmp_path / 'demo' / 'storelens.db'}" in text
    log = EventLog(create_engine(f"sqlite:///{tmp_path / 'demo' / 'storelens.db'}"))
    head = log.head()
    assert head > 5000
    scored = re.search(r"scored (\d+) customers with analytics consent", result.output)
    assert scored is not None  # the Customers page is not empty
    from sqlalchemy import func, select

    from storelens.storage.tables import customer_scores, segments

    with log.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(customer_scores)).scalar_one()
        kinds = set(conn.execute(select(segments.c.kind)).scalars())
    assert rows == int(scored.group(1)) > 0 and "rfm" in kinds
    from storelens.storage.tables import orders

    with log.engine.connect() as conn:  # half a year of till orders before the day ...
        first = conn.execute(select(func.min(orders.c.ts))).scalar_one()
        values = conn.execute(select(customer_scores.c.clv, customer_scores.c.churn_risk)).all()
    assert "till history" in text and "orders before them (till history)" in text
    assert first.date() < date.today() - timedelta(weeks=20)
    # ... so lifetime value is fitted and churn risk tells customers apart
    assert all(clv is not None for clv, _ in values)
    assert len({round(risk, 6) for _, risk in values}) > len(values) // 2
    from storelens.privacy import audit
    from storelens.storage.tables import audit_log

    with log.engine.connect() as conn:  # loaded like any file: audited, batch by batch
        loads = conn.execute(
            select(audit_log.c.actor, audit_log.c.detail).where(audit_log.c.resource == "events")
        ).all()
    assert loads and {a for a, _ in loads} == {audit.operator().name}
    assert {d["channel"] for _, d in loads} == {"demo"}
    assert sum(d["accepted"] for _, d in loads) == head
    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 0 and log.head() == head  # idempotent: nothing stored twice
    assert "simulated before" in rerun.output  # the history is cached, so it starts fast
    assert "scored" not in rerun.output  # scored once per history, not on every start


def test_edge_run_once_forwards_a_file_and_reports_bad_lines(
    server: Any, engine: Any, db_url: str, tmp_path: Path, raw_event: RawEvent
) -> None:
    from storelens import accounts

    with engine.begin() as conn:
        _, key = accounts.create_api_key(conn, "edge")
    source = tmp_path / "events.jsonl"
    good = [raw_event() for _ in range(3)]
    source.write_text("\n".join([json.dumps(good[0]), "{nope", *map(json.dumps, good[1:])]) + "\n")
    outbox = tmp_path / "outbox.db"
    result = runner.invoke(
        app,
        [
            "edge",
            "run",
            "--server",
            server.url,
            "--api-key",
            key,
            "--outbox",
            str(outbox),
            "--source",
            str(source),
            "--once",
        ],
    )
    assert result.exit_code == 1, result.output  # a skipped line is not forwarded: say so
    assert "line 2 skipped" in result.output and "1 bad" in result.output
    assert {str(e.id) for e in EventLog(engine).read_after(0)} == {e["id"] for e in good}
    status = runner.invoke(app, ["edge", "status", "--outbox", str(outbox)])
    assert json.loads(status.output)["pending"] == 0
    fresh = tmp_path / "more.jsonl"
    fresh.write_text(json.dumps(raw_event()) + "\n")
    args = [
        "edge",
        "run",
        "--server",
        server.url,
        "--api-key",
        "slk_x_y",
        "--once",
        "--outbox",
        str(tmp_path / "other.db"),
        "--source",
        str(fresh),
    ]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 3 and "refused" in refused.output


def test_commands_refuse_an_uninitialised_database(tmp_path: Path) -> None:
    import subprocess
    import sys

    events = tmp_path / "e.jsonl"
    events.write_text("")
    url = f"sqlite:///{tmp_path / 'never-initialised.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "storelens.cli", "ingest", str(events), "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    said = " ".join(done.stderr.split())  # the console wraps long paths at its width
    assert "run `storelens init`" in said
    assert "Traceback" not in done.stderr


def test_serve_with_workers_hands_uvicorn_an_import_string(db_url: str, monkeypatch: Any) -> None:
    """uvicorn can only fork workers from an import string (an app object is refused), and
    each worker must find the database this command was given."""
    import importlib

    import uvicorn

    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append((target, kw)))
    monkeypatch.setenv("STORELENS_DATABASE_URL", "sqlite:///elsewhere.db")  # restored after
    monkeypatch.delenv("STORELENS_REDIS_URL", raising=False)
    assert runner.invoke(app, ["init", "--database-url", db_url]).exit_code == 0

    one = runner.invoke(app, ["serve", "--database-url", db_url, "--port", "8123"])
    assert one.exit_code == 0, one.output
    target, options = calls.pop()
    assert not isinstance(target, str) and "workers" not in options  # the built app
    assert target.state.settings.database_url == db_url

    many = runner.invoke(app, ["serve", "--database-url", db_url, "--workers", "3"])
    assert many.exit_code == 0, many.output
    # A review: limits kept in each worker's memory are three times looser; say so.
    assert "3 times looser" in many.stderr and "STORELENS_REDIS_URL" in many.stderr
    assert "looser" not in one.stderr
    target, options = calls.pop()
    assert target == "storelens.web.site:create_site"
    assert (options["factory"], options["workers"], options["proxy_headers"]) == (True, 3, False)
    assert options["host"] == "127.0.0.1" and options["port"] == 8000
    assert os.environ["STORELENS_DATABASE_URL"] == db_url
    module, _, name = target.partition(":")
    site = getattr(importlib.import_module(module), name)()  # what each worker runs
    assert site.state.settings.database_url == db_url

    zero = runner.invoke(app, ["serve", "--database-url", db_url, "--workers", "0"])
    assert zero.exit_code == 2 and calls == []


def test_python_dash_m_runs_the_same_command_line() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "storelens", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "recommend" in done.stdout and "predict" in done.stdout


@pytest.mark.parametrize("day", ["2026-02-30", "yesterday"])
def test_ops_report_bad_day_is_a_usage_error(tmp_path: Path, day: str) -> None:
    """A --day that is not a calendar date names the option and exits 2, no traceback."""
    events = tmp_path / "events.jsonl"
    events.write_text("")
    result = runner.invoke(app, ["ops", "report", "--events", str(events), "--day", day])
    assert result.exit_code == 2, result.output
    assert "--day" in result.output and "must be a date like" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_sim_run_into_a_place_that_cannot_be_a_folder_is_exit_2(tmp_path: Path) -> None:
    """--out under a plain file names the option and the path, with no traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = runner.invoke(app, ["sim", "run", "--out", str(blocker / "sim")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert f"--out {blocker / 'sim'}" in text and "Traceback" not in text


def test_error_messages_are_text_not_markup(tmp_path: Path) -> None:
    """A file name with brackets is printed as it is; it used to vanish or crash Rich
    (``[/b]`` read as a closing tag) in place of the error."""
    result = runner.invoke(app, ["layout", "check", str(tmp_path / "plan[/b].toml")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "plan[/b].toml" in text and "no such file" in text
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_long_path_in_an_error_is_printed_whole(tmp_path: Path) -> None:
    """Rich used to break error lines at 80 columns when stderr is not a terminal, so a
    long path came out with a space in it ("truth.js on") and could not be copied."""
    deep = tmp_path / ("a-folder-with-a-rather-long-name-" * 4) / "layout-plan.toml"
    result = runner.invoke(app, ["layout", "check", str(deep)])
    assert result.exit_code == 2, result.output
    assert str(deep) in result.output  # whole, not wrapped
    assert len(str(deep)) > 120


def test_ingest_a_file_with_a_wrong_header_is_exit_2(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id,email\nL1,a@example.org\n")
    result = runner.invoke(app, ["ingest", str(path), "--database-url", db_url])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "no column id, type, ts, source" in text and "found: customer_id, email" in text


# Every command given an id or name that names nothing. Each used to pick its own code:
# users, keys, `cdp profile`, `privacy` and `models install` exited 1, `export`,
# `insights`, `ops report`, `faces switch` and `cdp unmerge` 2. An unknown id is input
# the command cannot use, so it exits 2 like every other refused input; 1 is kept for a
# command that ran and reports a failed result (rejected lines or rows, traces left).
NAMES_NOTHING = [
    (["users", "disable", "ghost"], "no user"),
    (["users", "enable", "ghost"], "no user"),
    (["users", "reset-password", "ghost"], "no user"),
    (["users", "set-role", "ghost", "staff"], "no user"),
    (["users", "delete", "ghost", "--yes"], "no user"),
    (["keys", "revoke", "999"], "999"),
    (["cdp", "profile", "nobody"], "no customer 'nobody'"),
    (["cdp", "unmerge", "nobody", "crm:1"], "nobody"),
    (["privacy", "export", "nobody"], "no customer"),
    (["privacy", "erase", "nobody", "--reason", "request 42"], "no customer"),
    (["faces", "switch", "--store", "nowhere", "--on"], "no store 'nowhere'"),
    (["ops", "report", "--events", "db", "--store", "nowhere"], "no store 'nowhere'"),
    (["export", "--store", "nowhere", "--from", "2026-11-02", "--to", "2026-11-02",
      "--to-dir", "bi"], "nowhere"),
    (["insights", "--store", "nowhere", "--from", "2026-11-02", "--to", "2026-11-02"],
     "nowhere"),
]  # fmt: skip


def test_an_id_or_name_that_names_nothing_exits_2_in_every_command(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init", "--database-url", db_url]).exit_code == 0
    layout = runner.invoke(
        app, ["layout", "load", str(default_layout_path()), "--database-url", db_url]
    )
    assert layout.exit_code == 0, layout.output
    for args, message in NAMES_NOTHING:
        result = runner.invoke(app, [*args, "--database-url", db_url])
        assert (result.exit_code, args) == (2, args), result.output
        assert message in " ".join(result.output.split()), (args, result.output)
    models = runner.invoke(app, ["models", "install", "nope", "--cache-dir", str(tmp_path)])
    assert models.exit_code == 2 and "known models" in models.output
    edge = runner.invoke(app, ["edge", "status", "--outbox", str(tmp_path / "none.db")])
    assert edge.exit_code == 2, edge.output


def test_serve_refuses_an_uninitialised_database_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same refusal as every command that opens the database (storage.command_line):
    exit 2, not the 1 `serve` alone used."""
    import uvicorn

    calls: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **kw: calls.append(target))
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    result = runner.invoke(app, ["serve", "--database-url", url])
    assert result.exit_code == 2 and calls == []
    assert "storelens init" in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("url", "said"),
    [
        # init cannot open it; the others say there is none (and create nothing).
        ("sqlite:////nonexistent-dir/x.db", "database at sqlite:////nonexistent-dir/x.db"),
        ("postgresql+psycopg://u:secret@127.0.0.1:1/db", "cannot open the database at postgresql"),
        ("postgresql+psycopg://u@127.0.0.1:1/db?password=secret", "cannot open the database"),
        ("not a url", "not a database URL"),
    ],
)
@pytest.mark.parametrize("command", [["users", "list"], ["ops", "report"], ["init"]])
def test_a_database_that_cannot_be_opened_is_one_line_and_exit_2(
    url: str,
    said: str,
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every command printed a driver traceback and exited 1 (a new user's walk-through);
    init also wrote its key files first. Run as the installed ``storelens`` runs."""
    from storelens.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STORELENS_SECRET_KEY", raising=False)
    monkeypatch.setattr("sys.argv", ["storelens", *command, "--database-url", url])
    with pytest.raises(SystemExit) as done:
        main()
    out = capsys.readouterr()
    assert done.value.code == 2, out
    assert said in out.err + out.out and "Traceback" not in out.err
    assert "secret" not in out.err + out.out  # the password is hidden
    assert list(tmp_path.iterdir()) == []  # no key file written for a database not opened


def test_ops_report_from_a_file_names_the_lines_that_are_not_events(
    tmp_path: Path, raw_event: RawEvent
) -> None:
    """One bad line gave a JSONDecodeError traceback, an order without an id a KeyError."""
    events = tmp_path / "events.jsonl"
    order = raw_event(payload={})  # a paid order without order id or lines
    events.write_text("\n".join([json.dumps(raw_event()), "{not json", json.dumps(order)]) + "\n")
    done = runner.invoke(app, ["ops", "report", "--events", str(events)])
    assert done.exit_code == 2, done.output
    assert "2 line(s) are not events" in done.output
    assert "line 2:" in done.output and "line 3: pos.order_paid.payload.order_id" in done.output
    assert "Traceback" not in done.output


def test_ops_report_names_its_store_and_period(db_url: str) -> None:
    """Without --store the report was on the first store by id, and said neither which
    store nor which days; --detail changed nothing on screen and its help did not say so."""
    from importlib import resources

    layouts = resources.files("storelens.samples") / "layouts"
    for name in ("cafe.toml", "apparel.toml"):
        loaded = runner.invoke(
            app, ["layout", "load", str(layouts / name), "--database-url", db_url]
        )
        assert loaded.exit_code == 0, loaded.output
    db = ["--events", "db", "--database-url", db_url]
    every = runner.invoke(app, ["ops", "report", *db, "--detail"])
    assert every.exit_code == 0, every.output
    text = " ".join(every.output.split())
    picked = "2 stores (apparel-01, cafe-01): reporting on apparel-01; choose one with --store"
    assert picked in text
    assert "apparel-01, all days on record (Europe/Berlin)" in text
    assert "--detail adds per-item figures to --json output only" in text
    one = runner.invoke(app, ["ops", "report", *db, "--store", "cafe-01", "--day", "2026-11-02"])
    assert one.exit_code == 0, one.output
    assert "cafe-01, 2026-11-02 (Europe/Berlin)" in one.output and "2 stores" not in one.output
    shown = runner.invoke(app, ["ops", "report", "--help"], env={"COLUMNS": "200"})
    assert "with --json: add per-order fulfillment" in " ".join(shown.output.split())


@pytest.mark.parametrize("command", [[], ["retention"], ["demo"], ["cdp", "import"]])
def test_flags_show_no_value_type_in_help(command: list[str]) -> None:
    """Typer's Rich help wrote ``--dry-run <bool>`` and ``--help <bool>``, as if a flag
    took a value; options that take one keep their type."""
    shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "--help" in shown.output and "<bool>" not in shown.output
    if command == ["retention"]:
        assert re.search(r"--dry-run +count, delete nothing", shown.output)
        assert re.search(r"--days +<int range>", shown.output)


def test_ingest_keeps_events_of_unknown_stores_and_names_them(
    db_url: str, tmp_path: Path, raw_event: RawEvent
) -> None:
    """Events for a store with no layout were stored without a word; they are still
    kept (a layout may come later), and one line after the summary names each store."""
    cafe = default_layout_path()
    loaded = runner.invoke(app, ["layout", "load", str(cafe), "--database-url", db_url])
    assert loaded.exit_code == 0, loaded.output
    shop7 = [raw_event(store_id="shop-7") for _ in range(3)]
    lines = [raw_event(), *shop7, shop7[0], raw_event(store_id="shop-2"), raw_event()]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines))
    result = runner.invoke(app, ["ingest", str(path), "--database-url", db_url])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert (  # the duplicate line is not counted; cafe-01 has its layout
        "warning: kept events for stores with no layout loaded: shop-2 (1 event), "
        "shop-7 (3 events); load theirs with `storelens layout load`"
    ) in text
    assert text.index("ingest summary") < text.index("warning:")
    assert EventLog(create_engine(db_url)).head() == 6


@pytest.mark.parametrize("command", [["users", "list"], ["ops", "report"], ["serve"]])
def test_a_missing_sqlite_file_is_refused_and_not_created(
    command: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A new user's refused commands each left an empty database file behind, and after
    `make demo` the advice to run `storelens init` made a second, empty database.
    Run as the installed ``storelens`` runs."""
    import uvicorn

    from storelens.cli import main

    monkeypatch.setattr(uvicorn, "run", lambda *_, **__: None)
    path = tmp_path / "typo.db"
    monkeypatch.setattr("sys.argv", ["storelens", *command, "--database-url", f"sqlite:///{path}"])
    with pytest.raises(SystemExit) as done:
        main()
    said = " ".join(capsys.readouterr().err.split())
    assert done.value.code == 2, said
    assert f"there is no database at sqlite:///{path}" in said
    assert "STORELENS_DATABASE_URL" in said and "demo-data/storelens.db" in said
    assert not path.exists()


def test_a_missing_sqlite_file_given_as_a_file_uri_is_not_created(tmp_path: Path) -> None:
    from storelens.core.errors import ConfigError
    from storelens.storage import migrate

    path = tmp_path / "uri.db"
    for url in (f"sqlite:///file:{path}?uri=true", f"sqlite:///file:{path}?mode=rwc&uri=true"):
        with pytest.raises(ConfigError, match="there is no database"):
            migrate.reachable(url)
    assert not path.exists()
    migrate.reachable(f"sqlite:///file:{path}?mode=rwc&uri=true", create=True).dispose()
    assert path.exists()


@pytest.mark.parametrize("shown", [False, True])
def test_a_commands_fault_prints_frames_and_types_not_the_message(
    shown: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command run from cron keeps its stderr in a log no erasure reaches: an
    unexpected exception's message (which can quote the value that failed) is hidden
    unless STORELENS_LOG_EXCEPTION_MESSAGES is on, as in the server's log."""
    import storelens.cli as cli

    email = "ada" + "@example.com"  # not on a line the traceback quotes

    def fails() -> None:
        try:
            {}[email]
        except KeyError as exc:
            raise RuntimeError(f"while scoring {email}") from exc

    monkeypatch.setattr(cli, "app", fails)
    monkeypatch.setenv("STORELENS_LOG_EXCEPTION_MESSAGES", "true" if shown else "false")
    with pytest.raises(SystemExit) as done:
        cli.main()
    err = capsys.readouterr().err
    assert done.value.code == 1
    assert "KeyError" in err and "RuntimeError" in err and "in fails" in err
    assert "direct cause" in err
    assert ("ada@example.com" in err) is shown


@pytest.mark.parametrize("shown", [False, True])
def test_a_long_commands_logged_and_thread_faults_keep_no_messages(
    shown: bool, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """mqtt-bridge and the like log their faults with log.exception, and a background
    thread's fault went to Python's own hook: both printed the message (a review)."""
    import logging
    import threading

    import storelens.cli as cli

    email = "ada" + "@example.com"

    def logs_and_threads() -> None:
        try:
            {}[email]
        except KeyError:
            logging.getLogger("storelens.ingest.mqtt").exception("a message failed")

        def boom() -> None:
            raise ValueError(f"bad card for {email}")

        worker = threading.Thread(target=boom, name="bridge-worker")
        worker.start()
        worker.join()

    monkeypatch.setattr(cli, "app", logs_and_threads)
    monkeypatch.setenv("STORELENS_LOG_EXCEPTION_MESSAGES", "true" if shown else "false")
    cli.main()
    err = capsys.readouterr().err
    assert "a message failed" in err and "KeyError" in err
    assert "in thread bridge-worker" in err and "ValueError" in err
    assert (email in err) is shown


def test_a_fault_that_cannot_be_formatted_still_hides_its_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import storelens.cli as cli

    def broken(_exc: BaseException) -> str:
        raise RuntimeError("formatter down")

    monkeypatch.setattr(cli, "traceback_without_messages", broken)
    cli.print_fault(KeyError("ada@example.com"), show=False)
    err = capsys.readouterr().err
    assert "KeyError" in err and "ada@" not in err


def test_help_paragraphs_flow_to_the_terminals_width() -> None:
    """Typer's Rich help kept a docstring's source line breaks after the first
    paragraph: at 80 columns each source line broke into a long and a short one."""
    shown = runner.invoke(
        app, ["faces", "consent-text", "publish", "--help"], env={"COLUMNS": "200"}
    )
    assert shown.exit_code == 0, shown.output
    lines = [line.strip() for line in shown.output.splitlines()]
    joined = "with other words is refused (exit 2), and so is a retired version; the same"
    assert any(joined in line for line in lines), shown.output  # a source break in it
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert any("Superset, Metabase or Power BI" in line for line in top.splitlines()), top
    approve = runner.invoke(app, ["faces", "approve", "--help"], env={"COLUMNS": "200"}).output
    assert "cli:<your login>" in approve and "``" not in approve  # no RST literal quotes
    from storelens.cli_help import reflow as _reflow

    listed = "Steps:\n- one\n- two"
    assert _reflow(["a\nb", listed, "\bkeep\nlines"], "rich") == f"a b\n\n{listed}\n\n\bkeep\nlines"
