"""The simulator asks the hotline whether its IVR is in the lawyers' hours before a run."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

from sim.runner import Target


def _target(api_base: str) -> Target:
    return Target(
        uri="sip:12348@127.0.0.1",
        registrar="sip:127.0.0.1",
        api_base=api_base,
        token="t0ken",
        runtime_dir=Path("/nonexistent"),
    )


async def test_open_closed_and_unknown() -> None:
    answers: list[object] = [True, False, None]
    seen: list[str] = []

    async def calendar(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return web.json_response({"hours": {"open_now": answers.pop(0)}})

    app = web.Application()
    app.router.add_get("/api/admin/calendar", calendar)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        target = _target(base)
        results = [await asyncio.to_thread(target.lawyers_open) for _ in range(3)]
    assert results == [True, False, None]
    assert seen == ["Bearer t0ken"] * 3
    # No hotline answering: it cannot say (the run goes on).
    assert _target(base).lawyers_open() is None
