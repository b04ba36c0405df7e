"""An HTTP + WebSocket client for the desk API, holding a cookie jar and the CSRF token."""

from __future__ import annotations

import json
from typing import Any

import aiohttp


class DeskClient:
    def __init__(self, base: str) -> None:
        self.base = base
        # unsafe=True: accept cookies from an IP-address host (127.0.0.1).
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf: str | None = None
        self.last_login: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> DeskClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.close()

    async def login(self, username: str, password: str, **headers: str) -> tuple[int, dict]:
        async with self.http.post(
            f"{self.base}/api/auth/login",
            json={"username": username, "password": password},
            headers=headers,
        ) as resp:
            self.last_login = resp
            body = await resp.json()
            if resp.status == 200:
                self.csrf = body["csrf_token"]
            return resp.status, body

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.get(f"{self.base}{path}", allow_redirects=False, **kw) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    async def post(
        self,
        path: str,
        body: dict | None = None,
        *,
        csrf: str | bool = True,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        hdrs = dict(headers or {})
        if csrf is True and self.csrf:
            hdrs["X-CSRF-Token"] = self.csrf
        elif isinstance(csrf, str):
            hdrs["X-CSRF-Token"] = csrf
        async with self.http.post(f"{self.base}{path}", json=body or {}, headers=hdrs) as resp:
            return resp.status, await resp.json()

    def ws(self, **kw: Any) -> Any:
        return self.http.ws_connect(f"{self.base}/api/events/ws", **kw)
