"""The Stasis application's call controller: the caller's leg from StasisStart to its end.

Theory of operation
-------------------
The dialplan hands every call from the carrier trunk to our ARI app with two arguments: a kind
(``inbound`` for a service number such as 12348, ``unknown`` for any other dialled number) and the
dialled number. A call from a partner hotline's trunk (110, 12345: ``integrations.trunks``) comes
as ``partner,<partner id>,<dialled>``: its context headers are read from the channel, logged on
``call.entered`` (``origin``, ``attached``: partner, case id, summary, original caller masked),
and the call either skips the IVR for the partner's queue (``PartnerIntake``) or runs the flow
with that ``origin``.

For each caller channel this controller keeps one ``CallSession``. ARI events of a channel
arrive in order (the ARI client keeps one ordered lane per channel) and timer expiries are fed
through the session's lock, so a session never sees two inputs at once.

What the caller hears and where they go is decided by a *dialogue*, a sans-I/O state machine
(``ivr.interpreter.FlowRun`` for the IVR flow, ``ivr.survey.SurveyRun`` for the post-call survey):
this module turns ARI events into its inputs (``DigitPressed``, ``PromptFinished``,
``TimerExpired``, ``RecordingFinished``, ``CallerHungUp``) and executes the commands it returns
(``Play``, ``StartTimer``, ``EnterQueue``, ``Log`` ...). Hand-offs that belong to other parts —
a queue (the ACD), a transfer out, a callback — go through a ``Handoff`` object; until one is
attached they fail, and the flow's ``on_failure`` path keeps the caller from being stuck.

A call's record is the event log: ``call.entered`` → ``call.answered`` → the IVR's ``ivr.*``
steps with ``prompt.started``/``prompt.finished`` → … → ``call.ended`` (with ``hangup_by``), or
``call.entered`` → ``call.rejected`` → ``call.ended`` for an unknown number. ``call.ended`` is
written exactly once, when the channel leaves our app (StasisEnd: Asterisk sends nothing after
it). The call id is also stored on the channel (``HOTLINE_CALL_ID``), so that a restarted service
adopts the call and finishes its record instead of starting a new one.

What it must not do: block (every ARI call is awaited with the client's timeouts), or log a
caller's number in clear (only masked, and the keyed hash for look-ups).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hotline.ari import AriClient, AriError, AriNotFound
from hotline.ari import events as ari
from hotline.events.log import CallEventLog
from hotline.events.types import EventType
from hotline.privacy import mask_number, normalise_number, number_key
from integrations import trunks
from integrations.config import Partner
from ivr import interpreter as ivr
from ivr.flow import KEYS, FlowStore
from ivr.survey import SurveyRun

log = logging.getLogger(__name__)

# ARI hang-up reasons → the SIP answer the caller sees. "unallocated" gives 404 Not Found.
REJECT_REASON = "unallocated"
ANSWER_FAILED_REASON = "congestion"
# Q.850 causes we see on the hotline, for readable records.
CAUSE_TEXT = {
    0: "unknown",
    1: "unallocated number",
    16: "normal clearing",
    17: "user busy",
    18: "no user responding",
    19: "no answer",
    21: "call rejected",
    31: "normal, unspecified",
    34: "no circuit available",
    127: "interworking",
}
# No prompt is longer than this: a playback still unfinished then is taken as finished.
PLAYBACK_WATCHDOG_S = 180.0
# The call id rides on the caller's channel, so a restarted service can finish the call's record.
CALL_ID_VARIABLE = "HOTLINE_CALL_ID"


class Dialogue(Protocol):
    def handle(self, event: ivr.Event) -> list[ivr.Command]: ...


class HandoffFailed(Exception):
    """A queue, transfer or callback could not be done; the reason goes to the dialogue."""


class Handoff(Protocol):
    """What the IVR hands a caller to (the ACD, partner trunks, the callback list)."""

    async def enter_queue(self, session: CallSession, command: ivr.EnterQueue) -> None: ...
    async def transfer_out(self, session: CallSession, command: ivr.TransferOut) -> None: ...
    async def book_callback(self, session: CallSession, command: ivr.BookCallback) -> None: ...
    async def caller_gone(self, session: CallSession) -> None: ...
    def owns(self, object_id: str) -> bool: ...


class NoHandoff:
    """Until the ACD and partner trunks are attached: queues and transfers fail (the flow then
    takes its ``on_failure`` path); a booked callback is recorded in the event log."""

    def __init__(self, controller: CallController) -> None:
        self.controller = controller

    async def enter_queue(self, session: CallSession, command: ivr.EnterQueue) -> None:
        raise HandoffFailed("no queue service")

    async def transfer_out(self, session: CallSession, command: ivr.TransferOut) -> None:
        raise HandoffFailed(f"no trunk configured for {command.partner or command.number}")

    async def book_callback(self, session: CallSession, command: ivr.BookCallback) -> None:
        self.controller.record(
            session,
            EventType.CALLBACK_BOOKED,
            {"topic": command.topic, "caller_key": session.caller_key},
        )

    async def caller_gone(self, session: CallSession) -> None:
        return None

    def owns(self, object_id: str) -> bool:
        return False


@dataclass
class CallSession:
    call_id: str
    channel_id: str
    dialled: str
    caller_number: str = field(repr=False)  # in memory only: never logged, never stored
    caller_key: str = ""
    language: str = "zh"
    dialogue: Dialogue | None = None
    answered: bool = False
    hangup_requested_by: str | None = None
    hangup_cause: int = 16
    ended: bool = False
    playback_id: str | None = None
    stopped_playbacks: set[str] = field(default_factory=set)
    playback_prompts: dict[str, list[str]] = field(default_factory=dict)
    timers: dict[str, asyncio.TimerHandle] = field(default_factory=dict)
    recording: str | None = None
    handed_off: bool = False  # the ACD (or a transfer) owns the channel's media now
    extra: dict[str, Any] = field(default_factory=dict)  # for hand-off owners
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def caller_masked(self) -> str:
        return mask_number(self.caller_number)


def new_call_id() -> str:
    return uuid.uuid4().hex


class CallController:
    def __init__(
        self,
        ari_client: AriClient,
        event_log: CallEventLog,
        *,
        prompt_media: Callable[[str, str], str],
        phone_hash_key: str,
        flows: FlowStore,
        language: str = "zh",
        clock: Callable[[], datetime] | None = None,
        special_group_numbers: frozenset[str] = frozenset(),
        blocked_numbers: frozenset[str] = frozenset(),
        is_repeat_caller: Callable[[str, str], Awaitable[bool]] | None = None,
    ) -> None:
        self.ari = ari_client
        self.events = event_log
        self.prompt_media = prompt_media
        self.phone_hash_key = phone_hash_key
        self.flows = flows
        self.language = language
        self.clock = clock or (lambda: datetime.now(UTC))
        self.special_group = {normalise_number(n) for n in special_group_numbers}
        self.blocked = {normalise_number(n) for n in blocked_numbers}
        self.is_repeat_caller = is_repeat_caller or _never_called_before
        self.handoff: Handoff = NoHandoff(self)
        # Hooks for the work-order service: the caller's number for the order (kept encrypted
        # there), and the status of an order number typed in IVR menu 9.
        self.on_caller: Callable[[str, str], None] | None = None
        self.work_order_status: Callable[..., Awaitable[tuple[str | None, Any]]] | None = None
        # A voice message was recorded (name of the Asterisk recording): store it safely.
        self.on_message_recorded: Callable[[CallSession, str], Awaitable[Any]] | None = None
        # Partner trunks (set by the ACD wiring): partner id → its configuration, and partner
        # id → the queue its transferred-in calls join (absent: they run the IVR flow).
        self.partners: dict[str, Partner] = {}
        self.partner_queues: dict[str, str] = {}
        self.sessions: dict[str, CallSession] = {}  # by caller channel id
        self._drained = asyncio.Event()  # set whenever no call is left

    # Event log ------------------------------------------------------------------------------
    def record(self, session: CallSession, type_: str, data: dict[str, Any] | None = None) -> None:
        self.events.append(session.call_id, type_, data or {})

    # ARI event entry point --------------------------------------------------------------------
    async def handle(self, event: ari.Event) -> None:
        if isinstance(event, ari.StasisStart):
            if event.args and event.args[0] in ("inbound", "unknown", "partner"):
                await self._on_caller(event)
            return
        session = self._session_for(event)
        if session is None:
            return
        if isinstance(event, ari.PlaybackFinished):
            await self._on_playback_finished(session, event)
        elif isinstance(event, ari.ChannelDtmfReceived):
            if event.digit in KEYS and not session.handed_off:
                await self.feed(session, ivr.DigitPressed(event.digit))
            elif session.handed_off:
                session.extra.setdefault("dtmf_sink", _noop)(event.digit)
        elif isinstance(event, ari.RecordingFinished | ari.RecordingFailed):
            await self._on_recording_done(session, event)
        elif isinstance(event, ari.ChannelHangupRequest):
            self._on_hangup_request(session, event)
        elif isinstance(event, ari.StasisEnd | ari.ChannelDestroyed):
            await self._on_channel_gone(session, event)

    def _session_for(self, event: ari.Event) -> CallSession | None:
        if isinstance(event, ari.ChannelEvent):
            return self.sessions.get(event.channel.id)
        channel_id = getattr(event, "channel_id", None)
        return self.sessions.get(channel_id or "")

    async def _partner_headers(self, channel_id: str, partner: Partner | None) -> dict[str, str]:
        """The partner's context headers as sent (untrusted; ``trunks`` cleans them)."""
        names = trunks.header_names(partner)

        async def read(name: str) -> str:
            try:
                return await self.ari.get_variable(channel_id, f"PJSIP_HEADER(read,{name})")
            except AriError:
                return ""  # absent header (Asterisk answers 404) or the caller already gone

        values = await asyncio.gather(*(read(name) for name in names.values()))
        return dict(zip(names, values, strict=True))

    async def _on_caller(self, event: ari.StasisStart) -> None:
        channel = event.channel
        kind, dialled = [*event.args, "", ""][:2]
        partner_call: trunks.PartnerCall | None = None
        number = channel.caller_number
        if kind == "partner":
            # partner,<id>,<dialled>: the trunk said who; the headers say about what.
            partner = self.partners.get(dialled)
            headers = await self._partner_headers(channel.id, partner)
            partner_call = trunks.parse_partner_call(dialled, partner, headers)
            dialled = ([*event.args, "", "", ""][2]) or channel.dialplan_exten
            # The person on the line is the partner's caller: their number (when sent) is the
            # one to call back and to file the work order under.
            number = partner_call.original_caller or number
        session = CallSession(
            call_id=new_call_id(),
            channel_id=channel.id,
            dialled=dialled or channel.dialplan_exten,
            caller_number=number,
            caller_key=number_key(number, self.phone_hash_key),
            language=self.language,
        )
        self.sessions[channel.id] = session
        self._drained.clear()
        entered: dict[str, Any] = {
            "channel": channel.id,
            "dialled": session.dialled,
            "caller": session.caller_masked,
            "caller_key": session.caller_key,
            "kind": kind,
        }
        if partner_call is not None:
            session.extra["origin"] = partner_call.partner_id
            session.extra["partner_call"] = partner_call
            entered["origin"] = partner_call.partner_id
            entered["trunk"] = channel.name.rsplit("-", 1)[0] if channel.name else ""
            entered["attached"] = partner_call.attached()
            if not partner_call.known:
                entered["unknown_partner"] = True
        self.record(session, EventType.CALL_ENTERED, entered)
        if self.on_caller is not None:
            self.on_caller(session.call_id, session.caller_number)
        if kind not in ("inbound", "partner"):
            self.record(session, EventType.CALL_REJECTED, {"reason": "unknown_number"})
            await self.hang_up(session, REJECT_REASON)
            return
        try:
            await self.ari.set_variable(channel.id, CALL_ID_VARIABLE, session.call_id)
            await self.ari.answer(channel.id)
        except AriNotFound:
            return  # the caller hung up first; StasisEnd completes the record
        except AriError as exc:
            # Asterisk did not answer in time (a stalled SIP thread): never leave the caller
            # answered later in silence with nobody driving the call. StasisEnd ends the record.
            log.warning("call %s: answering failed: %s", session.call_id, exc)
            self.record(session, EventType.CALL_REJECTED, {"reason": "answer_failed"})
            with contextlib.suppress(AriError):
                await self.hang_up(session, ANSWER_FAILED_REASON)
            return
        session.answered = True
        self.record(session, EventType.CALL_ANSWERED, {})
        if partner_call is not None:
            route = trunks.inbound_route(
                self.partners.get(partner_call.partner_id), self.partner_queues
            )
            if route.kind == "queue":
                # Transferred in: no menus, a short greeting and the partner's queue.
                intake = trunks.PartnerIntake(route, partner_call.partner_id)
                session.dialogue = intake
                async with session.lock:
                    await self.execute(session, intake.start())
                return
        number = normalise_number(session.caller_number)
        caller = ivr.CallerInfo(
            number=session.caller_number,
            is_repeat=await self.is_repeat_caller(session.caller_key, session.call_id),
            special_group=number in self.special_group,
            blocked=number in self.blocked,
            origin=partner_call.partner_id if partner_call is not None else "direct",
        )
        run = ivr.FlowRun(self.flows.current)
        session.dialogue = run
        async with session.lock:
            await self.execute(session, run.start(ivr.CallStarted(caller, self.clock())))

    # Dialogue I/O -----------------------------------------------------------------------------
    async def feed(self, session: CallSession, event: ivr.Event) -> None:
        """One input to the session's dialogue, then its commands, under the session's lock."""
        async with session.lock:
            if session.dialogue is None:
                return
            try:
                commands = session.dialogue.handle(event)
            except ivr.IvrProtocolError:
                log.exception("call %s: dialogue refused %s", session.call_id, event)
                return
            await self.execute(session, commands)

    async def start_dialogue(self, session: CallSession, dialogue: Any) -> None:
        """Give the caller a new dialogue (the survey after a seat hangs up)."""
        async with session.lock:
            session.dialogue = dialogue
            session.handed_off = False
            await self.execute(session, dialogue.start())

    async def execute(self, session: CallSession, commands: list[ivr.Command]) -> None:
        """Carry out a dialogue's commands in order (the caller holds ``session.lock``)."""
        pending: list[ivr.Event] = []
        for command in commands:
            if session.ended:
                break
            match command:
                case ivr.Log(type=type_, data=data):
                    self.record(session, type_, dict(data))
                case ivr.Play():
                    await self._play(session, command)
                case ivr.StopPlayback():
                    await self._stop_playback(session)
                case ivr.StartTimer(timer_id=timer_id, seconds=seconds):
                    loop = asyncio.get_running_loop()
                    session.timers[timer_id] = loop.call_later(
                        seconds, self._timer_fired, session, timer_id
                    )
                case ivr.CancelTimer(timer_id=timer_id):
                    handle = session.timers.pop(timer_id, None)
                    if handle is not None:
                        handle.cancel()
                case ivr.SetLanguage(code=code):
                    session.language = code
                case ivr.RecordMessage():
                    await self._record_message(session, command, pending)
                case ivr.EnterQueue() | ivr.TransferOut() | ivr.BookCallback():
                    await self._hand_off(session, command, pending)
                case ivr.Lookup(value=value):
                    pending.append(await self._lookup(session, value))
                case ivr.Hangup():
                    await self.hang_up(session, "normal")
        for event in pending:  # failures the dialogue must hear about, after its commands
            if session.dialogue is not None and not session.ended:
                try:
                    await self.execute(session, session.dialogue.handle(event))
                except ivr.IvrProtocolError:
                    log.exception("call %s: dialogue refused %s", session.call_id, event)

    async def _hand_off(
        self,
        session: CallSession,
        command: ivr.EnterQueue | ivr.TransferOut | ivr.BookCallback,
        pending: list[ivr.Event],
    ) -> None:
        try:
            if isinstance(command, ivr.EnterQueue):
                session.handed_off = True
                await self.handoff.enter_queue(session, command)
            elif isinstance(command, ivr.TransferOut):
                session.handed_off = True
                await self.handoff.transfer_out(session, command)
            else:
                await self.handoff.book_callback(session, command)
        except HandoffFailed as exc:
            session.handed_off = False
            pending.append(ivr.ActionFailed(str(exc)))

    async def _lookup(self, session: CallSession, value: str) -> ivr.Event:
        """Menu 9: the status of a work order, spoken to the caller (or a person on failure)."""
        if self.work_order_status is None:
            return ivr.ActionFailed("no work-order service")
        try:
            async with asyncio.timeout(3):
                state, prompts = await self.work_order_status(value, call_id=session.call_id)
        except Exception as exc:  # a slow or failing look-up hands the caller to a person
            log.warning("call %s: work-order look-up failed: %r", session.call_id, exc)
            return ivr.ActionFailed("work-order look-up failed")
        return ivr.LookupAnswered(tuple(prompts), state or "not_found")

    def _timer_fired(self, session: CallSession, timer_id: str) -> None:
        if session.timers.pop(timer_id, None) is None or session.ended:
            return
        task = asyncio.create_task(self.feed(session, ivr.TimerExpired(timer_id)))
        task.add_done_callback(_log_task_error)

    async def _play(self, session: CallSession, command: ivr.Play) -> None:
        languages = command.languages or (session.language,) * len(command.prompt_ids)
        media = [
            self.prompt_media(lang, p)
            for lang, p in zip(languages, command.prompt_ids, strict=True)
        ]
        playback_id = uuid.uuid4().hex
        session.playback_id = playback_id
        session.playback_prompts[playback_id] = list(command.prompt_ids)
        self.record(
            session,
            EventType.PROMPT_STARTED,
            {"prompt": ",".join(command.prompt_ids), "language": ",".join(languages)},
        )
        try:
            await self.ari.play(session.channel_id, media, playback_id=playback_id)
        except AriNotFound:
            session.playback_prompts.pop(playback_id, None)  # the caller is gone
            return
        except AriError as exc:
            # The prompt cannot be played (e.g. the channel is between bridges): the caller must
            # not wait for a PlaybackFinished that will never come, so the dialogue goes on.
            log.warning("call %s: prompt %s not played: %s", session.call_id, media, exc)
            self._playback_lost(session, playback_id, "failed_to_start")
            return
        # Belt and braces: a PlaybackFinished that never arrives must not strand the caller.
        asyncio.get_running_loop().call_later(
            PLAYBACK_WATCHDOG_S, self._playback_lost, session, playback_id, "no_finish_event"
        )

    def _playback_lost(self, session: CallSession, playback_id: str, why: str) -> None:
        prompts = session.playback_prompts.pop(playback_id, None)
        if prompts is None or session.ended:
            return  # it finished normally
        if session.playback_id == playback_id:
            session.playback_id = None
        self.record(session, EventType.PROMPT_FINISHED, {"prompt": ",".join(prompts), "state": why})
        if not session.handed_off:
            task = asyncio.create_task(self.feed(session, ivr.PromptFinished()))
            task.add_done_callback(_log_task_error)

    async def _stop_playback(self, session: CallSession) -> None:
        playback_id = session.playback_id
        if playback_id is None:
            return
        session.stopped_playbacks.add(playback_id)
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_playback(playback_id)

    async def _on_playback_finished(
        self, session: CallSession, event: ari.PlaybackFinished
    ) -> None:
        prompts = session.playback_prompts.pop(event.playback_id, None)
        if prompts is None:
            return
        stopped = event.playback_id in session.stopped_playbacks
        session.stopped_playbacks.discard(event.playback_id)
        if session.playback_id == event.playback_id:
            session.playback_id = None
        state = "stopped" if stopped else event.state
        self.record(
            session, EventType.PROMPT_FINISHED, {"prompt": ",".join(prompts), "state": state}
        )
        # A stopped prompt gets no PromptFinished (the dialogue asked for the stop); "failed"
        # means the channel went away, and the hang-up reaches the dialogue on its own.
        if state == "done" and not session.handed_off:
            await self.feed(session, ivr.PromptFinished())

    async def _record_message(
        self, session: CallSession, command: ivr.RecordMessage, pending: list[ivr.Event]
    ) -> None:
        name = f"message-{session.call_id}"
        try:
            await self.ari.request(
                "POST",
                f"/channels/{session.channel_id}/record",
                params={
                    "name": name,
                    "format": "wav",
                    "maxDurationSeconds": command.max_seconds,
                    "maxSilenceSeconds": 10,
                    "beep": "true" if command.beep else "false",
                    "terminateOn": "#",
                    "ifExists": "overwrite",
                },
            )
            session.recording = name
        except AriError as exc:
            pending.append(ivr.ActionFailed(f"recording failed: {exc}"))

    async def _on_recording_done(
        self, session: CallSession, event: ari.RecordingFinished | ari.RecordingFailed
    ) -> None:
        if event.name != session.recording:
            return
        session.recording = None
        if isinstance(event, ari.RecordingFailed):
            await self.feed(session, ivr.ActionFailed(f"recording failed: {event.cause}"))
            return
        duration = float(event.duration or 0)
        self.record(
            session, EventType.MESSAGE_RECORDED, {"recording": event.name, "duration_s": duration}
        )
        if self.on_message_recorded is not None:
            task = asyncio.create_task(self.on_message_recorded(session, event.name))
            task.add_done_callback(_log_task_error)
        await self.feed(session, ivr.RecordingFinished(duration))

    # Ending -----------------------------------------------------------------------------------
    def _on_hangup_request(self, session: CallSession, event: ari.ChannelHangupRequest) -> None:
        if session.hangup_requested_by is None:
            session.hangup_requested_by = "caller"
        if event.cause is not None:
            session.hangup_cause = event.cause

    async def _on_channel_gone(
        self, session: CallSession, event: ari.StasisEnd | ari.ChannelDestroyed
    ) -> None:
        # With subscribeAll=false Asterisk sends nothing after StasisEnd (measured), so the
        # channel leaving our app is the end of the call; the cause came with the hang-up request.
        self.sessions.pop(session.channel_id, None)
        cause = event.cause if isinstance(event, ari.ChannelDestroyed) else session.hangup_cause
        if session.hangup_requested_by == "caller":
            await self.feed(session, ivr.CallerHungUp())
        if session.handed_off:
            with contextlib.suppress(Exception):
                await self.handoff.caller_gone(session)
        self.finish(session, cause, CAUSE_TEXT.get(cause, ""))
        if not self.sessions:
            self._drained.set()

    def finish(self, session: CallSession, cause: int, cause_txt: str) -> None:
        """Write ``call.ended`` once, and release the session's timers."""
        if session.ended:
            return
        session.ended = True
        for handle in session.timers.values():
            handle.cancel()
        session.timers.clear()
        self.record(
            session,
            EventType.CALL_ENDED,
            {
                "hangup_by": session.extra.get("hangup_by")
                or session.hangup_requested_by
                or "caller",
                "cause": cause,
                "cause_txt": cause_txt,
                "answered": session.answered,
            },
        )

    async def hang_up(self, session: CallSession, reason: str) -> None:
        if session.hangup_requested_by is None:
            session.hangup_requested_by = "system"
        with contextlib.suppress(AriNotFound):
            await self.ari.hangup(session.channel_id, reason=reason)

    # Start-up and shut-down -------------------------------------------------------------------
    async def reconcile(self) -> None:
        """After a (re)connect: finish the records of calls whose channel is gone, and hang up
        channels left in our app by an earlier run (their call id, stored on the channel, lets
        us finish their record); bridges left behind are destroyed."""
        try:
            channels = await self.ari.list_channels()
            bridges = await self.ari.list_bridges()
        except AriError as exc:
            log.warning("reconcile skipped: %s", exc)
            return
        ours = [ch for ch in channels if self._in_our_app(ch)]
        live = {ch["id"] for ch in ours}
        for channel_id, session in list(self.sessions.items()):
            if channel_id not in live:
                # Destroyed while we were disconnected (e.g. Asterisk restarted).
                session.hangup_requested_by = session.hangup_requested_by or "system"
                self.sessions.pop(channel_id, None)
                if session.handed_off:
                    with contextlib.suppress(Exception):
                        await self.handoff.caller_gone(session)
                self.finish(session, 0, "channel lost while the ARI connection was down")
        orphans = [
            ch for ch in ours if ch["id"] not in self.sessions and not self.handoff.owns(ch["id"])
        ]
        for channel in orphans:
            call_id = await self._adopt_call_id(channel["id"])
            self.events.append(
                call_id,
                EventType.SERVICE_RECONCILED,
                {"channel": channel["id"], "action": "hung_up_orphan"},
            )
            self.events.append(
                call_id,
                EventType.CALL_ENDED,
                {"hangup_by": "system", "cause": 0, "cause_txt": "orphan after restart"},
            )
            with contextlib.suppress(AriNotFound):
                await self.ari.hangup(channel["id"], reason="normal")
        busy = {b for s in self.sessions.values() for b in s.extra.get("bridges", ())}
        stale = [b for b in bridges if b["id"] not in busy and not self.handoff.owns(b["id"])]
        for bridge in stale:
            with contextlib.suppress(AriNotFound):
                await self.ari.destroy_bridge(bridge["id"])
        if orphans or stale:
            log.info("reconciled: %d orphan channels, %d bridges cleaned", len(orphans), len(stale))

    def _in_our_app(self, channel: dict) -> bool:
        dialplan = channel.get("dialplan") or {}
        app_data = str(dialplan.get("app_data", ""))
        return dialplan.get("app_name") == "Stasis" and app_data.startswith(self.ari.app)

    async def _adopt_call_id(self, channel_id: str) -> str:
        """The call id a previous run stored on the channel (its record continues), else new."""
        try:
            call_id = await self.ari.get_variable(channel_id, CALL_ID_VARIABLE)
        except AriError:
            call_id = ""
        if call_id:
            await self.events.resume_call(call_id)
            return call_id
        return new_call_id()

    async def shutdown(self, grace: float = 3.0) -> None:
        """Graceful stop: hang up calls still in the app, each with a complete record."""
        for session in list(self.sessions.values()):
            await self.hang_up(session, "normal")
        if self.sessions:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace):
                    await self._drained.wait()  # their StasisEnd events arrive on the socket
        for session in list(self.sessions.values()):
            self.finish(session, 0, "service stopped")
        self.sessions.clear()


def new_survey(session: CallSession) -> SurveyRun:
    return SurveyRun(session.call_id, answered=True)


async def _never_called_before(caller_key: str, call_id: str) -> bool:
    return False


def _noop(_digit: str) -> None:
    return None


def _log_task_error(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("IVR task failed", exc_info=task.exception())
