"""Engines, sessions and schema migrations.

``make_engine`` is the one place that knows the per-database connection settings:

* SQLite: WAL journal (readers never block the writer), foreign keys on, a busy timeout so a
  short lock waits instead of failing, and ``check_same_thread`` off because the async service
  runs database work in ``asyncio.to_thread`` workers. ``synchronous=NORMAL`` is safe with WAL
  (a power cut may lose the last commits, never corrupt the file).
* PostgreSQL through psycopg 3 (``postgresql+psycopg://``; a bare ``postgresql://`` is mapped
  to it), with pool pre-ping so connections killed by a server restart are replaced silently,
  and a connect timeout so an unreachable server fails fast instead of hanging a worker thread.

``migrate`` runs Alembic's ``upgrade head`` configured in code: the scripts live in
``hotline/db/migrations`` inside the package, so no ``alembic.ini`` is needed at run time.
To write a new migration: ``python -m hotline.db revision -m "what" [--autogenerate]``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def _normalise_url(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(
    url: str,
    *,
    sqlite_busy_timeout: float = 5.0,
    pg_connect_timeout: int = 5,
    echo: bool = False,
) -> Engine:
    """Create an Engine for ``url`` with the settings this service relies on."""
    url = _normalise_url(url)
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        in_memory = database in ("", ":memory:") or "mode=memory" in database
        if not in_memory:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": sqlite_busy_timeout},
            # One shared connection for an in-memory database, or every checkout gets its own.
            **({"poolclass": StaticPool} if in_memory else {}),
        )
        busy_ms = int(sqlite_busy_timeout * 1000)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            try:
                if not in_memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                    cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            finally:
                cursor.close()

        return engine
    if backend == "postgresql":
        return create_engine(
            url,
            echo=echo,
            pool_pre_ping=True,
            connect_args={"connect_timeout": pg_connect_timeout},
        )
    raise ValueError(f"unsupported database URL {parsed!r}: use sqlite:/// or postgresql://")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit (no lazy reloads)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | None = None) -> Config:
    """An Alembic Config built in code, pointing at the package's migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser interpolation: a literal % in a password must be doubled.
        cfg.set_main_option("sqlalchemy.url", _normalise_url(url).replace("%", "%%"))
    return cfg


def head_revision() -> str | None:
    """The newest revision among the migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def migrate(url_or_engine: str | Engine, revision: str = "head") -> str | None:
    """Upgrade the schema to ``revision`` (default: the newest); a no-op when already there.

    Returns the revision the database is at afterwards.
    """
    if isinstance(url_or_engine, str):
        engine = make_engine(url_or_engine)
        try:
            return migrate(engine, revision)
        finally:
            engine.dispose()
    engine = url_or_engine
    cfg = alembic_config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)
    rev = current_revision(engine)
    log.info("database schema at revision %s", rev)
    return rev


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty (never migrated) database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
