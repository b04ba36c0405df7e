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
from dataclasses import replace
from datetime import timedelta

from aiohttp import web
from sqlalchemy import Engine, select

from acd import api as acd_api
from acd.adapter import AcdService
from acd.seats import list_seats, seat_config
from acd.wiring import build_config, outbound_routes
from agent_desk import http as desk_http
from agent_desk.admin_api import uploaded_flow_file
from hotline.ari import AriClient
from hotline.asterisk.runtime import AsteriskRuntime
from hotline.config import Settings
from hotline.db import make_engine, migrate
from hotline.db.models import CallEventRow
from hotline.events.bus import EventBus
from hotline.events.log import CallEventLog
from hotline.events.types import EventType
from hotline.prompts import load_catalogue
from hotline.secrets import Secrets
from hotline.web import new_app, token_authenticator
from integrations import http as integrations_http
from integrations.emergency import EmergencyWatch
from ivr.app import CallController, CallSession
from ivr.calendar import runtime_holidays_dir
from ivr.flow import DEFAULT_FLOW, FlowStore
from kpi import http as kpi_http
from recordings import http as recordings_http
from recordings.models_fetch import default_model_path
from recordings.service import RecordingService
from workorders import http as workorders_http
from workorders.lifecycle import DEFAULT_SLA
from workorders.service import WorkOrderService

log = logging.getLogger(__name__)

# Each feature's `setup(app, service)` adds its HTTP routes (see hotline.web).
FEATURE_ROUTES: list[Callable[[web.Application, HotlineService], object]] = [
    lambda app, service: acd_api.setup(app, service.acd),
    desk_http.setup,  # sign-in, sessions, the desk and wallboard pages, the live event stream
    integrations_http.setup,  # the partners' signed work-order exchange
    workorders_http.setup,  # work orders and the party archive (after integrations)
    recordings_http.setup,  # audited playback, transcripts
    kpi_http.setup,  # /metrics, live KPIs and alerts, reports, QA and follow-up lists
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
        # A flow uploaded on the admin page (no flow_file configured) outlives restarts.
        flow_file = ivr_settings.flow_file or uploaded_flow_file(settings.runtime_path)
        # Holiday files in service live in the runtime directory (the admin page edits them).
        self.holidays_dir = runtime_holidays_dir(settings.runtime_path)
        self.flows = FlowStore(flow_file or DEFAULT_FLOW, load_catalogue(), self.holidays_dir)
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
        self.asterisk = AsteriskRuntime(settings, secrets)  # paths only; `up` runs it
        self.recordings = RecordingService(
            self.engine,
            self.event_log,
            runtime_dir=settings.runtime_path,
            model_path=default_model_path(settings),
            bus=self.bus,
            workers=settings.speech.workers,
            live_streams=settings.speech.live_streams,
            nice=settings.speech.nice,
            record_calls=settings.speech.record_calls,
        )
        self.calls.on_message_recorded = self._store_message
        self.workorders = WorkOrderService(
            self.engine,
            self.event_log,
            self.bus,
            settings.runtime_path,
            self.recordings,
            sla=replace(
                DEFAULT_SLA, callback_within=timedelta(hours=settings.workorders.callback_within_h)
            ),
        )
        self.calls.on_caller = self.workorders.remember_caller
        # 有危难打110: the caller's live transcript watched for emergency words (desk banner).
        self.emergency = EmergencyWatch.for_runtime(settings.runtime_path, self.event_log)
        self.calls.work_order_status = self.workorders.status_for_number
        self._purge_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._ari_task: asyncio.Task[None] | None = None

    def reload_flow(self) -> bool:
        """SIGHUP: take the flow file again; a flow with problems is refused and the one in
        service stays (new calls use the new flow, calls in progress keep theirs)."""
        error = self.flows.reload()
        if error is not None:
            log.error("flow reload refused, the flow in service stays:\n%s", error)
            return False
        log.info("flow %s reloaded from %s", self.flows.current.id, self.flows.path)
        return True

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
        self.acd = AcdService(
            self.ari,
            self.calls,
            self.event_log,
            config,
            engine=self.engine,
            recordings=self.recordings,
            recordings_dir=self.asterisk.ari_recordings_dir,
            **outbound_routes(self.settings),
        )
        self.calls.handoff = self.acd
        acd_service = self.acd
        # 工单回拨: the handler asks on an order; the ACD rings the seat, then the caller.
        self.workorders.callback_dialer = lambda order, seat_id, number: acd_service.call_back(
            order["id"], seat_id, number, self.workorders.callback_outcome
        )

    async def _store_message(self, session: CallSession, name: str) -> None:
        await self.recordings.store_asterisk_recording(
            self.asterisk.ari_recordings_dir, name, session.call_id, kind="message"
        )

    async def _purge_daily(self) -> None:
        """Retention: delete expired recordings once a day (each purge is logged)."""
        while True:
            try:
                await self.recordings.store.purge()
            except Exception:
                log.exception("recording purge failed; retrying in an hour")
                await asyncio.sleep(3600)
                continue
            await asyncio.sleep(24 * 3600)

    async def start(self) -> None:
        await asyncio.to_thread(migrate, self.engine)
        await self.event_log.start()
        await self.recordings.start()
        self.emergency.start(self.bus)  # before any call: no transcript is missed
        self._purge_task = asyncio.create_task(self._purge_daily(), name="recording-purge")
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
        if self._purge_task is not None:
            self._purge_task.cancel()
        await self.emergency.stop()
        await self.recordings.close()
        await self.event_log.close()
        self.engine.dispose()

    async def run(self, stop_event: asyncio.Event | None = None) -> None:
        """Run until SIGINT/SIGTERM (or ``stop_event``), then stop cleanly."""
        stop = stop_event or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload_flow)
        await self.start()
        try:
            await stop.wait()
        finally:
            log.info("stopping")
            await self.stop()
