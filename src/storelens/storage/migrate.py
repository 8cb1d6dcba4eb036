"""Schema migrations (Alembic), driven from code so ``storelens init`` needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from storelens.core.errors import ConfigError
from storelens.storage.tables import metadata

__all__ = [
    "current_revision",
    "downgrade",
    "head_revision",
    "open_database",
    "pending_changes",
    "require_current",
    "upgrade",
]

MIGRATIONS = Path(__file__).with_name("migrations")


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


def require_current(engine: Engine) -> None:
    """Refuse to work on a database that was never initialised or is behind the code."""
    found = current_revision(engine)
    if found == head_revision():
        return
    shown = engine.url.render_as_string(hide_password=True)
    if found is None:
        raise ConfigError(f"the database at {shown} is not initialised: {_WHICH_DATABASE}")
    raise ConfigError(f"the database at {shown} is out of date: run `storelens init` to upgrade it")


_WHICH_DATABASE = (
    "run `storelens init` to create one there, or point at yours with --database-url "
    "or STORELENS_DATABASE_URL (`make demo` keeps its own in "
    "sqlite:///demo-data/storelens.db)"
)
"""After `make demo` a new user ran a command in the same folder and was told to run
`storelens init`, which made a second, empty database beside the demo's."""


def reachable(url: str, *, create: bool = False) -> Engine:
    """An engine for ``url`` that has connected once; ConfigError naming the database
    (password hidden) and the driver's first line otherwise. Every command used to
    print a driver traceback for a mistyped path, a stopped server or a URL that does
    not parse (found by a new user).

    A SQLite file that does not exist is refused unless ``create`` (``init``): connecting
    creates it, and a command refused for a mistyped path left an empty file behind."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, DBAPIError

    from storelens.storage.db import create_engine

    try:
        # Without the query too: a password can be given as ?password= (a review).
        shown = make_url(url).set(query={}).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise ConfigError(f"not a database URL: {exc}") from None
    parsed = make_url(url)
    if not create and parsed.get_backend_name() == "sqlite":
        path = (parsed.database or "").removeprefix("file:").split("?", 1)[0]
        in_memory = not path or path == ":memory:" or "mode=memory" in url
        if not in_memory and not Path(path).exists():
            raise ConfigError(f"there is no database at {shown}: {_WHICH_DATABASE}")
    engine = create_engine(url)
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        reason = (str(exc.orig).strip().splitlines() or ["no reason given"])[0]
        raise ConfigError(f"cannot open the database at {shown}: {reason}") from None
    return engine


def open_database(url: str) -> Engine:
    """An engine for a database that is initialised and up to date (for commands)."""
    engine = reachable(url)
    require_current(engine)
    return engine


def pending_changes(engine: Engine) -> list[object]:
    """Differences between the migrated schema and ``storage.tables``: empty when in sync."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))


def revision(message: str, engine: Engine) -> None:  # pragma: no cover - developer tool
    """Autogenerate a new migration from ``storage.tables`` (developers only)."""
    with engine.begin() as conn:
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.revision(cfg, message=message, autogenerate=True)
