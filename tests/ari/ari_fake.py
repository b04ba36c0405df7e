"""A stand-in for Asterisk's HTTP side in the ARI client tests.

``FakeAsterisk`` is a tiny aiohttp server that stands in for Asterisk's HTTP side in the
pure-logic tests (request encoding, error mapping, reconnect and dispatch order). It records
every REST request, answers with canned responses and lets a test push events into the event
WebSocket or drop it. Behaviour against the real Asterisk is tested in test_ari_asterisk.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

USER = "hotline"
PASSWORD = "s3cret-pw"
APP = "hotline"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class FakeAsterisk:
    """Canned ARI: ``responses[(METHOD, path)] = (status, json_or_None)``; default 204."""

    requests: list[Recorded] = field(default_factory=list)
    responses: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    delays: dict[tuple[str, str], float] = field(default_factory=dict)
    # Per-request delays, used up in order before ``delays`` applies (a stall that ends).
    delay_queue: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    sockets: list[web.WebSocketResponse] = field(default_factory=list)
    ws_queries: list[dict[str, str]] = field(default_factory=list)
    ws_status: int | None = None  # answer the WebSocket upgrade with this status instead
    on_ws_connect: list[dict[str, Any]] = field(default_factory=list)  # sent at once on connect
    ws_connected: asyncio.Condition = field(default_factory=asyncio.Condition)
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    @staticmethod
    def _authorized(request: web.Request) -> bool:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        return request.headers.get("Authorization") == expected

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix("/ari")
        if not self._authorized(request):
            return web.json_response({"message": "Authentication required"}, status=401)
        if path == "/events":
            return await self._events(request)
        body = await request.json() if request.can_read_body else None
        self.requests.append(Recorded(request.method, path, dict(request.query), body))
        key = (request.method, path)
        if self.delay_queue.get(key):
            await asyncio.sleep(self.delay_queue[key].pop(0))
        elif key in self.delays:
            await asyncio.sleep(self.delays[key])
        status, payload = self.responses.get(key, (204, None))
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self.ws_status is not None:
            return web.json_response({"message": "unavailable"}, status=self.ws_status)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_queries.append(dict(request.query))
        for event in self.on_ws_connect:
            await ws.send_str(json.dumps(event))
        async with self.ws_connected:
            self.sockets.append(ws)
            self.ws_connected.notify_all()
        async for message in ws:
            if message.type == WSMsgType.CLOSE:
                break
        return ws

    async def wait_sockets(self, count: int, within: float = 5.0) -> None:
        """Wait until ``count`` WebSocket connections have been accepted in total."""
        async with asyncio.timeout(within), self.ws_connected:
            await self.ws_connected.wait_for(lambda: len(self.sockets) >= count)

    async def send(self, event: dict[str, Any]) -> None:
        await self.sockets[-1].send_str(json.dumps(event))

    async def send_text(self, text: str) -> None:
        await self.sockets[-1].send_str(text)

    async def drop(self) -> None:
        """Close the current event socket from the server side (as a restarting Asterisk)."""
        await self.sockets[-1].close()
