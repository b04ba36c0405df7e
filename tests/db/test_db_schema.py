"""Schema migrations and engine settings, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from hotline.db import (
    CallEventRow,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    session_factory,
)
from hotline.db.registry import all_metadata
from hotline.db.testing import DbTarget


def test_migrate_from_empty(db: DbTarget) -> None:
    assert current_revision(db.engine) is None
    assert not sa.inspect(db.engine).has_table("call_events")

    assert migrate(db.engine) == head_revision()
    assert head_revision() == "0007_workorders"  # the chain of feature slots, in order

    inspector = sa.inspect(db.engine)
    assert current_revision(db.engine) == head_revision()
    columns = {c["name"] for c in inspector.get_columns("call_events")}
    assert columns == {"id", "call_id", "seq", "ts", "type", "data"}
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("call_events")}
    assert indexes["ix_call_events_ts"] == ["ts"]
    assert indexes["ix_call_events_type_ts"] == ["type", "ts"]
    uniques = {
        u["name"]: u["column_names"] for u in inspector.get_unique_constraints("call_events")
    }
    assert uniques == {"uq_call_events_call_id_seq": ["call_id", "seq"]}


def test_migrate_twice_is_a_no_op(db: DbTarget) -> None:
    migrate(db.engine)
    ts = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    with session_factory(db.engine).begin() as session:
        session.add(CallEventRow(call_id="c1", seq=1, ts=ts, type="call.entered", data={}))

    assert migrate(db.engine) == head_revision()
    # A second run through a URL (its own engine) changes nothing either.
    assert migrate(db.url) == head_revision()

    with session_factory(db.engine)() as session:
        rows = session.scalars(sa.select(CallEventRow)).all()
    assert [(r.call_id, r.seq, r.ts) for r in rows] == [("c1", 1, ts)]


def test_models_match_migrations(db: DbTarget) -> None:
    migrate(db.engine)
    with db.engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), all_metadata()
        )
    assert diff == []


def test_timestamps_are_stored_and_returned_in_utc(db: DbTarget) -> None:
    migrate(db.engine)
    shanghai = timezone(timedelta(hours=8))
    local = datetime(2025, 3, 1, 9, 30, 0, 123456, tzinfo=shanghai)
    with session_factory(db.engine).begin() as session:
        session.add(CallEventRow(call_id="c1", seq=1, ts=local, type="call.entered", data={}))
    with session_factory(db.engine)() as session:
        stored = session.scalars(sa.select(CallEventRow.ts)).one()
    assert stored == local
    assert stored.utcoffset() == timedelta(0)
    assert stored.hour == 1  # 09:30 in Shanghai is 01:30 UTC

    with pytest.raises(sa.exc.StatementError, match="timezone-aware"):
        with session_factory(db.engine).begin() as session:
            session.add(
                CallEventRow(call_id="c1", seq=2, ts=datetime(2025, 1, 1), type="x", data={})
            )


def test_unique_call_id_seq(db: DbTarget) -> None:
    migrate(db.engine)
    ts = datetime.now(UTC)
    with pytest.raises(sa.exc.IntegrityError):
        with session_factory(db.engine).begin() as session:
            session.add(CallEventRow(call_id="c1", seq=1, ts=ts, type="a", data={}))
            session.add(CallEventRow(call_id="c1", seq=1, ts=ts, type="b", data={}))


def test_sqlite_connection_settings(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(f"sqlite:///{tmp_path}/sub/dir/h.db", sqlite_busy_timeout=1.5)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
    finally:
        engine.dispose()


def test_in_memory_sqlite_migrates() -> None:
    engine = make_engine("sqlite://")
    try:
        migrate(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_postgres_urls_use_psycopg3() -> None:
    engine = make_engine("postgresql://u:p@127.0.0.1/x")
    assert engine.dialect.driver == "psycopg"
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
    engine.dispose()


def test_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database"):
        make_engine("mysql://u@127.0.0.1/x")
