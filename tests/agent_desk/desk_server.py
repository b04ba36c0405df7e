"""Test helpers for the agent desk: a real aiohttp server in a thread, and desk users.

``DeskServer`` runs ``hotline.web.new_app`` + ``agent_desk.http.setup`` on a SQLite file and
an ``EventBus`` in its own thread and event loop, on a kernel-chosen loopback port, so both
plain HTTP clients and the Playwright browser (sync API) can talk to it. ``publish`` puts
events on the bus from the test thread (thread-safe).

With ``full=True`` (``make_full_server``) it wires the real features the desk talks to, as
``hotline.service`` does: the call-event log on the bus, the ACD's REST API over a real
``AcdService`` (seat directory in the database), the KPI service and API, the work-order
service and API. Only Asterisk is missing: the ACD's ARI client is ``NoAri``, which fails the
test if anything tries to use it, and ``acd_input`` gives the ACD core the inputs its ARI side
would give (a call arrives, the seat answers, the call completes); the core's own ``Log``
commands go to the log exactly as the adapter writes them (``AcdService._log``). The IVR's
events (``call.entered``, ``ivr.*``) and the transcripts are logged with ``log`` in the shape
``ivr/app.py`` and ``recordings/service.py`` give them.
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
from hotline.events.log import CallEventLog
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
    full: bool = False
    workdir: Path | None = None
    event_log: CallEventLog | None = None
    acd: Any = None
    workorders: Any = None

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
            if self.event_log is not None:
                loop.run_until_complete(self.event_log.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="desk-server", daemon=True)
        self._thread.start()
        ready.result(timeout=15)
        return self

    async def _start(self) -> None:
        service = SimpleNamespace(engine=self.engine, bus=self.bus, settings=None)
        if self.full:
            await self._start_features(service)
        app = new_app(service, [token_authenticator(SERVICE_TOKEN)])
        self.desk = setup(app, service, config=self.config)
        if self.full:
            from acd import api as acd_api
            from kpi import http as kpi_http
            from workorders import http as workorders_http

            acd_api.setup(app, self.acd)
            kpi_http.setup(app, service)
            workorders_http.setup(app, self.workorders)
        app.router.add_post("/api/other-feature/ping", _other_feature_ping)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def _start_features(self, service: SimpleNamespace) -> None:
        from acd.adapter import AcdService
        from acd.config import AcdConfig, QueueConfig
        from kpi.settings import KpiSettings
        from workorders.service import WorkOrderService

        assert self.workdir is not None
        self.event_log = CallEventLog(self.engine, spool_dir=self.workdir / "spool", bus=self.bus)
        await self.event_log.start()
        queue = {"ring_timeout_s": 600.0, "announce_interval_s": None, "wrap_up_s": WRAP_UP_S}
        config = AcdConfig(
            queues=(
                QueueConfig(name="consult_labor", topic="labor", **queue),
                QueueConfig(name="consult_family", topic="family", **queue),
            )
        )
        # No IVR here: a bare stand-in for the call controller the adapter annotates.
        controller = SimpleNamespace(partners={})
        self.acd = AcdService(
            NoAri(),  # type: ignore[arg-type]
            controller,  # type: ignore[arg-type]
            self.event_log,
            config,
            engine=self.engine,
        )
        self.workorders = WorkOrderService(self.engine, self.event_log, self.bus, self.workdir)
        # Snapshots twice a second, alerts from the first call, every abandon counted: the
        # wallboard test is short.
        kpi = KpiSettings(live_interval_s=0.5, alert_min_calls=1, short_abandon_s=0.0)
        service.settings = SimpleNamespace(kpi=kpi)
        service.event_log = self.event_log
        service.acd = self.acd

    def log(self, call_id: str, type_: str, /, **data: Any) -> CallEvent:
        """Append to the call-event log (stored and published on the bus), as features do."""
        assert self.event_log is not None
        return self.call(lambda: self.event_log.append(call_id, type_, data))

    def acd_input(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        """One input to the real ACD core, as its ARI side would give it; the core's log
        commands are written like the adapter writes them, the others (Asterisk's) dropped."""
        from acd import model as acd_model

        def run() -> list[Any]:
            commands = getattr(self.acd.core, method)(*args, now=self.acd._now(), **kwargs)
            for command in commands:
                if isinstance(command, acd_model.Log):
                    self.acd._log(command)
            return commands

        return self.call(run)

    def add_seat(self, seat_id: str, skills: dict[str, int], region: str = "武汉") -> None:
        from acd.seats import add_seat

        add_seat(self.engine, seat_id, skills=skills, region=region)

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


WRAP_UP_S = 45.0  # the queues' wrap-up seconds in the full server (the countdown shows them)


class NoAri:
    """The ACD's ARI client when there is no Asterisk: seat-state work never needs it."""

    def add_handler(self, handler: Any) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"ARI used without Asterisk in a desk test: {name}")


@require(Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR)
async def _other_feature_ping(request: web.Request) -> web.Response:
    """Stands for another feature's state-changing API (e.g. the ACD's): guarded by require."""
    return json_response({"ok": True, "by": request["principal"].id})


def make_server(tmp_path: Path, **config: Any) -> DeskServer:
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    migrate(engine)
    return DeskServer(engine, replace(FAST, **config)).start()


def make_full_server(tmp_path: Path, seats: dict[str, dict[str, int]]) -> DeskServer:
    """The desk with the real ACD API, KPI and work-order services (no Asterisk)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    migrate(engine)
    server = DeskServer(engine, FAST, full=True, workdir=tmp_path)
    for seat_id, skills in seats.items():
        server.add_seat(seat_id, skills)
    return server.start()
