"""Test helpers for the agent desk: a real aiohttp server in a thread, and desk users.

``DeskServer`` runs ``hotline.web.new_app`` + ``agent_desk.http.setup`` on a SQLite file and
an ``EventBus`` in its own thread and event loop, on a kernel-chosen loopback port, so both
plain HTTP clients and the Playwright browser (sync API) can talk to it. ``publish`` puts
events on the bus from the test thread (thread-safe).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from agent_desk.auth import AuthStore, DeskAuthConfig
from agent_desk.http import Desk, setup
from hotline.db import make_engine, migrate
from hotline.events.bus import EventBus
from hotline.events.types import CallEvent
from hotline.web import Role, json_response, new_app, require, token_authenticator

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "agent_desk"
SERVICE_TOKEN = "test-service-token"
PASSWORD = "Correct-Horse-9"

# Cheap argon2 so that tests stay fast; production uses the defaults.
FAST = DeskAuthConfig(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


@dataclass
class DeskServer:
    engine: Any
    config: DeskAuthConfig
    bus: EventBus = field(default_factory=EventBus)
    url: str = ""
    desk: Desk | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _runner: web.AppRunner | None = None
    _seq: dict[str, int] = field(default_factory=dict)

    @property
    def store(self) -> AuthStore:
        assert self.desk is not None
        return self.desk.auth.store

    def start(self) -> DeskServer:
        ready: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start())
                ready.set_result(None)
            except BaseException as exc:
                ready.set_exception(exc)
                return
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())  # type: ignore[union-attr]
            loop.close()

        self._thread = threading.Thread(target=run, name="desk-server", daemon=True)
        self._thread.start()
        ready.result(timeout=15)
        return self

    async def _start(self) -> None:
        service = SimpleNamespace(engine=self.engine, bus=self.bus, settings=None)
        app = new_app(service, [token_authenticator(SERVICE_TOKEN)])
        self.desk = setup(app, service, config=self.config)
        app.router.add_post("/api/other-feature/ping", _other_feature_ping)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=15)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop and return its result."""
        assert self._loop is not None
        done: Future[Any] = Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=10)

    def publish(self, call_id: str, type_: str, /, **data: Any) -> CallEvent:
        seq = self._seq[call_id] = self._seq.get(call_id, 0) + 1
        event = CallEvent(call_id, seq, datetime.now(UTC), type_, data)
        self.call(lambda: self.bus.publish(event))
        return event

    def add_user(self, username: str, role: Role, seat_id: str | None = None, **kw: Any) -> None:
        self.store.create_user(
            username,
            role,
            seat_id=seat_id,
            password=kw.pop("password", PASSWORD),
            must_change_password=kw.pop("must_change_password", False),
            **kw,
        )


@require(Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR)
async def _other_feature_ping(request: web.Request) -> web.Response:
    """Stands for another feature's state-changing API (e.g. the ACD's): guarded by require."""
    return json_response({"ok": True, "by": request["principal"].id})


def make_server(tmp_path: Path, **config: Any) -> DeskServer:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    migrate(engine)
    return DeskServer(engine, replace(FAST, **config)).start()
