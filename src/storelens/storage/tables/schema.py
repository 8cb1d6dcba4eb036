"""The one `MetaData` every table joins, and the column types they share.

Every table module registers on this `metadata`, so Alembic, ``create_all`` and the
erasure scan see one schema however it is split into files. The naming convention
gives every index and constraint a name the migrations can refer to; `UTCDateTime`
is the only timestamp type, because SQLite keeps no time zone and a naive time read
back from it would silently become local time.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Dialect, Integer, MetaData, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import DateTime, TypeDecorator

__all__ = ["Document", "Id", "Seq", "UTCDateTime", "metadata", "naming", "utc_now"]


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC on every backend and always read back tz-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; storelens stores tz-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Document = JSON().with_variant(JSONB(), "postgresql")
Seq = BigInteger().with_variant(Integer(), "sqlite")  # SQLite only auto-increments INTEGER keys
Id = String(128)


def utc_now() -> datetime:
    """Column default for creation and update times (tz-aware, as `UTCDateTime` wants)."""
    return datetime.now(UTC)


naming = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=naming)
