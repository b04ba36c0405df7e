"""Fixtures of the work-order service tests: a migrated database (SQLite and PostgreSQL), the
event log with its bus and the service with a settable clock (see workorders_helpers)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from workorders_helpers import Clock, Env

from hotline.db import migrate
from hotline.db.pytest_fixtures import db, pg_database  # noqa: F401
from hotline.db.testing import DbTarget
from hotline.events import CallEventLog, EventBus
from workorders.service import WorkOrderService


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def env(db: DbTarget, tmp_path: Path, clock: Clock) -> AsyncIterator[Env]:  # noqa: F811
    migrate(db.engine)
    bus = EventBus()
    events = bus.subscribe("workorder.*")
    log = CallEventLog(db.engine, spool_dir=tmp_path / "spool", bus=bus, flush_interval=0.01)
    await log.start()
    service = WorkOrderService(
        db.engine, log, bus, tmp_path / "runtime", clock=clock, check_interval=0, segment_wait=3.0
    )
    await service.start()
    try:
        yield Env(db, bus, log, service, clock, tmp_path / "runtime", events)
    finally:
        await service.close()
        await log.close()
