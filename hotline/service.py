"""Service wiring: database → event log → ARI client → call controller → HTTP API.

``HotlineService.run()`` is what ``hotline serve`` and ``hotline up`` run. It starts the parts in
dependency order and stops them in reverse, so that a Ctrl-C never loses an event: calls still in
the app are hung up with a record, then the event log is flushed (or spooled when the database is
away) before the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import suppress

from aiohttp import web
from sqlalchemy import Engine, select

from acd import api as acd_api
from acd.adapter import AcdService
from acd.seats import list_seats, seat_config
from acd.wiring import build_config
from hotline.ari import AriClient
from hotline.config import Settings
from hotline.db import make_engine, migrate
from hotline.db.models import CallEventRow
from hotline.events.bus import EventBus
from hotline.events.log import CallEventLog
from hotline.events.types import EventType
from hotline.prompts import load_catalogue
from hotline.secrets import Secrets
from hotline.web import new_app, token_authenticator
from ivr.app import CallController
from ivr.flow import DEFAULT_FLOW, FlowStore

log = logging.getLogger(__name__)

# Each feature's `setup(app, service)` adds its HTTP routes (see hotline.web).
FEATURE_ROUTES: list[Callable[[web.Application, HotlineService], None]] = [
    lambda app, service: acd_api.setup(app, service.acd),
]


def has_called_before(engine: Engine, caller_key: str, call_id: str) -> bool:
    """Whether this caller (by keyed number hash) has an earlier call in the event log."""
    query = (
        select(CallEventRow.id)
        .where(CallEventRow.type == EventType.CALL_ENTERED)
        .where(CallEventRow.data["caller_key"].as_string() == caller_key)
        .where(CallEventRow.call_id != call_id)
        .limit(1)
    )
    with engine.connect() as conn:
        return conn.execute(query).first() is not None


class HotlineService:
    def __init__(self, settings: Settings, secrets: Secrets, *, sounds_path: str) -> None:
        """``sounds_path`` is the prompt directory as Asterisk sees it (inside its root)."""
        self.settings = settings
        self.secrets = secrets
        self.sounds_path = sounds_path.rstrip("/")
        self.bus = EventBus()
        self.engine = make_engine(settings.database_url)
        self.event_log = CallEventLog(
            self.engine, spool_dir=settings.runtime_path / "spool", bus=self.bus
        )
        ast = settings.asterisk
        self.ari = AriClient(
            f"http://{ast.bind}:{ast.http_port}",
            secrets.ari_user,
            secrets.ari_password,
            ast.app_name,
        )
        ivr_settings = settings.ivr
        self.flows = FlowStore(ivr_settings.flow_file or DEFAULT_FLOW, load_catalogue())
        fixed = ivr_settings.clock
        self.calls = CallController(
            self.ari,
            self.event_log,
            prompt_media=self.prompt_media,
            phone_hash_key=secrets.phone_hash_key,
            flows=self.flows,
            language=settings.prompts.language,
            clock=(lambda: fixed) if fixed else None,
            special_group_numbers=frozenset(ivr_settings.special_group_numbers),
            blocked_numbers=frozenset(ivr_settings.blocked_numbers),
            is_repeat_caller=self.is_repeat_caller,
        )
        self.ari.add_handler(self.calls.handle)
        self.ari.on_connect = self.calls.reconcile
        self.acd: AcdService | None = None
        self._runner: web.AppRunner | None = None
        self._ari_task: asyncio.Task[None] | None = None

    async def is_repeat_caller(self, caller_key: str, call_id: str) -> bool:
        return await asyncio.to_thread(has_called_before, self.engine, caller_key, call_id)

    def prompt_media(self, language: str, prompt_id: str) -> str:
        return f"sound:{self.sounds_path}/{language}/{prompt_id}"

    # HTTP ---------------------------------------------------------------------------------
    def http_app(self) -> web.Application:
        app = new_app(self, [token_authenticator(self.secrets.service_token)])
        app.router.add_get("/healthz", self._health)
        for setup in FEATURE_ROUTES:
            setup(app, self)
        return app

    async def _health(self, request: web.Request) -> web.Response:
        status = {
            "ari_connected": self.ari.connected.is_set(),
            "active_calls": len(self.calls.sessions),
            "event_backlog": self.event_log.backlog,
        }
        ok = status["ari_connected"]
        return web.json_response(status, status=200 if ok else 503)

    # Lifecycle ----------------------------------------------------------------------------
    def _start_acd(self, rows: list) -> None:
        seats = [seat_config(row) for row in rows]
        config = build_config(self.flows.current, self.settings.acd, seats)
        self.acd = AcdService(self.ari, self.calls, self.event_log, config, engine=self.engine)
        self.calls.handoff = self.acd

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.engine)
        await self.event_log.start()
        self._start_acd(await asyncio.to_thread(list_seats, self.engine))
        self._ari_task = asyncio.create_task(self.ari.run(), name="ari")
        self._runner = web.AppRunner(self.http_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.service.bind, self.settings.service.port)
        await site.start()
        log.info(
            "service listening on http://%s:%d",
            self.settings.service.bind,
            self.settings.service.port,
        )

    async def stop(self) -> None:
        with suppress(Exception):
            await asyncio.wait_for(self.calls.shutdown(), timeout=5)
        if self.acd is not None:
            await self.acd.close()
        await self.ari.close()
        if self._ari_task is not None:
            self._ari_task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await self._ari_task
        if self._runner is not None:
            await self._runner.cleanup()
        await self.event_log.close()
        self.engine.dispose()

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        """Run until SIGINT/SIGTERM (or ``stop_event``), then stop cleanly."""
        stop = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self.stop()
