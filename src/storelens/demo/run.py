"""``storelens demo``: a working café in one command, for someone who has never seen storelens.

It simulates the café's days (customers, queue, baristas, orders, camera tracks),
ingests what the tills, order screens, espresso machines and cameras would have
sent, runs the stream processors, and shows the operations report.

Later work extends this same path (simulator, vision, dashboard) rather than adding
new demo commands. Re-running is safe: ingest is idempotent and the demo admin's
password is reset so it can be printed again.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import Engine, func, select

from storelens import accounts, catalogue, stores
from storelens.catalogue import load_catalogue
from storelens.config import Settings, write_secret_key_file
from storelens.core.errors import Conflict
from storelens.core.layout import load_layout
from storelens.demo.sampleday import write_jsonl
from storelens.demo.till_history import TillHistoryConfig, till_history
from storelens.ingest.batch import IngestReport, ingest_numbered
from storelens.ingest.files import read_items
from storelens.ingest.write_audit import audited
from storelens.instore.insights_data import local_period
from storelens.instore.processor import report_from_db
from storelens.privacy import audit
from storelens.processors import run_projections
from storelens.sim import run_simulation
from storelens.sim.config import SimConfig
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import events, orders

__all__ = ["DemoResult", "prepare_demo"]

DEMO_ADMIN = "admin"
HISTORY_FILE = "history.json"
HEATMAP_EVERY_S = 900.0
"""The simulated cameras send a heat grid every quarter hour, for the Floor page."""
TILL_WEEKS = 26
"""Weeks of loyalty members' till orders before the simulated days: enough for lifetime
value and churn risk (half a year), a few seconds to draw and load."""
LIVE_SKEW_S = 86_400.0
"""How far ahead of the clock the demo server takes events: the live day runs at 60x from
opening, so its café time soon passes the real time of day."""


@dataclass
class DemoResult:
    settings: Settings
    username: str
    password: str
    store_id: str
    ingest: IngestReport
    today: date
    layout_path: Path
    counts: dict[str, int] = field(default_factory=dict)
    revenue: float = 0.0
    ops: dict[str, Any] = field(default_factory=dict)

    def summary_table(self) -> Table:
        table = Table(title=f"demo store {self.store_id}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for name, n in self.counts.items():
            table.add_row(name, f"{n:,}")
        table.add_row("revenue of the simulated days (EUR)", f"{self.revenue:,.2f}")
        return table


def _sample_layout() -> Path:
    return Path(str(resources.files("storelens.samples") / "layouts" / "cafe.toml"))


def _start_afresh(directory: Path, history: dict[str, Any]) -> bool:
    """Remove the demo database when it holds another history than the one wanted.

    A demo started on a new day simulates the week before it; keeping last week's
    database beside it would count overlapping days twice. Only the demo's own files
    in its own directory are removed.
    """
    recorded = directory / HISTORY_FILE
    database = directory / "storelens.db"
    if not database.exists():
        return False
    if recorded.exists() and json.loads(recorded.read_text()) == history:
        return False
    for name in ("storelens.db", "storelens.db-wal", "storelens.db-shm", HISTORY_FILE):
        (directory / name).unlink(missing_ok=True)
    shutil.rmtree(directory / "sim", ignore_errors=True)
    return True


def _ingest(
    event_log: EventLog, path: Path, total: int, progress: Callable[[], Progress] | None
) -> IngestReport:
    # Audited like any file load (a row per batch, naming the operator and the simulated
    # customers), so the demo's access exports show the writes as a real store's would.
    operator = audit.operator()
    then = audited(operator, None, channel="demo", file=path.name)
    if progress is None:
        return ingest_numbered(
            event_log, read_items(path), batch_size=5000, sent_by=operator.name, then=then
        )
    with progress() as bar:
        task = bar.add_task("ingesting the events", total=total, rate="")
        return ingest_numbered(
            event_log,
            read_items(path),
            batch_size=5000,
            on_batch=lambda n: bar.advance(task, n),
            sent_by=operator.name,
            then=then,
        )


def _ingest_till_history(
    event_log: EventLog,
    week_events: Path,
    config: TillHistoryConfig,
    tz: ZoneInfo,
    progress: Callable[[], Progress] | None,
    console: Console,
) -> IngestReport:
    """The members' till orders of the weeks before, drawn from the week just simulated
    and loaded like it (audited, batch by batch)."""
    clock = time.perf_counter()
    orders = till_history(week_events, load_catalogue(), tz, config)
    path = week_events.with_name("till_history.jsonl")
    write_jsonl(orders, path)
    members = len({e.subject for e in orders})
    console.print(
        f"till history: {len(orders):,} paid orders of {members:,} loyalty members over the "
        f"{config.weeks} weeks before ({time.perf_counter() - clock:.1f} s; no visits or "
        "kitchen events then)"
    )
    return _ingest(event_log, path, len(orders), progress)


def _score_once(
    engine: Engine, settings: Settings, marker: Path, as_of: datetime, console: Console
) -> None:
    """Score the finished history's consenting customers once, so the Customers page has
    segments, lifetime value and churn risk (``storelens predict score`` over the demo).

    Once per history, like the simulation: a second start the same day skips it. Without
    the ``predict`` extra the page says how to score instead, and the demo goes on.
    """
    if marker.exists():
        return
    from storelens.core.errors import MissingExtra

    clock = time.perf_counter()
    try:
        from storelens.predict.store import rescore_as_configured

        run = rescore_as_configured(engine, as_of, settings)
    except MissingExtra as exc:
        console.print(f"customers not scored: {exc}")
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{len(run.scores)} customers, version {run.version}\n")
    console.print(
        f"scored {len(run.scores):,} customers with analytics consent into "
        f"{len(run.segments)} segments ({time.perf_counter() - clock:.1f} s)"
    )


def prepare_demo(
    directory: Path,
    *,
    seed: int = 7,
    days: int = 7,
    till_weeks: int = TILL_WEEKS,
    today: date | None = None,
    console: Console | None = None,
    progress: Callable[[], Progress] | None = None,
) -> DemoResult:
    """Set up the café with ``days`` finished days of history, ending yesterday.

    The history is simulated and ingested once per start day, seed and length (a marker
    file beside its events says so), so a second ``make demo`` on the same day starts in
    seconds. ``today`` is the store's local date (injected by tests).
    """
    console = console or Console()
    directory.mkdir(parents=True, exist_ok=True)
    layout_path = _sample_layout()
    tz = ZoneInfo(load_layout(layout_path).timezone)
    today = today or datetime.now(tz).date()
    start = today - timedelta(days=days)
    history = {"start": start.isoformat(), "days": days, "seed": seed, "till_weeks": till_weeks}
    if _start_afresh(directory, history):
        console.print(f"a new history ({days} day(s) from {start}): starting the demo afresh")
    key_file = directory / "storelens.key"  # a random secret, never the public placeholder
    write_secret_key_file(key_file)
    settings = Settings(
        env="dev",
        database_url=f"sqlite:///{directory / 'storelens.db'}",
        secret_key_file=key_file,
        event_max_future_skew_s=LIVE_SKEW_S,
    )
    engine = create_engine(settings.database_url)
    migrate.upgrade(engine)
    event_log = EventLog(engine)

    password = accounts.generate_password()
    with engine.begin() as conn:
        try:
            accounts.create_user(conn, DEMO_ADMIN, password, accounts.Role.admin)
        except Conflict:
            accounts.set_password(conn, DEMO_ADMIN, password)

    with engine.begin() as conn:
        _, layout = stores.load_layout_file(conn, layout_path, "demo")
        stored, _ = catalogue.upsert_products(conn, [asdict(p) for p in load_catalogue()])
    console.print(
        f"store [bold]{layout.name}[/bold]: {len(layout.zones)} zones, "
        f"{len(layout.cameras)} cameras; catalogue of {stored} products"
    )

    sim_dir = directory / "sim" / f"{start}_{days}d_seed{seed}_till{till_weeks}w"
    marker = sim_dir / "ingested"
    if marker.exists():  # the week is in the database already: start fast
        console.print(f"history: {days} day(s) from {start} (simulated before, in {sim_dir})")
        report = IngestReport()
    else:
        config = SimConfig(start_date=start, heatmap_every_s=HEATMAP_EVERY_S)
        sim = run_simulation(layout_path, days, seed, sim_dir, config=config)
        console.print(
            f"simulated {days} day(s) from {start}: {sim.visits:,} visits, {sim.orders:,} "
            f"orders, {sim.events:,} events ({sim.seconds:.1f} s)"
        )
        report = _ingest(event_log, sim.events_path, sim.events, progress)
        if till_weeks:
            till = _ingest_till_history(
                event_log, sim.events_path, TillHistoryConfig(weeks=till_weeks, seed=seed), tz,
                progress, console,
            )  # fmt: skip
            report.add(till, lambda i: sim.events + i)  # lines after the week's
        marker.write_text(f"{report.accepted} accepted, {report.duplicates} duplicates\n")
        (directory / HISTORY_FILE).write_text(json.dumps(history))
    run_projections(event_log)
    since, until = local_period(start, today - timedelta(days=1), layout.timezone)
    _score_once(engine, settings, sim_dir / "scored", until, console)
    ops = report_from_db(  # the finished days: the live day is still running
        engine,
        layout.store_id,
        timezone=layout.timezone,
        queue_zones=[z.id for z in layout.zones_of_kind("queue")],
        since=since,
        until=until,
    )

    with engine.connect() as conn:
        by_type: dict[str, int] = dict(
            conn.execute(select(events.c.type, func.count()).group_by(events.c.type)).all()
        )
        in_days = (orders.c.store_id == layout.store_id) & (orders.c.ts >= since)
        before = (orders.c.store_id == layout.store_id) & (orders.c.ts < since)
        n_days, revenue = conn.execute(
            select(func.count(), func.coalesce(func.sum(orders.c.total), 0)).where(
                in_days & (orders.c.ts < until)
            )
        ).one()
        n_before = conn.execute(select(func.count()).where(before)).scalar_one()
    counts = {f"events: {t}": int(n) for t, n in sorted(by_type.items())}
    counts[f"orders, the {days} simulated day(s)"] = int(n_days)
    if n_before:
        counts["orders before them (till history)"] = int(n_before)
    return DemoResult(
        settings=settings,
        username=DEMO_ADMIN,
        password=password,
        store_id=layout.store_id,
        ingest=report,
        today=today,
        layout_path=layout_path,
        counts=counts,
        revenue=float(revenue),
        ops=ops,
    )
