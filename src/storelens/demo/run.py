"""``storelens demo``: a working café in one command, for someone who has never seen storelens.

It simulates the café's days (customers, queue, baristas, orders, camera tracks),
ingests what the tills, order screens, espresso machines and cameras would have
sent, runs the stream processors, and shows the operations report.

Later work extends this same path (simulator, vision, dashboard) rather than adding
new demo commands. Re-running is safe: ingest is idempotent and the demo admin's
password is reset so it can be printed again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from storelens import accounts, catalogue, stores
from storelens.catalogue import load_catalogue
from storelens.config import Settings, write_secret_key_file
from storelens.core.errors import Conflict
from storelens.ingest.batch import IngestReport, ingest_numbered
from storelens.ingest.files import read_items
from storelens.instore.processor import report_from_db
from storelens.processors import run_projections
from storelens.sim import run_simulation
from storelens.sim.config import SimConfig
from storelens.storage import migrate
from storelens.storage.db import create_engine
from storelens.storage.eventlog import EventLog
from storelens.storage.tables import events, orders

__all__ = ["DemoResult", "prepare_demo"]

DEMO_ADMIN = "admin"


@dataclass
class DemoResult:
    settings: Settings
    username: str
    password: str
    store_id: str
    ingest: IngestReport
    counts: dict[str, int] = field(default_factory=dict)
    revenue: float = 0.0
    ops: dict[str, Any] = field(default_factory=dict)

    def summary_table(self) -> Table:
        table = Table(title=f"demo store {self.store_id}")
        table.add_column("what")
        table.add_column("count", justify="right")
        for name, n in self.counts.items():
            table.add_row(name, f"{n:,}")
        table.add_row("revenue (EUR)", f"{self.revenue:,.2f}")
        return table


def _sample_layout() -> Path:
    return Path(str(resources.files("storelens.samples") / "layouts" / "cafe.toml"))


def prepare_demo(
    directory: Path,
    *,
    seed: int = 7,
    days: int = 1,
    console: Console | None = None,
    progress: Callable[[], Progress] | None = None,
) -> DemoResult:
    console = console or Console()
    directory.mkdir(parents=True, exist_ok=True)
    key_file = directory / "storelens.key"  # a random secret, never the public placeholder
    write_secret_key_file(key_file)
    settings = Settings(
        env="dev", database_url=f"sqlite:///{directory / 'storelens.db'}", secret_key_file=key_file
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

    layout_path = _sample_layout()
    with engine.begin() as conn:
        _, layout = stores.load_layout_file(conn, layout_path, "demo")
        stored, _ = catalogue.upsert_products(conn, [asdict(p) for p in load_catalogue()])
    console.print(
        f"store [bold]{layout.name}[/bold]: {len(layout.zones)} zones, "
        f"{len(layout.cameras)} cameras; catalogue of {stored} products"
    )

    heat = SimConfig(heatmap_every_s=900)  # quarter-hour heatmaps for the Floor page
    sim = run_simulation(layout_path, days, seed, directory / "sim", config=heat)
    console.print(
        f"simulated {days} day(s): {sim.visits:,} visits, {sim.orders:,} orders, "
        f"{sim.events:,} events ({sim.seconds:.1f} s)"
    )
    if progress is None:
        report = ingest_numbered(event_log, read_items(sim.events_path), batch_size=5000)
    else:
        with progress() as bar:
            task = bar.add_task("ingesting the events", total=sim.events, rate="")
            report = ingest_numbered(
                event_log,
                read_items(sim.events_path),
                batch_size=5000,
                on_batch=lambda n: bar.advance(task, n),
            )
    run_projections(event_log)
    ops = report_from_db(
        engine,
        layout.store_id,
        timezone=layout.timezone,
        queue_zones=[z.id for z in layout.zones_of_kind("queue")],
    )

    with engine.connect() as conn:
        by_type: dict[str, int] = dict(
            conn.execute(select(events.c.type, func.count()).group_by(events.c.type)).all()
        )
        revenue = conn.execute(
            select(func.coalesce(func.sum(orders.c.total), 0)).where(
                orders.c.store_id == layout.store_id
            )
        ).scalar_one()
    counts = {f"events: {t}": int(n) for t, n in sorted(by_type.items())}
    counts["orders"] = int(by_type.get("pos.order_paid", 0))
    return DemoResult(
        settings=settings,
        username=DEMO_ADMIN,
        password=password,
        store_id=layout.store_id,
        ingest=report,
        counts=counts,
        revenue=float(revenue),
        ops=ops,
    )
