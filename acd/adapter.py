"""The ACD adapter: carries out the ACD core's decisions on Asterisk through ARI.

Theory of operation
-------------------
The decisions are the core's (``acd.core.Acd``): who waits, who is offered which call, when a
ring times out, when wrap-up ends. This module only turns what happens into the core's inputs
and executes its commands; it holds no routing logic of its own.

Inputs come from three places: the IVR (``enter_queue``, ``caller_gone``: this class is the call
controller's ``Handoff``), ARI events of the seat legs, and the seat API (login, ready, pause,
logout). Every input goes through ``_apply``, which calls the core with the loop's monotonic
time, writes the core's ``Log`` commands to the call-event log at once, executes the other
commands in order (per call, under that call's lock, so a ``CancelOffer`` can never overtake the
``Offer`` it cancels), and re-arms one timer at the core's next deadline: nothing polls.

A waiting caller hears music on hold on their own channel; announcements of position and
estimated wait stop the music, play, and start it again. An offer originates the seat's
endpoint into our app with a channel id chosen here and bound to the caller's event lane, so
the caller's and the seat's events are handled in one order. The seat leg enters Stasis when the
seat answers (``offer_answered``); a leg that dies before that is a failed offer whose cause
says why (busy, rejected, no answer). ``Connect`` puts both legs in a mixing bridge. When the
seat hangs up first, the caller stays in the app for the satisfaction survey; when the caller
hangs up first, the seat leg is hung up.

What it must not do: decide anything the core decides, or lose a seat leg: every leg is either
bridged, hung up by us, or reported to the core as failed or completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from acd import model as acd
from acd.config import AcdConfig, SeatConfig
from acd.core import Acd
from hotline.ari import AriClient, AriError, AriNotFound
from hotline.ari import events as ari
from hotline.events.log import CallEventLog
from hotline.prompts import announcement
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


@dataclass
class SeatLeg:
    channel_id: str
    call_id: str
    seat_id: str
    state: LegState = "ringing"


@dataclass
class QueuedCall:
    session: CallSession
    queue: str
    topic: str
    legs: dict[str, SeatLeg] = field(default_factory=dict)  # by seat id
    bridge_id: str | None = None
    connected_seat: str | None = None
    connected_at: float | None = None
    callback_kept: bool = False  # the caller hung up, keeping their place for a callback
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


class AcdService:
    """The controller's ``Handoff`` for queues; transfers and callbacks stay with ``fallback``."""

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
    ) -> None:
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
        self.fallback = NoHandoff(controller)
        self.core = Acd(config, now=self._now())
        self.calls: dict[str, QueuedCall] = {}
        self.legs: dict[str, SeatLeg] = {}  # by seat leg channel id
        self._timer: asyncio.TimerHandle | None = None
        self._leg_causes: dict[str, int] = {}  # Q.850 cause from a seat leg's hang-up request
        ari_client.add_handler(self.handle)

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
                elif isinstance(command, acd.Offer | acd.DialCallback):
                    await self._apply_soon("offer_failed", command.call_id, command.seat_id,
                                           why="error")  # fmt: skip
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
                # No outbound trunk to callers yet: the core retries, then logs the failure.
                await self._apply_soon("callback_result", command.call_id, ok=False)
            case acd.LeaveQueue(reason=reason, action=action):
                await self._leave(call, reason, action)
            case acd.Overflowed():
                call.queue = command.to_queue

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

    # Offers -------------------------------------------------------------------------------------
    async def _offer(self, call: QueuedCall, command: acd.Offer) -> None:
        channel_id = f"seat-{uuid.uuid4().hex}"
        leg = SeatLeg(channel_id, command.call_id, command.seat_id)
        call.legs[command.seat_id] = leg
        self.legs[channel_id] = leg
        # The seat leg's events go to the caller's lane: one order for the whole call.
        self.ari.bind_key(channel_id, call.session.channel_id)
        caller_id = f'"12348 {call.topic}" <{call.session.caller_masked.replace("*", "0")}>'
        try:
            await self.ari.originate(
                self.endpoint(command.seat_id),
                app_args=f"seat,{command.call_id},{command.seat_id}",
                channel_id=channel_id,
                caller_id=caller_id,
                timeout=int(command.ring_timeout) + 5,  # the core's ring timeout comes first
                variables={"HOTLINE_CALL_ID": command.call_id},
            )
        except AriError as exc:
            log.warning("call %s: offer to %s failed: %s", command.call_id, command.seat_id, exc)
            self._forget_leg(leg)
            await self._apply_soon("offer_failed", command.call_id, command.seat_id, why="error")
            return
        if leg.state == "cancelled":  # cancelled while the originate was in flight
            with contextlib.suppress(AriNotFound):
                await self.ari.hangup(channel_id)

    async def _cancel_offer(self, call: QueuedCall | None, command: acd.CancelOffer) -> None:
        leg = next(
            (
                leg
                for leg in self.legs.values()
                if leg.call_id == command.call_id and leg.seat_id == command.seat_id
            ),
            None,
        )
        if leg is None:
            return
        leg.state = "cancelled"
        with contextlib.suppress(AriNotFound):
            await self.ari.hangup(leg.channel_id)

    def _forget_leg(self, leg: SeatLeg) -> None:
        self.legs.pop(leg.channel_id, None)
        call = self.calls.get(leg.call_id)
        if call is not None and call.legs.get(leg.seat_id) is leg:
            del call.legs[leg.seat_id]
        self.ari.unbind_key(leg.channel_id)

    async def _connect(self, call: QueuedCall, command: acd.Connect) -> None:
        leg = call.legs.get(command.seat_id)
        session = call.session
        if leg is None:
            return
        bridge_id = f"call-{command.call_id}"
        with contextlib.suppress(AriNotFound):
            await self.ari.stop_moh(session.channel_id)
        await self.controller._stop_playback(session)
        try:
            await self.ari.create_bridge(
                "mixing", bridge_id=bridge_id, name=f"call {command.call_id}"
            )
            session.extra.setdefault("bridges", set()).add(bridge_id)
            call.bridge_id = bridge_id
            await self.ari.add_to_bridge(bridge_id, [session.channel_id, leg.channel_id])
        except AriError as exc:
            # One of the legs vanished; its hang-up event completes the call in the core.
            log.warning("call %s: bridging to %s failed: %s", command.call_id, leg.seat_id, exc)
        leg.state = "connected"
        call.connected_seat = command.seat_id
        call.connected_at = self._now()
        await self._record_and_transcribe(call, leg)

    async def _record_and_transcribe(self, call: QueuedCall, leg: SeatLeg) -> None:
        """Both parties recorded (one mix) and each transcribed live; a failure here never
        touches the conversation, and the recording service logs what it could not do."""
        if self.recordings is None or call.bridge_id is None:
            return
        call_id = call.session.call_id
        try:
            name = await self.recordings.start_call_recording(self.ari, call.bridge_id, call_id)
            self._recording_calls[name] = call_id
            await self.recordings.tap(self.ari, call_id, call.session.channel_id, "caller")
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
            await self._start_moh(call.session)

    async def _start_moh(self, session: CallSession) -> None:
        with contextlib.suppress(AriNotFound):
            await self.ari.start_moh(session.channel_id, self.moh_class)

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

    async def _leave(self, call: QueuedCall, reason: str, action: str) -> None:
        """The queue gives the caller back (max wait, nobody logged in): the IVR's on_failure."""
        self.calls.pop(call.session.call_id, None)
        session = call.session
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
        await self._start_moh(session)
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
        await self.fallback.transfer_out(session, command)

    async def book_callback(self, session: CallSession, command: ivr.BookCallback) -> None:
        await self.fallback.book_callback(session, command)

    async def caller_gone(self, session: CallSession) -> None:
        call = self.calls.get(session.call_id)
        if call is None:
            return
        if call.callback_kept:
            return  # the place is kept in the core; the call record continues
        self.calls.pop(session.call_id, None)
        async with call.lock:
            if call.connected_seat is not None:
                await self._finish_connected(call, by="caller")
                return
        with contextlib.suppress(acd.AcdError):
            await self._apply("caller_hung_up", session.call_id)
        for leg in list(call.legs.values()):  # any leg still ringing goes too
            if leg.state == "ringing":
                leg.state = "cancelled"
                with contextlib.suppress(AriNotFound):
                    await self.ari.hangup(leg.channel_id)

    async def _finish_connected(self, call: QueuedCall, *, by: Literal["caller", "seat"]) -> None:
        seat_id = call.connected_seat
        assert seat_id is not None
        leg = call.legs.get(seat_id)
        talk = self._now() - (call.connected_at or self._now())
        with contextlib.suppress(acd.AcdError):
            await self._apply("call_completed", call.session.call_id, by)
            await self._apply("aht_observed", call.queue, talk)
        if call.bridge_id is not None:
            with contextlib.suppress(AriNotFound):
                await self.ari.destroy_bridge(call.bridge_id)
            call.session.extra.get("bridges", set()).discard(call.bridge_id)
        if by == "caller" and leg is not None and leg.state != "ended":
            leg.state = "ended"
            with contextlib.suppress(AriNotFound):
                await self.ari.hangup(leg.channel_id)
        if self.recordings is not None:
            task = asyncio.create_task(self.recordings.call_ended(call.session.call_id))
            task.add_done_callback(_log_task_error)

    # Seat leg events ------------------------------------------------------------------------------
    def owns(self, object_id: str) -> bool:
        """Channels and bridges of live calls that the IVR controller must not reconcile away."""
        if object_id in self.legs or any(c.bridge_id == object_id for c in self.calls.values()):
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
        leg = self.legs.get(event.channel.id)
        if leg is None:
            return
        if isinstance(event, ari.StasisStart):
            await self._on_seat_answered(leg)
        elif isinstance(event, ari.StasisEnd | ari.ChannelDestroyed):
            cause = event.cause if isinstance(event, ari.ChannelDestroyed) else 16
            await self._on_seat_leg_gone(leg, cause)
        elif isinstance(event, ari.ChannelHangupRequest) and event.cause is not None:
            self._leg_causes[leg.channel_id] = event.cause

    async def _on_seat_answered(self, leg: SeatLeg) -> None:
        if leg.state == "cancelled" or leg.call_id not in self.calls:
            with contextlib.suppress(AriNotFound):
                await self.ari.hangup(leg.channel_id)
            return
        leg.state = "answered"
        with contextlib.suppress(acd.AcdError):
            await self._apply("offer_answered", leg.call_id, leg.seat_id)

    async def _on_seat_leg_gone(self, leg: SeatLeg, cause: int) -> None:
        cause = self._leg_causes.pop(leg.channel_id, cause)
        previous, leg.state = leg.state, "ended"
        self._forget_leg(leg)
        call = self.calls.get(leg.call_id)
        if previous == "ringing":
            why = OFFER_FAILURE_BY_CAUSE.get(cause, "error")
            with contextlib.suppress(acd.AcdError):
                await self._apply("offer_failed", leg.call_id, leg.seat_id, why=why)
        elif previous in ("answered", "connected") and call is not None:
            async with call.lock:
                call.legs[leg.seat_id] = leg  # for _finish_connected's bookkeeping
                await self._finish_connected(call, by="seat")
                call.legs.pop(leg.seat_id, None)
            self.calls.pop(leg.call_id, None)
            await self._survey(call.session)

    async def _survey(self, session: CallSession) -> None:
        """The seat hung up: the caller stays for the satisfaction survey (满意度评价)."""
        if session.ended:
            return
        session.extra.pop("dtmf_sink", None)
        session.extra.pop("on_prompt_done", None)
        await self.controller.start_dialogue(session, new_survey(session))

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


def _log_task_error(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("ACD task failed", exc_info=task.exception())
