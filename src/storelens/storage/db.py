"""Engines per database URL, tuned once here so no caller has to know the backend.

SQLite is the embedded default: WAL so readers never block the writer, a busy
timeout so two processes (server and CLI) can share the file, and foreign keys on.
PostgreSQL goes through psycopg 3. Both engines serialise JSON with orjson and pass
through payloads that were already serialised by pydantic (:class:`PreSerialized`),
so an event's payload is encoded to JSON exactly once on the hot ingest path.

Both hide bound parameters from error messages and logs (``hide_parameters``): they
are names, e-mails and other personal values, and error texts travel to log files
and error trackers. PostgreSQL quotes row values itself in an error's DETAIL
("Failing row contains (...)", "Key (email)=(...) already exists"), so that line is
cut from its errors too.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as sa_create_engine
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.pool import ConnectionPoolEntry

from storelens.core.errors import ConfigError, MissingExtra

__all__ = ["PreSerialized", "create_engine", "throwaway_postgres"]


@dataclass(frozen=True, slots=True)
class PreSerialized:
    """JSON text that is stored as-is instead of being encoded again."""

    text: str


def _dumps(value: Any) -> str:
    if isinstance(value, PreSerialized):
        return value.text
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_conn: Any, _record: ConnectionPoolEntry) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def _hide_row_values(context: ExceptionContext) -> None:
    """Cut PostgreSQL's DETAIL line, which quotes the values of the failing row."""
    orig = context.original_exception
    diag = getattr(orig, "diag", None)
    if diag is None or not diag.message_detail:
        return
    text = f"{diag.message_primary}\nDETAIL: hidden (it quotes row values)"
    orig.args = (text,)
    wrapped = context.sqlalchemy_exception
    if wrapped is not None:
        wrapped.args = (f"({type(orig).__module__}.{type(orig).__name__}) {text}",)


def create_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; raises ConfigError for a backend storelens does not support."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = sa_create_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            json_serializer=_dumps,
            json_deserializer=orjson.loads,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            raise ConfigError(
                "PostgreSQL URLs must use psycopg 3: postgresql+psycopg://user@host/db"
            )
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("PostgreSQL storage", "postgres") from exc
        engine = sa_create_engine(
            parsed,
            echo=echo,
            hide_parameters=True,
            json_serializer=_dumps,
            json_deserializer=orjson.loads,
            pool_size=10,
            max_overflow=10,
            pool_pre_ping=True,
        )
        event.listen(engine, "handle_error", _hide_row_values)
        return engine
    raise ConfigError(f"unsupported database backend {backend!r}: use sqlite or postgresql")


@contextmanager
def throwaway_postgres(admin_url: str, prefix: str = "storelens_tmp") -> Iterator[str]:
    """A new, empty PostgreSQL database for a test or benchmark run, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
