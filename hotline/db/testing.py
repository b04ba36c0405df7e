"""Database helpers for tests and benchmarks: throw-away PostgreSQL databases and outages.

Nothing here is used by the service. It exists so that every suite that needs a real database
(the event log, KPIs, work orders, reports) gets one the same way:

* ``temporary_postgres_database()`` creates ``hotline_test_<random>`` on the server named by
  ``$HOTLINE_TEST_PG_ADMIN_URL`` (default: user postgres on 127.0.0.1:5432, database postgres)
  and drops it afterwards, terminating its sessions first.
* ``DbTarget`` bundles a migrated-or-empty database of either kind with an ``outage()``
  context that makes writes really fail: on PostgreSQL the database stops accepting
  connections and its sessions are killed; on SQLite another connection holds the write lock.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from hotline.db.engine import make_engine

ADMIN_URL = os.environ.get(
    "HOTLINE_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string (drop the +driver part)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def postgres_unavailable_reason(admin_url: str = ADMIN_URL) -> str | None:
    """None when the admin database answers, else why not (for ``pytest.skip``)."""
    try:
        with psycopg.connect(_libpq(admin_url), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {make_url(admin_url)!r}: {exc}".splitlines()[0]
    return None


def _admin(admin_url: str) -> psycopg.Connection:
    return psycopg.connect(_libpq(admin_url), connect_timeout=5, autocommit=True)


def terminate_sessions(dbname: str, admin_url: str = ADMIN_URL) -> int:
    """Kill every session connected to ``dbname``; returns how many."""
    with _admin(admin_url) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (dbname,),
        ).fetchall()
    return len(rows)


def set_allow_connections(dbname: str, allow: bool, admin_url: str = ADMIN_URL) -> None:
    with _admin(admin_url) as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(dbname), sql.SQL("true" if allow else "false")
            )
        )


@contextlib.contextmanager
def temporary_postgres_database(
    admin_url: str = ADMIN_URL, prefix: str = "hotline_test_"
) -> Iterator[str]:
    """Create a fresh empty database; yield its SQLAlchemy URL; drop it afterwards."""
    dbname = f"{prefix}{secrets.token_hex(6)}"
    with _admin(admin_url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    try:
        url = make_url(admin_url).set(drivername="postgresql+psycopg", database=dbname)
        yield url.render_as_string(hide_password=False)
    finally:
        set_allow_connections(dbname, True, admin_url)
        terminate_sessions(dbname, admin_url)
        with _admin(admin_url) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


def reset_postgres_schema(url: str) -> None:
    """Empty a database: drop and recreate its ``public`` schema (tables, alembic_version)."""
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@dataclass
class DbTarget:
    """An empty database of one kind, its engine, and a way to make it fail for a while."""

    backend: str  # "sqlite" | "postgresql"
    url: str
    engine: Engine
    admin_url: str = ADMIN_URL
    sqlite_path: Path | None = None
    _extra: list[Engine] = field(default_factory=list)

    @classmethod
    def sqlite(cls, path: Path, *, busy_timeout: float = 0.2) -> DbTarget:
        url = f"sqlite:///{path}"
        return cls(
            "sqlite", url, make_engine(url, sqlite_busy_timeout=busy_timeout), sqlite_path=path
        )

    @classmethod
    def postgresql(cls, url: str, admin_url: str = ADMIN_URL) -> DbTarget:
        reset_postgres_schema(url)
        return cls("postgresql", url, make_engine(url), admin_url=admin_url)

    @property
    def dbname(self) -> str:
        return make_url(self.url).database or ""

    def new_engine(self) -> Engine:
        """Another engine on the same database (closed with this target)."""
        engine = make_engine(self.url)
        self._extra.append(engine)
        return engine

    @contextlib.contextmanager
    def outage(self) -> Iterator[None]:
        """Writes to the database fail inside the block and work again after it."""
        if self.backend == "postgresql":
            set_allow_connections(self.dbname, False, self.admin_url)
            try:
                terminate_sessions(self.dbname, self.admin_url)
                yield
            finally:
                set_allow_connections(self.dbname, True, self.admin_url)
        else:
            assert self.sqlite_path is not None
            # Another process-like connection takes the write lock; our writer's inserts then
            # fail with "database is locked" after its busy timeout.
            holder = sqlite3.connect(self.sqlite_path, isolation_level=None, timeout=5)
            try:
                holder.execute("BEGIN EXCLUSIVE")
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()

    def dispose(self) -> None:
        for engine in [self.engine, *self._extra]:
            engine.dispose()
