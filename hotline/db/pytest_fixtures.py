"""pytest fixtures for suites that need a real database: import them in a conftest.py::

    from hotline.db.pytest_fixtures import db, pg_database  # noqa: F401

``db`` is parametrised over SQLite (a file in ``tmp_path``) and PostgreSQL (an emptied schema
in a per-module temporary database, marked ``postgres``; skipped when the server is not
reachable). It yields an *unmigrated* ``DbTarget``; call ``migrate(db.engine)`` when needed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hotline.db.testing import DbTarget, postgres_unavailable_reason, temporary_postgres_database


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    """URL of a temporary PostgreSQL database shared by one test module."""
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with temporary_postgres_database() as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DbTarget]:
    if request.param == "sqlite":
        target = DbTarget.sqlite(tmp_path / "hotline.db")
    else:
        target = DbTarget.postgresql(request.getfixturevalue("pg_database"))
    try:
        yield target
    finally:
        target.dispose()
