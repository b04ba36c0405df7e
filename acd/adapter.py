"""The ACD adapter: carries out the ACD core's decisions on Asterisk through ARI.

Theory of operation
-------------------
The decisions are the core's (``acd.core.Acd``): who waits, who is offered which call, when a
ring times out, when wrap-up ends. This module only turns what happens into the core's inputs
and executes its commands; it holds no routing logic of its own.

Inputs come from three places: the IVR (``enter_queue``, ``caller_gone``: this class is the call
controller's ``Handoff``), ARI events of the legs we originate, and the API (seat login, ready,
pause, logout; transfers and conferences). Every input goes through ``_apply``, which calls the
core with the loop's monotonic time, writes the core's ``Log`` commands to the call-event log at
once, executes the other commands in order (per call, under that call's lock, so a
``CancelOffer`` can never overtake the ``Offer`` it cancels), and re-arms one timer at the core's
next deadline: nothing polls.

A waiting caller hears music on hold on their own channel; announcements of position and
estimated wait stop the music, play, and start it again. An offer originates the seat's
endpoint into our app with a channel id chosen here and bound to the caller's event lane, so
the caller's and the seat's events are handled in one order. The seat leg enters Stasis when the
seat answers (``offer_answered``); a leg that dies before that is a failed offer whose cause
says why (busy, rejected, no answer). ``Connect`` puts both legs in a fresh mixing bridge (one
per conversation segment, so a transferred call gets a new bridge and a new recording). When
the seat hangs up first, the caller stays in the app for the satisfaction survey; when the
caller hangs up first, the seat leg is hung up.

Every leg we originate is a ``Leg`` with a kind:

``offer``
    a seat rung by the core (also the seat reserved for a callback);
``callback``
    the caller dialled back through the outbound route (``callback_dial``, e.g.
    ``PJSIP/{number}@carrier``);
``consult``
    the target of a consultative transfer (a seat or a number), talking with the first seat in
    a second bridge while the caller hears music on hold outside any bridge;
``conference``
    a third party (an interpreter) in the call's own mixing bridge;
``external``
    a number the call was transferred to through the partner trunk (``transfer_dial``);
``workorder``
    a leg of a work-order callback (``call_back``): the seat, then the caller.

Callback keeping the place. The caller pressed 1 (``callback_requested``) and hung up; the
``QueuedCall`` stays here with the caller's number in memory only (``CallSession`` is never
stored) until the callback connects or finally fails. ``DialCallback`` rings the reserved seat
first; when the seat answers it hears hold music while the caller is dialled; when the caller
answers, ``callback_result(ok=True)`` makes the core emit ``Connect``. Any failure on the way
(seat does not answer, caller busy, no route) hangs up both legs and reports
``callback_result(ok=False)``: the core retries later and logs ``callback.failed``.

Transfers. Blind to a queue or a seat is the core's ``transfer_to_queue``/``transfer_to_seat``:
the first seat's leg is hung up (the core puts the seat in wrap-up and logs
``queue.transferred``), the bridge is destroyed and the caller hears music on hold until the
core connects the next seat. Consultative: the caller goes on hold, the first seat moves to a
consultation bridge and the target is dialled into it; *complete* hangs up the first seat and
hands the call over (to a seat: ``transfer_to_seat``, and when the core offers that seat the
call, the consultation leg already answered is adopted instead of ringing the seat again);
*cancel* (or the target hanging up or not answering) puts the caller back with the first seat.
To a number the call leaves the core (``call_completed`` by the seat, ``queue.transferred`` with
``to_number``) and the caller is bridged with the external leg. The core does not reserve a seat
that is being consulted or conferenced in (it has no input for that): see ``transfer``.

Work-order callbacks (工单回拨, ``call_back``). A handler asks for one on an order: a direct
call outside the queues, so the core never sees it; the seat is paused with the reason "回拨"
meanwhile (so the core offers it no queue call) and made ready again afterwards if it was free
before. The seat's phone rings first; once it answers it hears hold music while the caller is
dialled through ``callback_dial``; both are put in a mixing bridge and recorded like any
conversation, under the call id ``workorder:<order id>`` (``callback.placed`` ... ``call.ended``
in the event log). The outcome goes to ``report(order_id, outcome)``: ``answered``, or
``seat_no_answer``, ``seat_busy``, ``no_route``, ``no_answer``, ``busy``, ``seat_hung_up``,
``error``. Either party hanging up ends the call: the other leg and the bridge go too.

Partner trunks (110, 12345: ``integrations.trunks``). A transfer to ``number:<partner id>``
of a partner with a ``transfer_uri`` goes through that partner's own trunk
(``PJSIP/<endpoint>/<transfer_uri>``), the INVITE carrying our headers (our work-order number,
else the call id; the partner's own case id when the call came from them; the original caller;
a summary), and is logged as ``partner.transferred``. The IVR's ``transfer`` node (12345 in
menu 5, the emergency key to 110) is ``transfer_out``: the caller hears hold music while the
partner is dialled, is bridged with it when it answers, and goes back to the IVR's
``on_failure`` when it does not. A transferred-in call waits in its partner's queue
(``acd.wiring.partner_queues``); when no seat answers in time the core overflows it, keeps a
callback (``on_max_wait: callback``), or gives it back (``message``), which here becomes a
transfer back through the partner's trunk (``back_to_partner``): each logged ``partner.fallback``.

What it must not do: decide anything the core decides, or lose a leg: every leg is either
bridged, hung up by us, or reported to the core as failed or completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine, select

from acd import model as acd
from acd.config import AcdConfig, SeatConfig
from acd.core import Acd
from acd.wiring import partner_queues
from hotline.ari import AriClient, AriError, AriNotFound
from hotline.ari import events as ari
from hotline.events.log import CallEventLog
from hotline.events.types import EventType
from hotline.privacy import mask_number
from hotline.prompts import announcement
from integrations import trunks
from integrations.config import Partner
from ivr import interpreter as ivr
from ivr.app import CallController, CallSession, HandoffFailed, NoHandoff, new_survey
from recordings.service import RecordingService
from recordings.tap import is_tap_channel

log = logging.getLogger(__name__)

# Q.850 cause of a seat leg that died before answering → the core's reason.
OFFER_FAILURE_BY_CAUSE: dict[int, acd.OfferFailure] = {
    17: "busy",
    21: "rejected",
    18: "no_answer",
    19: "no_answer",
    16: "no_answer",  # cancelled by the originate timeout
}

LegState = Literal["ringing", "answered", "connected", "cancelled", "ended"]
LegKind = Literal["offer", "callback", "consult", "conference", "external", "workorder"]
TargetKind = Literal["queue", "seat", "number"]
TransferMode = Literal["blind", "consult"]
_TARGET = re.compile(r"^(queue|seat|number):(\S{1,64})$")
_NUMBER = re.compile(r"^\+?[0-9]{2,20}$")
# How long the core gives a consultation or conference target to answer before we give up.
PARTY_RING_S = 30
# A conversation's end waits at most this long for its recording and taps to be set up.
MEDIA_SETUP_WAIT_S = 5.0
# The survey waits at most this long for the caller to leave the destroyed call bridge.
SURVEY_BRIDGE_WAIT_S = 1.0
# A work-order callback: how long the caller's phone may ring.
WORKORDER_CALLEE_RING_S = 45


@dataclass
class SeatLeg:
    """A channel we originated for a call (a seat, the called-back caller, a third party)."""

    channel_id: str
    call_id: str
    seat_id: str  # the seat rung, or "" for a leg to a number
    state: LegState = "ringing"
    kind: LegKind = "offer"
    target: str = ""  # "seat:<id>" / "number:<digits>" for consult, conference, external legs


@dataclass(frozen=True)
class Target:
    """Where a transfer or conference goes: ``queue:<name>``, ``seat:<id>``, ``number:<digits>``."""

    kind: TargetKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"

    @property
    def loggable(self) -> str:
        """Service numbers (12345, 110) in clear; a private number masked."""
        if self.kind == "number" and len(self.value) > 6:
            return f"number:{mask_number(self.value)}"
        return str(self)


class TransferError(Exception):
    """A transfer or conference request that cannot be done: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_target(text: object) -> Target:
    match = _TARGET.match(text) if isinstance(text, str) else None
    if match is None:
        raise TransferError(
            400,
            "bad_target",
            "转接目标格式错误: 'to' must be queue:<name>, seat:<id> or number:<digits>",
        )
    kind, value = match.group(1), match.group(2)
    if kind == "number" and not _NUMBER.match(value):
        raise TransferError(400, "bad_target", f"号码格式错误: {value!r} is not a phone number")
    return Target(kind, value)  # type: ignore[arg-type]


@dataclass
class QueuedCall:
    session: CallSession
    queue: str
    topic: str
    legs: dict[str, SeatLeg] = field(default_factory=dict)  # offer legs by seat id
    bridge_id: str | None = None
    connected_seat: str | None = None
    connected_at: float | None = None
    callback_kept: bool = False  # the caller hung up, keeping their place for a callback
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    caller_channel: str = ""  # the caller's live leg: the original one, or the callback leg
    caller_masked: str = ""
    bridge_seq: int = 0
    dialing: bool = False  # a callback is being placed (seat reserved, then the caller dialled)
    callback_leg: SeatLeg | None = None
    consult: SeatLeg | None = None
    consult_bridge: str | None = None
    conference: dict[str, SeatLeg] = field(default_factory=dict)  # by channel id
    adopt: dict[str, SeatLeg] = field(default_factory=dict)  # seat id → answered consult leg
    external: SeatLeg | None = None  # transferred out to a number: the core forgot the call
    ivr_transfer: bool = False  # the IVR's transfer node: a failure goes back to the IVR
    media_setup: asyncio.Task[None] | None = field(default=None, repr=False)  # recording, taps

    def __post_init__(self) -> None:
        self.caller_channel = self.caller_channel or self.session.channel_id
        self.caller_masked = self.caller_masked or self.session.caller_masked

    def new_bridge_id(self, prefix: str) -> str:
        self.bridge_seq += 1
        return f"{prefix}-{self.session.call_id}-{self.bridge_seq}"

    def forget_number(self) -> None:
        """The clear number is needed only to dial the callback: drop it as soon as possible."""
        self.session.caller_number = ""


@dataclass
class DirectCall:
    """A work-order callback in progress: two legs we originate, outside the core's queues."""

    call_id: str
    order_id: str
    seat_id: str
    legs: list[SeatLeg] = field(default_factory=list)
    # channel id → True when the leg answered (entered Stasis), False when it ended first.
    answers: dict[str, asyncio.Future[bool]] = field(default_factory=dict)
    causes: dict[str, int] = field(default_factory=dict)  # channel id → Q.850 cause at its end
    bridge_id: str | None = None
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # a leg ended


class AcdService:
    """The controller's ``Handoff`` for queues; plus transfers, conferences and callbacks."""

    def __init__(
        self,
        ari_client: AriClient,
        controller: CallController,
        event_log: CallEventLog,
        config: AcdConfig,
        *,
        engine: Engine | None = None,
        recordings: RecordingService | None = None,
        recordings_dir: Path | None = None,
        endpoint: Callable[[str], str] = lambda seat_id: f"PJSIP/{seat_id}",
        moh_class: str | None = "default",
        callback_dial: str | None = None,
        transfer_dial: str | None = None,
        partners: Iterable[Partner] = (),
    ) -> None:
        # Partner trunks: their transferred-in calls get a queue of their own (see wiring).
        self.partners: dict[str, Partner] = {p.id: p for p in partners}
        config, self.partner_queue_of = partner_queues(config, self.partners.values())
        self._queue_partner = {q: pid for pid, q in self.partner_queue_of.items()}
        controller.partners = dict(self.partners)
        controller.partner_queues = dict(self.partner_queue_of)
        self.ari = ari_client
        self.engine = engine  # the seat directory, for seats added while running
        self.recordings = recordings  # recording + live transcription of connected calls
        self.recordings_dir = recordings_dir  # where Asterisk writes them (host path)
        self._recording_calls: dict[str, str] = {}  # recording name → call id
        self.controller = controller
        self.events = event_log
        self.config = config
        self.endpoint = endpoint
        self.moh_class = moh_class
        # Outbound routes, as ARI endpoints with "{number}": to callers (callbacks) and to
        # partner numbers (transfers to 12345 / 110). None = no route: callbacks fail (and are
        # retried by the core), transfers to numbers are refused with 409.
        self.callback_dial = callback_dial
        self.transfer_dial = transfer_dial
        self.fallback = NoHandoff(controller)
        self.core = Acd(config, now=self._now())
        self.calls: dict[str, QueuedCall] = {}
        self.legs: dict[str, SeatLeg] = {}  # every leg we originated, by channel id
        # Features outside this class that own Asterisk objects of live calls (supervisors'
        # lines and snoops): asked by ``owns`` so that reconciliation leaves them alone.
        self.object_owners: list[Callable[[str], bool]] = []
        # Callers whose seat hung up, by channel: the survey starts once the caller has left
        # the call's bridge (a prompt started while the bridge is being torn down can lose its
        # PlaybackFinished: the caller would sit in silence until the playback watchdog).
        self._survey_after_bridge: dict[str, tuple[QueuedCall, asyncio.TimerHandle]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._leg_causes: dict[str, int] = {}  # Q.850 cause from a leg's hang-up request
        self._direct: dict[str, DirectCall] = {}  # work-order callbacks by call id
        ari_client.add_handler(self.handle)

    def configure_outbound(
        self,
        *,
        callback_dial: str | None,
        transfer_dial: str | None,
        partners: Iterable[Partner] | None = None,
    ) -> None:
        self.callback_dial = callback_dial
        self.transfer_dial = transfer_dial
        if partners is not None and not self.partners:
            # Transfers out only: queues for calls in are fixed when the core is built.
            self.partners = {p.id: p for p in partners}
            self.controller.partners = dict(self.partners)

    # Clock and core inputs ------------------------------------------------------------------
    @staticmethod
    def _now() -> float:
        return time.monotonic()  # the clock asyncio's loop.time() and call_at use

    async def _apply(self, method: str, *args: Any, **kwargs: Any) -> list[acd.Command]:
        """Give the core one input, log and execute its commands, re-arm the timer."""
        try:
            commands = getattr(self.core, method)(*args, now=self._now(), **kwargs)
        except acd.AcdError as exc:
            log.warning("ACD refused %s%s: %s", method, args, exc)
            raise
        await self._execute(commands)
        self._rearm()
        return commands

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.next_deadline()
        if deadline is not None:
            loop = asyncio.get_event_loop()
            self._timer = loop.call_at(max(deadline, loop.time()), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.create_task(self._tick())
        task.add_done_callback(_log_task_error)

    async def _tick(self) -> None:
        result = self.core.tick(self._now())
        await self._execute(result.commands)
        self._rearm()

    # Command execution ----------------------------------------------------------------------
    async def _execute(self, commands: list[acd.Command]) -> None:
        for command in commands:
            if isinstance(command, acd.Log):
                self._log(command)
                continue
            call = self.calls.get(command.call_id)
            if call is None:
                # The caller is gone (or kept a callback): only seat legs may need cleaning.
                if isinstance(command, acd.CancelOffer):
                    await self._cancel_offer(None, command)
                elif isinstance(command, acd.Offer):
                    await self._apply_soon("offer_failed", command.call_id, command.seat_id,
                                           why="error")  # fmt: skip
                elif isinstance(command, acd.DialCallback):
                    await self._apply_soon("callback_result", command.call_id, ok=False)
                continue
            async with call.lock:
                await self._run(call, command)

    async def _run(self, call: QueuedCall, command: acd.Command) -> None:
        match command:
            case acd.Offer():
                await self._offer(call, command)
            case acd.CancelOffer():
                await self._cancel_offer(call, command)
            case acd.Connect():
                await self._connect(call, command)
            case acd.Announce(position=position, ewt_seconds=ewt):
                await self._announce(call, announcement(position, ewt))
            case acd.OfferCallbackChoice():
                call.session.extra["dtmf_sink"] = lambda digit: self._callback_choice(call, digit)
                await self._announce(call, ["queue_callback_offer"])
            case acd.DialCallback():
                await self._dial_callback(call, command)
            case acd.LeaveQueue(reason=reason, action=action):
                await self._leave(call, reason, action)
            case acd.Overflowed():
                call.queue = command.to_queue
                partner_id = self._queue_partner.get(command.from_queue)
                if partner_id is not None:
                    self.events.append(
                        call.session.call_id,
                        EventType.PARTNER_FALLBACK,
                        {"partner": partner_id, "fallback": "overflow",
                         "queue": command.from_queue, "to_queue": command.to_queue,
                         "result": "overflowed"},
                    )  # fmt: skip

    def _log(self, command: acd.Log) -> None:
        data = {k: v for k, v in command.data.items() if k != "at"}  # core-relative time
        if command.type.startswith("seat."):
            self.events.append(f"seat:{data.get('seat_id', '?')}", command.type, data)
        elif "call_id" in data:
            self.events.append(str(data.pop("call_id")), command.type, data)
        else:
            log.warning("ACD log without call or seat: %s %s", command.type, data)

    async def _apply_soon(self, method: str, *args: Any, **kwargs: Any) -> None:
        """An input caused by executing a command: after the current commands, not inside."""

        async def later() -> None:
            with contextlib.suppress(acd.AcdError):
                await self._apply(method, *args, **kwargs)

        asyncio.get_running_loop().call_soon(lambda: asyncio.create_task(later()))

    # Legs ---------------------------------------------------------------------------------------
    async def _originate(
        self,
        call: QueuedCall,
        leg: SeatLeg,
        endpoint: str,
        *,
        app_args: str,
        caller_id: str,
        ring_s: float,
        variables: dict[str, str] | None = None,
    ) -> bool:
        """Dial a leg into our app on the call's event lane; False (leg forgotten) on failure.
        ``variables``: extra channel variables (``PJSIP_HEADER(add,...)`` for a partner)."""
        self.legs[leg.channel_id] = leg
        # The leg's events go to the caller's lane: one order for the whole call.
        self.ari.bind_key(leg.channel_id, call.session.channel_id)
        try:
            await self.ari.originate(
                endpoint,
                app_args=app_args,
                channel_id=leg.channel_id,
                caller_id=caller_id,
                timeout=int(ring_s),
                variables={"HOTLINE_CALL_ID": call.session.call_id, **(variables or {})},
            )
        except AriError as exc:
            log.warning("call %s: dialling %s failed: %s", call.session.call_id, endpoint, exc)
            self._forget_leg(leg)
            return False
        if leg.state == "cancelled":  # cancelled while the originate was in flight
            await self._hangup(leg.channel_id)
        return True

    async def _hangup(self, channel_id: str | None) -> None:
        if channel_id:
            with contextlib.suppress(AriNotFound):
                await self.ari.hangup(channel_id)

    async def _drop_leg(self, leg: SeatLeg | None, state: LegState = "ended") -> None:
        """Hang up a leg on purpose: its hang-up events then change nothing."""
        if leg is None or leg.state in ("cancelled", "ended"):
            return
        leg.state = state
        await self._hangup(leg.channel_id)

    def _forget_leg(self, leg: SeatLeg) -> None:
        self.legs.pop(leg.channel_id, None)
        call = self.calls.get(leg.call_id)
        if call is not None and leg.kind == "offer" and call.legs.get(leg.seat_id) is leg:
            del call.legs[leg.seat_id]
        self.ari.unbind_key(leg.channel_id)

    async def _destroy_bridge(self, call: QueuedCall, bridge_id: str | None) -> None:
        if bridge_id is None:
            return
        with contextlib.suppress(AriNotFound):
            await self.ari.destroy_bridge(bridge_id)
        call.session.extra.get("bridges", set()).discard(bridge_id)
        if call.bridge_id == bridge_id:
            call.bridge_id = None
        if call.consult_bridge == bridge_id:
            call.consult_bridge = None

    async def _new_bridge(self, call: QueuedCall, prefix: str, channels: list[str]) -> str:
        bridge_id = call.new_bridge_id(prefix)
        await self.ari.create_bridge(
            "mixing", bridge_id=bridge_id, name=f"{prefix} {call.session.call_id}"
        )
        call.session.extra.setdefault("bridges", set()).add(bridge_id)
        await self.ari.add_to_bridge(bridge_id, channels)
        return bridge_id

    # Offers -------------------------------------------------------------------------------------
    async def _offer(self, call: QueuedCall, command: acd.Offer) -> None:
        adopted = call.adopt.pop(command.seat_id, None)
        if adopted is not None and adopted.state == "answered":
            # Consultative transfer completed to this seat: it is already on the line.
            adopted.kind = "offer"
            call.legs[command.seat_id] = adopted
            await self._apply_soon("offer_answered", command.call_id, command.seat_id)
            return
        channel_id = f"seat-{uuid.uuid4().hex}"
        leg = SeatLeg(channel_id, command.call_id, command.seat_id)
        call.legs[command.seat_id] = leg
        caller_id = f'"12348 {call.topic}" <{call.caller_masked.replace("*", "0")}>'
        ok = await self._originate(
            call,
            leg,
            self.endpoint(command.seat_id),
            app_args=f"seat,{command.call_id},{command.seat_id}",
            caller_id=caller_id,
            ring_s=command.ring_timeout + 5,  # the core's ring timeout comes first
        )
        if not ok:
            if call.dialing:
                await self._callback_failed(call, "the reserved seat could not be dialled")
            else:
                await self._apply_soon(
                    "offer_failed", command.call_id, command.seat_id, why="error"
                )

    async def _cancel_offer(self, call: QueuedCall | None, command: acd.CancelOffer) -> None:
        leg = next(
            (
                leg
                for leg in self.legs.values()
                if leg.kind == "offer"
                and leg.call_id == command.call_id
                and leg.seat_id == command.seat_id
            ),
            None,
        )
        if call is not None and call.dialing:
            # A callback the core gave up on (its timeout): the caller's leg goes too.
            call.dialing = False
            await self._drop_leg(call.callback_leg, "cancelled")
        if leg is not None:
            await self._drop_leg(leg, "cancelled")

    async def _connect(self, call: QueuedCall, command: acd.Connect) -> None:
        leg = call.legs.get(command.seat_id)
        session = call.session
        if leg is None:
            return
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(call.caller_channel)
        if call.callback_kept:
            with contextlib.suppress(AriNotFound):
                await self.ari.stop_moh(leg.channel_id)  # the seat waited with music
        else:
            await self.controller._stop_playback(session)
        try:
            call.bridge_id = await self._new_bridge(
                call, "call", [call.caller_channel, leg.channel_id]
            )
        except AriError as exc:
            # One of the legs vanished; its hang-up event completes the call in the core.
            log.warning("call %s: bridging to %s failed: %s", command.call_id, leg.seat_id, exc)
        leg.state = "connected"
        call.connected_seat = command.seat_id
        call.connected_at = self._now()
        if call.dialing:
            call.dialing = False
            call.forget_number()  # the callback reached the caller
        # Not under the call's lock: a tap waits for its channels, and call handling never waits
        # for recording or speech-to-text.
        task = asyncio.create_task(self._record_and_transcribe(call, leg))
        task.add_done_callback(_log_task_error)
        call.media_setup = task

    async def _media_settled(self, call: QueuedCall) -> None:
        """Let the call's recording and taps finish setting up before its bridge or channels
        go. Building a tap on channels being torn down stalled Asterisk's ARI (every request
        timing out, for every call); a tap set up after ``call_ended`` would also leak."""
        task = call.media_setup
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=MEDIA_SETUP_WAIT_S)

    async def _record_and_transcribe(self, call: QueuedCall, leg: SeatLeg) -> None:
        """Both parties recorded (one mix) and each transcribed live; a failure here never
        touches the conversation, and the recording service logs what it could not do."""
        if self.recordings is None or call.bridge_id is None:
            return
        call_id = call.session.call_id
        try:
            name = await self.recordings.start_call_recording(self.ari, call.bridge_id, call_id)
            self._recording_calls[name] = call_id
            await self.recordings.tap(self.ari, call_id, call.caller_channel, "caller")
            await self.recordings.tap(self.ari, call_id, leg.channel_id, "seat")
        except Exception:
            log.exception("call %s: recording or transcription could not start", call_id)

    async def _announce(self, call: QueuedCall, prompt_ids: list[str]) -> None:
        session = call.session
        if call.connected_seat is not None or session.ended:
            return
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(session.channel_id)
        session.extra["on_prompt_done"] = lambda: self._resume_moh(call)
        await self.controller._play(session, ivr.Play(tuple(prompt_ids), interruptible=False))

    async def _resume_moh(self, call: QueuedCall) -> None:
        if call.connected_seat is None and not call.session.ended and not call.callback_kept:
            await self._start_moh(call.session.channel_id)

    async def _start_moh(self, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self.ari.start_moh(channel_id, self.moh_class)

    def _callback_choice(self, call: QueuedCall, digit: str) -> None:
        if digit != "1" or call.callback_kept:
            return
        call.session.extra.pop("dtmf_sink", None)

        async def keep_place() -> None:
            try:
                await self._apply("callback_requested", call.session.call_id)
            except acd.AcdError:
                return
            call.callback_kept = True
            async with call.lock:
                await self._announce(call, ["queue_callback_booked"])
            call.session.extra["on_prompt_done"] = lambda: self.controller.hang_up(
                call.session, "normal"
            )

        asyncio.create_task(keep_place()).add_done_callback(_log_task_error)

    # Callbacks keeping the place -------------------------------------------------------------
    async def _dial_callback(self, call: QueuedCall, command: acd.DialCallback) -> None:
        """The seat is reserved: ring it first; the caller is dialled once it answers."""
        if not call.session.caller_number or self.callback_dial is None:
            why = "no outbound route to callers" if call.session.caller_number else "no number"
            log.warning("call %s: callback impossible: %s", command.call_id, why)
            await self._apply_soon("callback_result", command.call_id, ok=False)
            return
        call.dialing = True
        queue = self.config.queue(call.queue)
        ring = queue.ring_timeout_s if queue is not None else 15.0
        await self._offer(call, acd.Offer(command.call_id, command.seat_id, ring))

    async def _dial_caller(self, call: QueuedCall, seat_leg: SeatLeg) -> None:
        """The reserved seat answered: it waits with hold music while the caller is dialled."""
        assert self.callback_dial is not None
        await self._start_moh(seat_leg.channel_id)
        leg = SeatLeg(f"cb-{uuid.uuid4().hex}", call.session.call_id, "", kind="callback",
                      target="caller")  # fmt: skip
        call.callback_leg = leg
        queue = self.config.queue(call.queue)
        service_number = call.session.dialled or "12348"
        ok = await self._originate(
            call,
            leg,
            self.callback_dial.format(number=call.session.caller_number),
            app_args=f"callback,{call.session.call_id}",
            caller_id=f'"{service_number}" <{service_number}>',
            ring_s=queue.callback_timeout_s if queue is not None else 60,
        )
        if not ok:
            await self._callback_failed(call, "the caller could not be dialled")

    async def _callback_failed(self, call: QueuedCall, why: str) -> None:
        """Hang up what is left of this attempt; the core frees the seat and retries later."""
        if not call.dialing:
            return
        log.info("call %s: callback attempt failed: %s", call.session.call_id, why)
        call.dialing = False
        await self._drop_leg(call.callback_leg, "cancelled")
        call.callback_leg = None
        for leg in list(call.legs.values()):
            await self._drop_leg(leg, "cancelled")
        await self._apply_soon("callback_result", call.session.call_id, ok=False)

    async def _on_callback_answered(self, leg: SeatLeg) -> None:
        call = self.calls.get(leg.call_id)
        if leg.state == "cancelled" or call is None or not call.dialing:
            await self._drop_leg(leg, "cancelled")
            return
        leg.state = "answered"
        call.caller_channel = leg.channel_id
        with contextlib.suppress(acd.AcdError):
            await self._apply("callback_result", leg.call_id, ok=True)

    async def _on_callback_gone(self, leg: SeatLeg, cause: int) -> None:
        previous, leg.state = leg.state, "ended"
        self._forget_leg(leg)
        call = self.calls.get(leg.call_id)
        if call is None or previous in ("cancelled", "ended"):
            return
        if call.dialing:
            async with call.lock:
                await self._callback_failed(call, f"the caller's leg ended (cause {cause})")
        elif call.caller_channel == leg.channel_id:
            await self._caller_left(call)  # the called-back caller hung up

    async def _leave(self, call: QueuedCall, reason: str, action: str) -> None:
        """The queue gives the caller back (max wait, nobody logged in): the IVR's on_failure."""
        partner = self.partners.get(self._queue_partner.get(call.queue, ""))
        if partner is not None and reason == "max_wait" and not call.callback_kept:
            await self._partner_fallback(call, partner, action)
            return
        self.calls.pop(call.session.call_id, None)
        session = call.session
        if call.callback_kept:
            call.forget_number()  # a callback that failed for good: nothing more to dial
            return
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(session.channel_id)
        session.handed_off = False
        session.extra.pop("dtmf_sink", None)
        session.extra.pop("on_prompt_done", None)
        if action == "hangup":
            await self.controller.hang_up(session, "normal")
            return
        await self.controller.feed(session, ivr.ActionFailed(f"queue {call.queue}: {reason}"))

    # Handoff interface (called by the IVR controller) ------------------------------------------
    async def enter_queue(self, session: CallSession, command: ivr.EnterQueue) -> None:
        if self.config.queue(command.queue) is None:
            raise HandoffFailed(f"unknown queue {command.queue}")
        call = QueuedCall(session=session, queue=command.queue, topic=command.topic)
        self.calls[session.call_id] = call
        await self._start_moh(session.channel_id)
        try:
            await self._apply(
                "call_arrived",
                session.call_id,
                command.queue,
                priority=command.priority,
                origin=session.extra.get("origin"),
                caller_key=session.caller_key,
            )
        except acd.AcdError as exc:
            self.calls.pop(session.call_id, None)
            raise HandoffFailed(str(exc)) from exc

    async def transfer_out(self, session: CallSession, command: ivr.TransferOut) -> None:
        """The IVR's transfer node: the caller to a partner through its trunk (hold music while
        it rings); a partner without a trunk fails at once (the flow's ``on_failure``)."""
        partner = self.partners.get(command.partner or command.number)
        dial = trunks.dial_string(partner) if partner is not None else None
        if partner is None or dial is None:
            await self.fallback.transfer_out(session, command)  # raises HandoffFailed
            return
        call_id = session.call_id
        came_from = session.extra.get("partner_call")
        back = isinstance(came_from, trunks.PartnerCall) and came_from.partner_id == partner.id
        call = QueuedCall(session=session, queue="", topic=command.summary or partner.name,
                          ivr_transfer=True)  # fmt: skip
        summary = command.summary or f"12348热线语音导航转接{partner.name}"
        variables, reference = await self._partner_variables(call, partner, summary)
        leg = SeatLeg(f"ext-{uuid.uuid4().hex}", call_id, "", kind="external",
                      target=f"number:{partner.id}")  # fmt: skip
        call.external = leg
        self.calls[call_id] = call
        await self._start_moh(session.channel_id)
        async with call.lock:
            ok = await self._originate(
                call, leg, dial, app_args=f"external,{call_id}", caller_id='"12348" <12348>',
                ring_s=PARTY_RING_S, variables=variables,
            )  # fmt: skip
        if not ok:
            self.calls.pop(call_id, None)
            with contextlib.suppress(AriNotFound):
                await self.ari.stop_moh(session.channel_id)
            raise HandoffFailed(f"partner {partner.id} could not be dialled")
        self._log_partner_transfer(
            call_id, partner, "back_to_partner" if back else "ivr", None, reference, variables
        )

    # Partner trunks ----------------------------------------------------------------------------
    def _partner_for(self, target: Target) -> Partner | None:
        """The partner a ``number:`` target names (110, 12345) when it has a transfer URI."""
        if target.kind != "number":
            return None
        partner = self.partners.get(target.value)
        return partner if partner is not None and trunks.dial_string(partner) else None

    async def _work_order(self, call_id: str) -> tuple[str, str] | None:
        """The call's work order (number, summary), if one was opened for it."""
        engine = self.engine
        if engine is None:
            return None

        def lookup() -> tuple[str, str] | None:
            from workorders.models import WorkOrderRow

            query = (
                select(WorkOrderRow.number, WorkOrderRow.summary)
                .where(WorkOrderRow.call_id == call_id)
                .order_by(WorkOrderRow.created_at.desc())
                .limit(1)
            )
            with engine.connect() as conn:
                row = conn.execute(query).first()
            return (str(row[0]), str(row[1] or "")) if row is not None else None

        try:
            return await asyncio.to_thread(lookup)
        except Exception as exc:  # no work-order table, database away: the call id will do
            log.info("call %s: work order not looked up: %r", call_id, exc)
            return None

    async def _partner_variables(
        self, call: QueuedCall, partner: Partner, summary: str | None = None
    ) -> tuple[dict[str, str], str]:
        """The header variables for a leg to ``partner``, and our reference sent in them."""
        session = call.session
        came_from = session.extra.get("partner_call")
        order = await self._work_order(session.call_id)
        reference = order[0] if order is not None else session.call_id
        if summary is None:
            parts = ["12348热线转接", call.topic or call.queue]
            if order is not None and order[1]:
                parts.append(order[1])
            elif isinstance(came_from, trunks.PartnerCall) and came_from.summary:
                parts.append(came_from.summary)
            summary = "：".join(p for p in parts if p)
        variables = trunks.outbound_variables(
            partner,
            reference=reference,
            summary=summary,
            case_id=came_from.case_id
            if isinstance(came_from, trunks.PartnerCall) and came_from.partner_id == partner.id
            else "",
            original_caller=session.caller_number,
        )
        return variables, reference

    def _log_partner_transfer(
        self,
        call_id: str,
        partner: Partner,
        mode: str,
        seat_id: str | None,
        reference: str,
        variables: dict[str, str],
    ) -> None:
        names = [k.removeprefix("PJSIP_HEADER(add,").removesuffix(")") for k in variables]
        log.info("call %s: to partner %s (%s) with headers %s", call_id, partner.id, mode, names)
        self.events.append(
            call_id,
            EventType.PARTNER_TRANSFERRED,
            {"partner": partner.id, "mode": mode, "seat_id": seat_id, "reference": reference,
             "headers": names},
        )  # fmt: skip

    async def _partner_fallback(self, call: QueuedCall, partner: Partner, action: str) -> None:
        """No seat answered a transferred-in call within the partner's ``answer_timeout_s``."""
        session = call.session
        call_id = session.call_id
        data = {"partner": partner.id, "fallback": partner.sip.fallback, "queue": call.queue,
                "after_s": partner.sip.answer_timeout_s}  # fmt: skip
        session.extra.pop("dtmf_sink", None)
        if action == "callback":
            # The core keeps the call's place and calls back (the original caller's number
            # when the partner sent it): tell the caller, then hang up.
            self.events.append(call_id, EventType.PARTNER_FALLBACK, {**data, "result": "callback"})
            call.callback_kept = True
            await self._announce(call, ["queue_callback_booked"])
            session.extra["on_prompt_done"] = lambda: self.controller.hang_up(session, "normal")
            return
        self.calls.pop(call_id, None)  # the core forgot the call
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(session.channel_id)
        if trunks.dial_string(partner) is not None:
            summary = (f"12348热线{int(partner.sip.answer_timeout_s)}秒内无坐席应答，转回"
                       f"{partner.name}")  # fmt: skip
            try:
                await self.transfer_out(
                    session, ivr.TransferOut(partner.id, partner.id, summary=summary)
                )
            except HandoffFailed as exc:
                log.warning("call %s: back to partner %s failed: %s", call_id, partner.id, exc)
            else:
                self.events.append(
                    call_id, EventType.PARTNER_FALLBACK, {**data, "result": "back_to_partner"}
                )
                return
        self.events.append(call_id, EventType.PARTNER_FALLBACK, {**data, "result": "failed"})
        session.extra["on_prompt_done"] = lambda: self.controller.hang_up(session, "normal")
        await self.controller._play(session, ivr.Play(("system_busy",), interruptible=False))

    async def book_callback(self, session: CallSession, command: ivr.BookCallback) -> None:
        await self.fallback.book_callback(session, command)

    async def caller_gone(self, session: CallSession) -> None:
        call = self.calls.get(session.call_id)
        if call is None:
            return
        if call.callback_kept and call.caller_channel == session.channel_id:
            return  # the place is kept in the core; the call record continues
        if call.caller_channel == session.channel_id:
            await self._caller_left(call)

    async def _caller_left(self, call: QueuedCall) -> None:
        """The caller's live leg (original or called back) is gone."""
        call_id = call.session.call_id
        self.calls.pop(call_id, None)
        async with call.lock:
            if call.external is not None:  # transferred out: the partner's leg goes too
                await self._media_settled(call)
                await self._drop_leg(call.external)
                await self._destroy_bridge(call, call.bridge_id)
                return
            if call.connected_seat is not None:
                await self._finish_connected(call, by="caller")
                return
        with contextlib.suppress(acd.AcdError):
            await self._apply("caller_hung_up", call_id)
        for leg in list(call.legs.values()):  # any leg still ringing goes too
            if leg.state == "ringing":
                await self._drop_leg(leg, "cancelled")
        await self._drop_parties(call)
        call.forget_number()

    async def _finish_connected(self, call: QueuedCall, *, by: Literal["caller", "seat"]) -> None:
        seat_id = call.connected_seat
        assert seat_id is not None
        leg = call.legs.get(seat_id)
        talk = self._now() - (call.connected_at or self._now())
        with contextlib.suppress(acd.AcdError):
            await self._apply("call_completed", call.session.call_id, by)
            await self._apply("aht_observed", call.queue, talk)
        await self._media_settled(call)
        await self._drop_parties(call)
        await self._destroy_bridge(call, call.bridge_id)
        if by == "caller" and leg is not None:
            await self._drop_leg(leg)
        if self.recordings is not None:
            task = asyncio.create_task(self.recordings.call_ended(call.session.call_id))
            task.add_done_callback(_log_task_error)

    async def _drop_parties(self, call: QueuedCall) -> None:
        """Consultation and conference legs end with the conversation they belong to."""
        await self._drop_leg(call.consult)
        call.consult = None
        for leg in list(call.conference.values()):
            await self._drop_leg(leg)
        call.conference.clear()
        for leg in list(call.adopt.values()):
            await self._drop_leg(leg)
        call.adopt.clear()
        await self._destroy_bridge(call, call.consult_bridge)

    # Leg events ---------------------------------------------------------------------------------
    def owns(self, object_id: str) -> bool:
        """Channels and bridges of live calls that the IVR controller must not reconcile away."""
        if object_id in self.legs:
            return True
        if any(object_id in (c.bridge_id, c.consult_bridge) for c in self.calls.values()):
            return True
        if any(object_id == d.bridge_id for d in self._direct.values()):
            return True
        if any(owner(object_id) for owner in self.object_owners):
            return True
        return is_tap_channel(object_id) and any(c.connected_seat for c in self.calls.values())

    async def handle(self, event: ari.Event) -> None:
        if isinstance(event, ari.RecordingFinished | ari.RecordingFailed):
            call_id = self._recording_calls.pop(event.name, None)
            if call_id is not None and self.recordings is not None and self.recordings_dir:
                if isinstance(event, ari.RecordingFinished):
                    task = asyncio.create_task(
                        self.recordings.store_asterisk_recording(
                            self.recordings_dir, event.name, call_id
                        )
                    )
                    task.add_done_callback(_log_task_error)
            return
        if isinstance(event, ari.PlaybackFinished):
            session = self.controller.sessions.get(event.channel_id or "")
            done = session.extra.pop("on_prompt_done", None) if session else None
            if done is not None and session is not None and session.handed_off:
                await done()
            return
        if not isinstance(event, ari.ChannelEvent):
            return
        if isinstance(event, ari.ChannelLeftBridge | ari.StasisEnd | ari.ChannelDestroyed):
            pending = self._survey_after_bridge.pop(event.channel.id, None)
            if pending is not None:
                pending[1].cancel()
                if isinstance(event, ari.ChannelLeftBridge):
                    await self._survey(pending[0])
        leg = self.legs.get(event.channel.id)
        if leg is None:
            return
        if leg.kind == "workorder":
            await self._on_direct_leg(leg, event)
            return
        if isinstance(event, ari.StasisStart):
            handler = {
                "offer": self._on_seat_answered,
                "callback": self._on_callback_answered,
                "consult": self._on_party_answered,
                "conference": self._on_party_answered,
                "external": self._on_party_answered,
            }[leg.kind]
            await handler(leg)
        elif isinstance(event, ari.StasisEnd | ari.ChannelDestroyed):
            if leg.channel_id not in self.legs:
                return  # StasisEnd and ChannelDestroyed both come: the first one counts
            cause = event.cause if isinstance(event, ari.ChannelDestroyed) else 16
            cause = self._leg_causes.pop(leg.channel_id, cause)
            if leg.kind == "offer":
                await self._on_seat_leg_gone(leg, cause)
            elif leg.kind == "callback":
                await self._on_callback_gone(leg, cause)
            else:
                await self._on_party_gone(leg, cause)
        elif isinstance(event, ari.ChannelHangupRequest) and event.cause is not None:
            self._leg_causes[leg.channel_id] = event.cause

    async def _on_seat_answered(self, leg: SeatLeg) -> None:
        call = self.calls.get(leg.call_id)
        if leg.state == "cancelled" or call is None:
            leg.state = "cancelled"
            await self._hangup(leg.channel_id)
            return
        leg.state = "answered"
        if call.dialing:
            async with call.lock:
                await self._dial_caller(call, leg)
            return
        with contextlib.suppress(acd.AcdError):
            await self._apply("offer_answered", leg.call_id, leg.seat_id)

    async def _on_seat_leg_gone(self, leg: SeatLeg, cause: int) -> None:
        previous, leg.state = leg.state, "ended"
        self._forget_leg(leg)
        call = self.calls.get(leg.call_id)
        if call is not None and call.dialing and previous in ("ringing", "answered"):
            async with call.lock:
                await self._callback_failed(call, f"the reserved seat's leg ended (cause {cause})")
        elif previous == "ringing":
            why = OFFER_FAILURE_BY_CAUSE.get(cause, "error")
            with contextlib.suppress(acd.AcdError):
                await self._apply("offer_failed", leg.call_id, leg.seat_id, why=why)
        elif previous in ("answered", "connected") and call is not None:
            async with call.lock:
                call.legs[leg.seat_id] = leg  # for _finish_connected's bookkeeping
                await self._finish_connected(call, by="seat")
                call.legs.pop(leg.seat_id, None)
            self.calls.pop(leg.call_id, None)
            if call.caller_channel != call.session.channel_id:
                await self._hangup(call.caller_channel)  # a called-back caller: no survey
            else:
                self._survey_when_out_of_bridge(call)

    def _survey_when_out_of_bridge(self, call: QueuedCall) -> None:
        """Start the survey on the caller's ChannelLeftBridge (the bridge was just destroyed),
        or after SURVEY_BRIDGE_WAIT_S if that event never comes (the caller was not in one)."""
        channel = call.session.channel_id

        def fallback() -> None:
            if self._survey_after_bridge.pop(channel, None) is not None:
                task = asyncio.create_task(self._survey(call))
                task.add_done_callback(_log_task_error)

        timer = asyncio.get_running_loop().call_later(SURVEY_BRIDGE_WAIT_S, fallback)
        self._survey_after_bridge[channel] = (call, timer)

    async def _survey(self, call: QueuedCall) -> None:
        """The seat hung up: the caller stays for the satisfaction survey (满意度评价)."""
        session = call.session
        if session.ended:
            return
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(session.channel_id)  # on hold during a consultation
        session.extra.pop("dtmf_sink", None)
        session.extra.pop("on_prompt_done", None)
        await self.controller.start_dialogue(session, new_survey(session))

    # Transfers and conferences (the agent desk's API) -----------------------------------------
    def connected_seat(self, call_id: str) -> str | None:
        """The seat on the call (for the API's check that a lawyer acts on their own call)."""
        call = self.calls.get(call_id)
        return call.connected_seat if call is not None else None

    def call_json(self, call_id: str) -> dict[str, Any]:
        call = self.calls.get(call_id)
        if call is None:
            raise TransferError(404, "unknown_call", f"没有这个通话: no live call {call_id!r}")
        came_from = call.session.extra.get("partner_call")
        return {
            "call_id": call_id,
            "queue": call.queue,
            "seat_id": call.connected_seat,
            "callback": call.callback_kept,
            "on_hold": call.consult is not None,
            "consult": _leg_json(call.consult),
            "conference": [_leg_json(leg) for leg in call.conference.values()],
            "external": _leg_json(call.external),
            "origin": call.session.extra.get("origin") or "12348",
            "partner": came_from.attached() if isinstance(came_from, trunks.PartnerCall) else None,
        }

    def _connected(self, call_id: str) -> QueuedCall:
        call = self.calls.get(call_id)
        if call is None or call.external is not None:
            raise TransferError(404, "unknown_call", f"没有这个通话: no live call {call_id!r}")
        if call.connected_seat is None:
            raise TransferError(
                409, "not_connected", f"通话尚未接通坐席: call {call_id} is not with a seat"
            )
        return call

    def _party_endpoint(self, call: QueuedCall, target: Target) -> str:
        """Where a consultation, conference or external leg is dialled."""
        if target.kind == "seat":
            if target.value == call.connected_seat:
                raise TransferError(409, "same_seat", "不能转给自己: the call is already there")
            if target.value not in self.core.seat_ids():
                raise TransferError(404, "unknown_seat", f"没有这个坐席: no seat {target.value!r}")
            state = self.core.seat_view(target.value).state
            if state is not acd.SeatState.AVAILABLE:
                raise TransferError(
                    409, "seat_unavailable",
                    f"坐席{target.value}不空闲: seat {target.value} is {state}",
                )  # fmt: skip
            return self.endpoint(target.value)
        if target.kind == "number":
            partner = self._partner_for(target)
            if partner is not None:
                return str(trunks.dial_string(partner))  # its own trunk, with our headers
            if self.transfer_dial is None:
                raise TransferError(
                    409, "no_trunk",
                    f"未配置外线中继，无法转接 {target.value}: no partner trunk is configured "
                    "for transfers to numbers",
                )  # fmt: skip
            return self.transfer_dial.format(number=target.value)
        raise TransferError(
            400, "needs_person",
            "咨询转接和三方通话需要具体的坐席或号码: consult and conference need seat:<id> or "
            "number:<digits>; use a blind transfer to a queue",
        )  # fmt: skip

    async def transfer(self, call_id: str, target: Target, mode: TransferMode) -> dict[str, Any]:
        """Blind: the call goes to the target now. Consult: the caller is put on hold and the
        seat is connected to the target; then ``transfer_complete`` or ``transfer_cancel``."""
        call = self._connected(call_id)
        if call.consult is not None:
            raise TransferError(
                409, "consult_in_progress", "正在咨询转接: finish or cancel it first"
            )
        if mode == "consult":
            return await self._consult(call, target)
        if target.kind == "number":
            self._party_endpoint(call, target)  # refuses without a trunk
            return await self._to_number(call, target, None, mode="blind")
        method = "transfer_to_queue" if target.kind == "queue" else "transfer_to_seat"
        from_queue, talk = call.queue, self._now() - (call.connected_at or self._now())
        try:
            commands = getattr(self.core, method)(call_id, target.value, now=self._now())
        except acd.UnknownQueue as exc:
            raise TransferError(404, "unknown_queue", f"没有这个队列: {exc}") from exc
        except acd.UnknownSeat as exc:
            raise TransferError(404, "unknown_seat", f"没有这个坐席: {exc}") from exc
        except acd.AcdError as exc:
            raise TransferError(409, "invalid_state", str(exc)) from exc
        if target.kind == "queue":
            call.queue = target.value
        async with call.lock:
            await self._release_first_seat(call)
            await self._start_moh(call.caller_channel)
        await self._execute(commands)
        self._rearm()
        with contextlib.suppress(acd.AcdError):
            await self._apply("aht_observed", from_queue, talk)
        return {"call_id": call_id, "to": str(target), "mode": "blind", "status": "queued"}

    async def _release_first_seat(self, call: QueuedCall) -> None:
        """The first seat leaves the conversation (the core already put it in wrap-up)."""
        seat_id = call.connected_seat
        leg = call.legs.pop(seat_id, None) if seat_id else None
        await self._media_settled(call)
        await self._drop_leg(leg)
        await self._drop_parties(call)
        await self._destroy_bridge(call, call.bridge_id)
        call.connected_seat = None
        call.connected_at = None
        if self.recordings is not None:  # this conversation's taps end; the next has its own
            task = asyncio.create_task(self.recordings.call_ended(call.session.call_id))
            task.add_done_callback(_log_task_error)

    async def _consult(self, call: QueuedCall, target: Target) -> dict[str, Any]:
        endpoint = self._party_endpoint(call, target)
        partner = self._partner_for(target)
        variables = (await self._partner_variables(call, partner))[0] if partner else None
        seat_leg = call.legs.get(call.connected_seat or "")
        if seat_leg is None:
            raise TransferError(409, "not_connected", "坐席通话已结束: the seat's leg is gone")
        async with call.lock:
            # The caller on hold: out of the bridge, with music; the seat in a second bridge.
            await self._destroy_bridge(call, call.bridge_id)
            await self._start_moh(call.caller_channel)
            try:
                call.consult_bridge = await self._new_bridge(call, "consult", [seat_leg.channel_id])
            except AriError as exc:
                await self._unhold(call)
                raise TransferError(409, "bridge_failed", f"咨询转接失败: {exc}") from exc
            leg = SeatLeg(f"consult-{uuid.uuid4().hex}", call.session.call_id,
                          target.value if target.kind == "seat" else "", kind="consult",
                          target=str(target))  # fmt: skip
            call.consult = leg
            ok = await self._originate(
                call, leg, endpoint,
                app_args=f"consult,{call.session.call_id}",
                caller_id=f'"12348 转接 {call.connected_seat}" <12348>',
                ring_s=PARTY_RING_S, variables=variables,
            )  # fmt: skip
            if not ok:
                call.consult = None
                await self._unhold(call)
                raise TransferError(409, "dial_failed", f"无法呼叫 {target.loggable}")
        log.info("call %s: consultation with %s started by %s", call.session.call_id,
                 target.loggable, call.connected_seat)  # fmt: skip
        self.events.append(
            call.session.call_id,
            EventType.TRANSFER_CONSULT_STARTED,
            {"seat_id": call.connected_seat, "to": target.loggable},
        )
        return {"call_id": call.session.call_id, "to": str(target), "mode": "consult",
                "status": "ringing"}  # fmt: skip

    async def _unhold(self, call: QueuedCall) -> None:
        """Back to caller and first seat in one bridge (consultation cancelled or failed)."""
        await self._destroy_bridge(call, call.consult_bridge)
        seat_leg = call.legs.get(call.connected_seat or "")
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(call.caller_channel)
        if seat_leg is None:
            return
        try:
            call.bridge_id = await self._new_bridge(
                call, "call", [call.caller_channel, seat_leg.channel_id]
            )
        except AriError as exc:
            log.warning("call %s: could not rejoin caller and seat: %s", call.session.call_id, exc)
            return
        if self.recordings is not None and call.bridge_id is not None:
            with contextlib.suppress(Exception):
                name = await self.recordings.start_call_recording(
                    self.ari, call.bridge_id, call.session.call_id
                )
                self._recording_calls[name] = call.session.call_id

    async def transfer_complete(self, call_id: str) -> dict[str, Any]:
        call = self._connected(call_id)
        leg = call.consult
        if leg is None:
            raise TransferError(
                409, "no_consult", "没有进行中的咨询转接: no consultation to complete"
            )
        if leg.state != "answered":
            raise TransferError(
                409, "not_answered", "转接目标尚未接听: the target has not answered"
            )
        target = parse_target(leg.target)
        if target.kind == "number":
            return await self._to_number(call, target, leg, mode="consult")
        from_queue, talk = call.queue, self._now() - (call.connected_at or self._now())
        try:
            commands = self.core.transfer_to_seat(call_id, target.value, now=self._now())
        except acd.AcdError as exc:
            raise TransferError(409, "invalid_state", str(exc)) from exc
        async with call.lock:
            call.consult = None  # not dropped with the first seat: adopted below
            await self._release_first_seat(call)  # also destroys the consultation bridge
            call.adopt[target.value] = leg
        await self._execute(commands)
        self._rearm()
        async with call.lock:
            stale = call.adopt.pop(target.value, None)
            if stale is not None:
                # The core did not offer the call to that seat at once (it became busy): the
                # call waits for it in the queue; this consultation leg is not needed.
                await self._drop_leg(stale)
        with contextlib.suppress(acd.AcdError):
            await self._apply("aht_observed", from_queue, talk)
        return {"call_id": call_id, "to": str(target), "mode": "consult", "status": "completed"}

    async def transfer_cancel(self, call_id: str) -> dict[str, Any]:
        call = self._connected(call_id)
        if call.consult is None:
            raise TransferError(
                409, "no_consult", "没有进行中的咨询转接: no consultation to cancel"
            )
        async with call.lock:
            await self._end_consult(call, "cancelled by the seat")
        return {"call_id": call_id, "mode": "consult", "status": "cancelled"}

    async def _end_consult(self, call: QueuedCall, why: str) -> None:
        leg, call.consult = call.consult, None
        await self._drop_leg(leg)
        await self._unhold(call)
        log.info("call %s: consultation ended: %s", call.session.call_id, why)
        self.events.append(call.session.call_id, EventType.TRANSFER_CONSULT_ENDED, {"why": why})

    async def _to_number(
        self, call: QueuedCall, target: Target, answered: SeatLeg | None, *, mode: str
    ) -> dict[str, Any]:
        """The call leaves the ACD for a partner number (12345, 110) through the trunk."""
        endpoint = self._party_endpoint(call, target)  # refuses without a route
        partner = self._partner_for(target)
        variables: dict[str, str] | None = None
        call_id = call.session.call_id
        seat_id = call.connected_seat
        if partner is not None:
            # Consultative: the same headers already went with the consultation's INVITE.
            variables, reference = await self._partner_variables(call, partner)
            self._log_partner_transfer(call_id, partner, mode, seat_id, reference, variables)
        talk = self._now() - (call.connected_at or self._now())
        self.events.append(
            call_id,
            "queue.transferred",
            {"from_queue": call.queue, "to_number": target.loggable.removeprefix("number:"),
             "seat_id": seat_id, "mode": mode},
        )  # fmt: skip
        async with call.lock:
            if answered is not None:
                call.consult = None
            await self._release_first_seat(call)
            await self._destroy_bridge(call, call.consult_bridge)
            if answered is not None:
                answered.kind = "external"
                call.external = answered
                await self._join_external(call, answered)
            else:
                await self._start_moh(call.caller_channel)
                leg = SeatLeg(f"ext-{uuid.uuid4().hex}", call_id, "", kind="external",
                              target=str(target))  # fmt: skip
                call.external = leg
                ok = await self._originate(
                    call, leg, endpoint,
                    app_args=f"external,{call_id}", caller_id='"12348" <12348>',
                    ring_s=PARTY_RING_S, variables=variables,
                )  # fmt: skip
                if not ok:
                    self.calls.pop(call_id, None)
                    await self._hang_up_caller(call)
        with contextlib.suppress(acd.AcdError):
            await self._apply("call_completed", call_id, "seat")
            await self._apply("aht_observed", call.queue, talk)
        return {"call_id": call_id, "to": str(target), "mode": mode,
                "status": "completed" if answered is not None else "ringing"}  # fmt: skip

    async def _hang_up_caller(self, call: QueuedCall) -> None:
        if call.caller_channel == call.session.channel_id:
            await self.controller.hang_up(call.session, "normal")
        else:
            await self._hangup(call.caller_channel)  # a called-back caller

    async def _join_external(self, call: QueuedCall, leg: SeatLeg) -> None:
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(call.caller_channel)
        try:
            call.bridge_id = await self._new_bridge(
                call, "ext", [call.caller_channel, leg.channel_id]
            )
        except AriError as exc:
            log.warning("call %s: bridging to the partner failed: %s", call.session.call_id, exc)

    async def conference(self, call_id: str, target: Target) -> dict[str, Any]:
        """A third party (an interpreter) joins the call's mixing bridge when it answers."""
        call = self._connected(call_id)
        if call.consult is not None:
            raise TransferError(
                409, "consult_in_progress", "正在咨询转接: finish or cancel it first"
            )
        endpoint = self._party_endpoint(call, target)
        leg = SeatLeg(f"conf-{uuid.uuid4().hex}", call_id,
                      target.value if target.kind == "seat" else "", kind="conference",
                      target=str(target))  # fmt: skip
        async with call.lock:
            call.conference[leg.channel_id] = leg
            ok = await self._originate(
                call, leg, endpoint,
                app_args=f"conference,{call_id}",
                caller_id=f'"12348 三方通话 {call.connected_seat}" <12348>',
                ring_s=PARTY_RING_S,
            )  # fmt: skip
            if not ok:
                call.conference.pop(leg.channel_id, None)
                raise TransferError(409, "dial_failed", f"无法呼叫 {target.loggable}")
        log.info("call %s: %s invited to a three-way call by %s", call_id, target.loggable,
                 call.connected_seat)  # fmt: skip
        self.events.append(
            call_id,
            EventType.CONFERENCE_INVITED,
            {"seat_id": call.connected_seat, "to": target.loggable},
        )
        return {"call_id": call_id, "to": str(target), "mode": "conference", "status": "ringing",
                "leg": leg.channel_id}  # fmt: skip

    async def _on_party_answered(self, leg: SeatLeg) -> None:
        call = self.calls.get(leg.call_id)
        if leg.state == "cancelled" or call is None:
            leg.state = "cancelled"
            await self._hangup(leg.channel_id)
            return
        leg.state = "answered"
        async with call.lock:
            if leg.kind == "consult" and call.consult is leg and call.consult_bridge:
                try:
                    await self.ari.add_to_bridge(call.consult_bridge, [leg.channel_id])
                except AriError as exc:
                    log.warning("call %s: consultation bridge: %s", leg.call_id, exc)
                    await self._end_consult(call, "the target could not be bridged")
            elif leg.kind == "conference" and leg.channel_id in call.conference:
                if call.bridge_id is None:
                    await self._drop_leg(leg)
                    return
                try:
                    await self.ari.add_to_bridge(call.bridge_id, [leg.channel_id])
                except AriError as exc:
                    log.warning("call %s: conference bridge: %s", leg.call_id, exc)
                    await self._drop_leg(leg)
            elif leg.kind == "external" and call.external is leg:
                await self._join_external(call, leg)
            else:
                await self._drop_leg(leg)

    async def _on_party_gone(self, leg: SeatLeg, cause: int) -> None:
        previous, leg.state = leg.state, "ended"
        self._forget_leg(leg)
        call = self.calls.get(leg.call_id)
        if call is None or previous in ("cancelled", "ended"):
            return
        async with call.lock:
            if leg.kind == "consult" and call.consult is leg:
                # Not answered, busy, or hung up: the caller goes back to the first seat.
                await self._end_consult(call, f"the target's leg ended (cause {cause})")
            elif leg.kind == "conference":
                call.conference.pop(leg.channel_id, None)
            elif leg.kind == "external" and call.external is leg:
                self.calls.pop(leg.call_id, None)
                await self._destroy_bridge(call, call.bridge_id)
                if not (call.ivr_transfer and previous == "ringing"):
                    await self._hang_up_caller(call)
        if leg.kind == "external" and call.ivr_transfer and previous == "ringing":
            await self._ivr_transfer_failed(call, cause)

    async def _ivr_transfer_failed(self, call: QueuedCall, cause: int) -> None:
        """The partner did not answer the IVR's transfer: the flow's ``on_failure`` goes on."""
        session = call.session
        if session.ended:
            return
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(session.channel_id)
        session.handed_off = False
        await self.controller.feed(
            session, ivr.ActionFailed(f"partner leg ended before answering (cause {cause})")
        )

    # Work-order callbacks (工单回拨) --------------------------------------------------
    async def call_back(
        self,
        order_id: str,
        seat_id: str,
        number: str,
        report: Callable[[str, str], Awaitable[Any]],
    ) -> None:
        """Ring ``seat_id``, then dial ``number`` and bridge them; ``report(order_id, outcome)``
        once (see the module docstring). Returns when the call is over (or failed)."""
        call_id = f"workorder:{order_id}"
        outcome: str | None = None
        if self.callback_dial is None:
            outcome = "no_route"
        elif seat_id not in self.core.seat_ids():
            outcome = "unknown_seat"
        elif call_id in self._direct or any(d.seat_id == seat_id for d in self._direct.values()):
            outcome = "seat_busy"
        else:
            state = self.core.seat_view(seat_id).state
            if state in (acd.SeatState.OFFERED, acd.SeatState.ON_CALL):
                outcome = "seat_busy"
        if outcome is not None:
            log.info("work order %s: callback not placed: %s", order_id, outcome)
            await report(order_id, outcome)
            return
        assert self.callback_dial is not None
        direct = DirectCall(call_id, order_id, seat_id)
        self._direct[call_id] = direct
        resume = await self._hold_seat(seat_id)
        reported = False
        try:
            if self.events.last_seq(call_id) == 0:
                await self.events.resume_call(call_id)  # the order's own events may be there
            self.events.append(
                call_id,
                EventType.CALLBACK_PLACED,
                {"seat_id": seat_id, "attempt": 1, "order_id": order_id, "origin": "workorder"},
            )
            seat = await self._direct_leg(
                direct, self.endpoint(seat_id), seat_id, '"12348 工单回拨" <12348>', PARTY_RING_S
            )
            if seat is None:
                outcome = "seat_no_answer"
                return
            await self._start_moh(seat.channel_id)  # the lawyer waits while the caller rings
            callee = await self._direct_leg(
                direct, self.callback_dial.format(number=number), "", '"12348" <12348>',
                WORKORDER_CALLEE_RING_S,
            )  # fmt: skip
            if callee is None:
                cause = direct.causes.get(direct.legs[-1].channel_id, 0)
                if seat.state != "answered":
                    outcome = "seat_hung_up"
                else:
                    outcome = "busy" if cause == 17 else "no_answer"
                return
            if seat.state != "answered":
                outcome = "seat_hung_up"
                return
            with contextlib.suppress(AriNotFound):
                await self.ari.stop_moh(seat.channel_id)
            direct.bridge_id = f"wocb-{uuid.uuid4().hex[:12]}"
            await self.ari.create_bridge(
                "mixing", bridge_id=direct.bridge_id, name=f"workorder callback {order_id}"
            )
            await self.ari.add_to_bridge(direct.bridge_id, [seat.channel_id, callee.channel_id])
            log.info("work order %s: seat %s talking with the caller", order_id, seat_id)
            outcome, reported = "answered", True
            await report(order_id, "answered")
            if self.recordings is not None:
                task = asyncio.create_task(self._record_direct(direct, seat, callee))
                task.add_done_callback(_log_task_error)
            await direct.gone.wait()
        except Exception:
            log.exception("work order %s: callback failed", order_id)
            outcome = outcome if reported else "error"
        finally:
            await self._end_direct(direct, outcome or "error", resume)
            if not reported:
                log.info("work order %s: callback failed: %s", order_id, outcome or "error")
                await report(order_id, outcome or "error")

    async def _hold_seat(self, seat_id: str) -> bool:
        """Keep queue calls away from the seat; True if it must be made ready afterwards."""
        state = self.core.seat_view(seat_id).state
        if state not in (acd.SeatState.AVAILABLE, acd.SeatState.WRAP_UP):
            return False  # paused or logged out: the core offers it nothing anyway
        try:
            await self.seat_pause(seat_id, "回拨")
        except acd.AcdError:
            return False
        return True

    async def _direct_leg(
        self, direct: DirectCall, endpoint: str, seat_id: str, caller_id: str, ring_s: float
    ) -> SeatLeg | None:
        """Originate one leg and wait for it to answer; None if it did not (leg forgotten)."""
        leg = SeatLeg(f"wo-{uuid.uuid4().hex}", direct.call_id, seat_id, kind="workorder")
        answered: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        direct.legs.append(leg)
        direct.answers[leg.channel_id] = answered
        self.legs[leg.channel_id] = leg
        # Both legs on the first one's event lane: one order for the whole call.
        self.ari.bind_key(leg.channel_id, direct.legs[0].channel_id)
        try:
            await self.ari.originate(
                endpoint,
                app_args=f"workorder,{direct.call_id}",
                channel_id=leg.channel_id,
                caller_id=caller_id,
                timeout=int(ring_s),
                variables={"HOTLINE_CALL_ID": direct.call_id},
            )
        except AriError as exc:
            log.warning("%s: dialling %s failed: %s", direct.call_id, endpoint, exc)
            leg.state = "ended"
            self._forget_direct_leg(leg)
            return None
        try:
            # Asterisk gives up after ring_s; the margin only guards against a lost event.
            ok = await asyncio.wait_for(asyncio.shield(answered), ring_s + 10)
        except TimeoutError:
            ok = False
        if not ok:
            await self._drop_leg(leg, "cancelled")
            return None
        return leg

    async def _on_direct_leg(self, leg: SeatLeg, event: ari.ChannelEvent) -> None:
        direct = self._direct.get(leg.call_id)
        answered = direct.answers.get(leg.channel_id) if direct is not None else None
        if isinstance(event, ari.StasisStart):
            if leg.state == "cancelled" or answered is None or answered.done():
                await self._hangup(leg.channel_id)  # answered too late: given up on
                return
            leg.state = "answered"
            answered.set_result(True)
        elif isinstance(event, ari.StasisEnd | ari.ChannelDestroyed):
            if leg.channel_id not in self.legs:
                return  # StasisEnd and ChannelDestroyed both come: the first one counts
            cause = event.cause if isinstance(event, ari.ChannelDestroyed) else 16
            cause = self._leg_causes.pop(leg.channel_id, cause)
            leg.state = "ended"
            self._forget_direct_leg(leg)
            if direct is not None:
                direct.causes[leg.channel_id] = cause
                if answered is not None and not answered.done():
                    answered.set_result(False)
                direct.gone.set()
        elif isinstance(event, ari.ChannelHangupRequest) and event.cause is not None:
            self._leg_causes[leg.channel_id] = event.cause

    def _forget_direct_leg(self, leg: SeatLeg) -> None:
        self.legs.pop(leg.channel_id, None)
        self.ari.unbind_key(leg.channel_id)

    async def _record_direct(self, direct: DirectCall, seat: SeatLeg, callee: SeatLeg) -> None:
        """Recorded and transcribed like a queue call (the caller's and the seat's sides)."""
        assert self.recordings is not None and direct.bridge_id is not None
        try:
            name = await self.recordings.start_call_recording(
                self.ari, direct.bridge_id, direct.call_id
            )
            self._recording_calls[name] = direct.call_id
            await self.recordings.tap(self.ari, direct.call_id, callee.channel_id, "caller")
            await self.recordings.tap(self.ari, direct.call_id, seat.channel_id, "seat")
        except Exception:
            log.exception("%s: recording or transcription could not start", direct.call_id)

    async def _end_direct(self, direct: DirectCall, outcome: str, resume: bool) -> None:
        """Hang up what is left, destroy the bridge, log the end, give the seat back."""
        hangup_by = next(
            ("seat" if leg.seat_id else "caller" for leg in direct.legs if leg.state == "ended"),
            None,
        )
        for leg in direct.legs:
            await self._drop_leg(leg)
        if direct.bridge_id is not None:
            with contextlib.suppress(AriNotFound):
                await self.ari.destroy_bridge(direct.bridge_id)
            if self.recordings is not None:
                task = asyncio.create_task(self.recordings.call_ended(direct.call_id))
                task.add_done_callback(_log_task_error)
        self._direct.pop(direct.call_id, None)
        self.events.append(
            direct.call_id,
            EventType.CALL_ENDED,
            {"hangup_by": hangup_by or "system", "outcome": outcome, "origin": "workorder",
             "seat_id": direct.seat_id},
        )  # fmt: skip
        if resume:
            view = self.core.seat_view(direct.seat_id)
            if view.state is acd.SeatState.PAUSED and view.reason == "回拨":
                with contextlib.suppress(acd.AcdError):
                    await self.seat_ready(direct.seat_id)

    # Seat API ------------------------------------------------------------------------------------
    def ensure_seat(self, seat: SeatConfig) -> None:
        if seat.seat_id not in self.core.seat_ids():
            self.core.add_seat(seat)

    async def seat_login(self, seat_id: str) -> None:
        await self._apply("seat_logged_in", seat_id)

    async def seat_logout(self, seat_id: str) -> None:
        await self._apply("seat_logged_out", seat_id)

    async def seat_ready(self, seat_id: str) -> None:
        await self._apply("seat_ready", seat_id)

    async def seat_pause(self, seat_id: str, reason: str) -> None:
        await self._apply("seat_paused", seat_id, reason)

    async def wrap_up_done(self, seat_id: str) -> None:
        await self._apply("wrap_up_done", seat_id)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _leg_json(leg: SeatLeg | None) -> dict[str, Any] | None:
    if leg is None:
        return None
    return {"to": Target(*leg.target.split(":", 1)).loggable if leg.target else None,  # type: ignore[arg-type]
            "state": leg.state, "channel": leg.channel_id}  # fmt: skip


def _log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ACD task failed", exc_info=task.exception())
