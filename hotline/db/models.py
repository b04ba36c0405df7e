"""SQLAlchemy models: the declarative ``Base`` and the ``call_events`` table.

This module owns the *shape* of the tables. It does not write rows: the call-event table has
exactly one writer, ``hotline.events.log.CallEventLog``. Schema changes go through an Alembic
migration in ``hotline/db/migrations/versions/``; keep the model and the migrations in step
(``tests/db`` compares them).

Time is stored in UTC. ``UTCDateTime`` refuses naive datetimes on the way in and hands back
aware UTC datetimes on the way out, on SQLite (which has no time zones) as on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Index,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names: Alembic's batch mode on SQLite recreates tables and needs names to
# find constraints again, and PostgreSQL error messages then name something meaningful.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is an alias of the rowid and
# autoincrements, so the variant keeps ids working there.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")
# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONData = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp, always stored and returned in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            # SQLite stores text; drop the offset so every row has the same sortable format.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class CallEventRow(Base):
    """One step of one call. (call_id, seq) is unique: it is what makes replays idempotent."""

    __tablename__ = "call_events"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    type: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONData, nullable=False)

    __table_args__ = (
        UniqueConstraint("call_id", "seq"),
        Index("ix_call_events_ts", "ts"),
        Index("ix_call_events_type_ts", "type", "ts"),
    )

    def __repr__(self) -> str:
        return f"CallEventRow({self.call_id!r}, seq={self.seq}, type={self.type!r})"
