"""Fixtures for the partner integration: a migrated database (SQLite and PostgreSQL), partners,
secrets, and the service with its routes on a real loopback HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from integrations_helpers import SECRETS, Api, make_config

from hotline.db import migrate
from hotline.db.pytest_fixtures import db, pg_database  # noqa: F401
from hotline.db.testing import DbTarget
from hotline.events.bus import EventBus
from hotline.events.log import CallEventLog
from integrations.http import setup_routes
from integrations.service import IntegrationService


@pytest.fixture
def migrated(db: DbTarget) -> DbTarget:  # noqa: F811
    migrate(db.engine)
    return db


@pytest.fixture
async def api(migrated: DbTarget, tmp_path: Path) -> AsyncIterator[Api]:
    bus = EventBus()
    event_log = CallEventLog(migrated.engine, spool_dir=tmp_path / "spool", bus=bus)
    await event_log.start()
    integrations = IntegrationService(migrated.engine, make_config(), SECRETS, event_log=event_log)
    app = web.Application()
    setup_routes(app, integrations)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    try:
        yield Api(client, integrations, bus, event_log, migrated)
    finally:
        await client.close()
        await integrations.close()
        await event_log.close()


@pytest.fixture
def runtime_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "runtime"
    path.mkdir()
    yield path
