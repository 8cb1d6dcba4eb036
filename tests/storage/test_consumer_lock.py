"""Two processes never advance one projection at the same time: the consumer lock that
``EventLog.consume`` takes first in each batch's transaction holds on both backends,
even before the consumer has a committed position (its very first batch)."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from storelens.storage.dialects import dialect_for


def _short_wait(conn: Connection) -> None:
    """Give up on a held lock at once instead of after the engine's busy timeout."""
    if conn.dialect.name == "sqlite":
        conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    else:
        conn.execute(text("SET lock_timeout = '50ms'"))


def test_a_second_runner_of_the_same_projection_waits(engine: Engine) -> None:
    dialect = dialect_for(engine)
    with engine.connect() as first, engine.connect() as second:
        _short_wait(second)
        second.commit()
        with first.begin():
            dialect.lock_consumer(first, "ops")  # no position committed yet
            with pytest.raises(OperationalError), second.begin():
                dialect.lock_consumer(second, "ops")
        with second.begin():  # released with the first transaction
            dialect.lock_consumer(second, "ops")
