"""Database layer: models, engines, sessions and Alembic migrations.

SQLAlchemy 2 with a *synchronous* engine: the asyncio service runs database work in
``asyncio.to_thread`` so the event loop never waits on the database. SQLite (the default,
in the runtime directory) and PostgreSQL (psycopg 3) are both supported and tested.
"""

from hotline.db.engine import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
    session_factory,
)
from hotline.db.models import Base, CallEventRow, UTCDateTime

__all__ = [
    "MIGRATIONS_DIR",
    "Base",
    "CallEventRow",
    "UTCDateTime",
    "alembic_config",
    "current_revision",
    "head_revision",
    "make_engine",
    "migrate",
    "session_factory",
]
