"""Fixtures of the ARI client tests (see ari_fake.py for the stand-in server)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from ari_fake import FakeAsterisk


@pytest.fixture
async def fake_asterisk() -> AsyncIterator[FakeAsterisk]:
    fake = FakeAsterisk()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.server = server
    try:
        yield fake
    finally:
        for ws in fake.sockets:
            await ws.close()
        await server.close()
