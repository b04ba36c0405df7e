"""Fixtures for the agent desk: the in-process server with users, and real headless Chromium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from desk_server import ARTIFACTS, DeskServer, make_full_server, make_server

from hotline.db.pytest_fixtures import db, pg_database  # noqa: F401
from hotline.web import Role


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., DeskServer]]:
    servers: list[DeskServer] = []

    def make(**config: Any) -> DeskServer:
        sub = tmp_path / f"s{len(servers)}"
        sub.mkdir()
        servers.append(make_server(sub, **config))
        return servers[-1]

    yield make
    for s in servers:
        s.stop()
        s.engine.dispose()


@pytest.fixture
def server(server_factory: Callable[..., DeskServer]) -> DeskServer:
    srv = server_factory()
    srv.add_user("lawyer1", Role.SEAT_LAWYER, "s101", display_name="张律师")
    srv.add_user("lawyer2", Role.SEAT_LAWYER, "s102", display_name="李律师")
    srv.add_user("super", Role.SUPERVISOR, display_name="王班长")
    srv.add_user("admin", Role.ADMINISTRATOR, display_name="管理员")
    srv.add_user("audit", Role.AUDITOR, display_name="审计员")
    return srv


# --- real Chromium through Playwright (never downloads a browser) -----------------------------

CHROMIUM = os.environ.get("HOTLINE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is
# started, which would break the asyncio tests of later modules.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    # In CI (`make test` installs both) a missing browser is a failure, never a silent skip.
    missing = pytest.fail if os.environ.get("CI") else pytest.skip
    if not shutil.which(CHROMIUM):
        missing(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install playwright")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


@pytest.fixture
def browser_context(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 1366, "height": 768}, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(5000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


# --- the desk with the real ACD API, KPI and work-order services (no Asterisk) ---------------

SEATS = {
    "s101": {"labor": 2, "family": 1},
    "s102": {"labor": 1, "family": 2},
    "s103": {"labor": 1},
    "s104": {"family": 1},
}


@pytest.fixture
def full_server(tmp_path: Path) -> Iterator[DeskServer]:
    sub = tmp_path / "full"
    sub.mkdir()
    srv = make_full_server(sub, SEATS)
    try:
        srv.add_user("lawyer1", Role.SEAT_LAWYER, "s101", display_name="张律师")
        srv.add_user("lawyer2", Role.SEAT_LAWYER, "s102", display_name="李律师")
        srv.add_user("super", Role.SUPERVISOR, display_name="王班长")
        yield srv
    finally:
        srv.stop()
        srv.engine.dispose()
