"""Call supervision on Asterisk: hold / resume for the seat, and silent monitor, whisper and
barge-in for supervisors (班长监听 / 密语 / 强插).

Theory of operation
-------------------
This module works beside the ACD adapter (``acd.adapter.AcdService``), on its public state: the
live calls (``service.calls``: the caller's channel, the seat's leg, the conversation's mixing
bridge, the call's lock) and its ARI client. It never makes a routing decision and never changes
the core's state: a held call is still the seat's call, a supervised call is still one
conversation between a caller and a seat.

Hold. The caller leaves the conversation's bridge and hears music on hold on their own channel;
the bridge (and its recording) stays with the seat. Resume puts the caller back into that same
bridge. Anything that rebuilds the conversation meanwhile (a consultation, a transfer) ends the
hold: the adapter puts the caller where they belong, and this module only closes the record
(``release_hold``). ``call.held`` and ``call.resumed`` (with ``held_s``) are logged under the
call, so handling time can count hold.

Supervision. The supervisor's phone is a SIP endpoint the supervisor owns (the seat id linked to
the supervisor's desk account): it is dialled into our app (``supervise,<call id>``) and, once
it answers, connected in one of three modes:

``monitor``
    a snoop on the seat's channel with ``spy=both`` in a private mixing bridge with the
    supervisor: the supervisor hears both parties; nobody hears the supervisor;
``whisper``
    the same snoop with ``whisper=out``: what the supervisor says goes to the seat's phone only;
``barge``
    the supervisor joins the conversation's own bridge: all three hear each other.

Changing the mode keeps the supervisor's line and rebuilds only the media. The supervision ends
when the supervisor hangs up, when either party's channel goes, when the conversation's bridge
is destroyed (a transfer), or on request. Every step is logged (``supervision.started``,
``supervision.mode_changed``, ``supervision.ended``, or ``supervision.failed``) with the
supervisor's user id: the audit trail of who listened to which call.

The snoop channel's REST reply can arrive before its StasisStart (RUNTIME.md): every channel
made here is bridged only after its StasisStart (``recordings.tap.waiter_for``). Channel ids are
chosen here (``sup-``) so the waiter is armed before the request goes out.

What it must not do: decide anything the ACD core decides, or leave a channel or bridge behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from hotline.ari import AriError, AriNotFound
from hotline.ari import events as ari
from hotline.events.types import EventType
from recordings.tap import waiter_for

if TYPE_CHECKING:
    from acd.adapter import AcdService, QueuedCall

log = logging.getLogger(__name__)

Mode = Literal["monitor", "whisper", "barge"]
MODES: tuple[Mode, ...] = ("monitor", "whisper", "barge")
PREFIX = "sup-"
SUPERVISOR_RING_S = 30  # how long the supervisor's phone may ring
STASIS_TIMEOUT_S = 5.0  # a snoop channel's StasisStart


class SupervisionError(Exception):
    """A request that cannot be done: HTTP status, code, message (like ``TransferError``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Hold:
    bridge_id: str
    caller_channel: str
    seat_id: str
    since: float
    by: str


@dataclass
class Supervising:
    """One supervisor on one call."""

    call_id: str
    supervisor: str  # the desk user id
    phone: str  # the seat id of the supervisor's phone
    mode: Mode
    channel_id: str  # the supervisor's leg
    seat_channel: str
    caller_channel: str
    call_bridge: str | None = None  # the conversation's bridge, for barge-in
    snoop_id: str | None = None
    bridge_id: str | None = None  # the private bridge (monitor, whisper)
    answered: asyncio.Future[bool] | None = None
    started_at: float = field(default_factory=time.monotonic)
    ended: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    def json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "mode": self.mode, "supervisor": self.supervisor,
                "phone": self.phone, "status": "connected" if self.bridge_id or
                self.mode == "barge" else "ringing"}  # fmt: skip


class Supervision:
    """Hold / resume and supervisor modes for the calls of one ``AcdService``."""

    def __init__(self, service: AcdService) -> None:
        self.service = service
        # A stand-in ACD (API tests) may have no ARI client: nothing to supervise then.
        self.ari: Any = getattr(service, "ari", None)
        self.events: Any = getattr(service, "events", None)
        self.holds: dict[str, Hold] = {}  # by call id
        self.sessions: dict[str, Supervising] = {}  # by call id
        self._by_channel: dict[str, Supervising] = {}  # supervisor, seat and caller channels
        if self.ari is not None:
            self.ari.add_handler(self.handle)
            service.object_owners.append(self.owns)

    def owns(self, object_id: str) -> bool:
        """The supervisors' lines, snoops and private bridges (kept by reconciliation)."""
        if object_id in self._by_channel:
            return True
        return any(object_id in (s.snoop_id, s.bridge_id) for s in self.sessions.values())

    # Helpers --------------------------------------------------------------------------------
    def _call(self, call_id: str) -> QueuedCall:
        call = getattr(self.service, "calls", {}).get(call_id)
        if call is None or call.external is not None:
            raise SupervisionError(404, "unknown_call", f"没有这个通话: no live call {call_id!r}")
        if call.connected_seat is None or call.connected_seat not in call.legs:
            raise SupervisionError(
                409, "not_connected", f"通话尚未接通坐席: call {call_id} is not with a seat"
            )
        return call

    def on_hold(self, call_id: str) -> bool:
        hold = self.holds.get(call_id)
        call = getattr(self.service, "calls", {}).get(call_id)
        return hold is not None and call is not None and call.bridge_id == hold.bridge_id

    def status(self, call_id: str) -> dict[str, Any]:
        session = self.sessions.get(call_id)
        return {"on_hold": self.on_hold(call_id),
                "supervision": session.json() if session is not None else None}  # fmt: skip

    # Hold / resume --------------------------------------------------------------------------
    async def hold(self, call_id: str, by: str) -> dict[str, Any]:
        call = self._call(call_id)
        if call.consult is not None:
            raise SupervisionError(409, "consult_in_progress", "正在咨询转接: consulting")
        if self.on_hold(call_id):
            raise SupervisionError(409, "already_on_hold", "通话已保持: the call is on hold")
        async with call.lock:
            bridge = call.bridge_id
            if bridge is None:
                raise SupervisionError(409, "not_connected", "通话没有桥接: no conversation")
            try:
                await self.ari.remove_from_bridge(bridge, call.caller_channel)
            except AriError as exc:
                raise SupervisionError(409, "hold_failed", f"保持失败: {exc}") from exc
            with contextlib.suppress(AriNotFound):
                await self.ari.start_moh(call.caller_channel, self.service.moh_class)
        seat_id = call.connected_seat or ""
        self.holds[call_id] = Hold(bridge, call.caller_channel, seat_id, time.monotonic(), by)
        self.events.append(call_id, EventType.CALL_HELD, {"seat_id": seat_id, "by": by})
        log.info("call %s: caller on hold (seat %s, by %s)", call_id, seat_id, by)
        return {"call_id": call_id, "on_hold": True}

    async def resume(self, call_id: str, by: str) -> dict[str, Any]:
        call = self._call(call_id)
        hold = self.holds.get(call_id)
        if hold is None:
            raise SupervisionError(409, "not_on_hold", "通话未保持: the call is not on hold")
        if call.bridge_id != hold.bridge_id or call.caller_channel != hold.caller_channel:
            self.release_hold(call_id, "rebuilt")  # a consultation or transfer took over
            raise SupervisionError(409, "not_on_hold", "通话已不在保持状态: the call moved on")
        async with call.lock:
            with contextlib.suppress(AriNotFound):
                await self.ari.stop_moh(call.caller_channel)
            try:
                await self.ari.add_to_bridge(hold.bridge_id, call.caller_channel)
            except AriError as exc:
                raise SupervisionError(409, "resume_failed", f"恢复失败: {exc}") from exc
        self.release_hold(call_id, "resumed", by=by)
        return {"call_id": call_id, "on_hold": False}

    def release_hold(self, call_id: str, why: str, *, by: str | None = None) -> None:
        """Close the hold record (``call.resumed`` with the seconds held), if there is one."""
        hold = self.holds.pop(call_id, None)
        if hold is None:
            return
        held = round(time.monotonic() - hold.since, 3)
        self.events.append(
            call_id,
            EventType.CALL_RESUMED,
            {"seat_id": hold.seat_id, "held_s": held, "why": why, "by": by or hold.by},
        )

    async def hang_up_seat(self, call_id: str, by: str) -> dict[str, Any]:
        """The desk's 挂断: the seat's leg is hung up, as if the lawyer put the phone down (the
        adapter then completes the call by the seat and the caller gets the survey)."""
        call = self._call(call_id)
        leg = call.legs[call.connected_seat or ""]
        if self.on_hold(call_id):
            with contextlib.suppress(AriNotFound):
                await self.ari.stop_moh(call.caller_channel)
            self.release_hold(call_id, "hung_up", by=by)
        log.info("call %s: seat %s hangs up from the desk (%s)", call_id, leg.seat_id, by)
        with contextlib.suppress(AriNotFound):
            await self.ari.hangup(leg.channel_id)
        return {"call_id": call_id, "status": "hung_up"}

    # Supervision ----------------------------------------------------------------------------
    async def supervise(
        self, call_id: str, mode: str, *, supervisor: str, phone: str
    ) -> dict[str, Any]:
        """Ring the supervisor's ``phone`` and connect it to the call in ``mode`` (or change the
        mode of this supervisor's line on the call). Returns once connected."""
        if mode not in MODES:
            raise SupervisionError(400, "bad_mode", f"mode must be one of {list(MODES)}")
        call = self._call(call_id)
        current = self.sessions.get(call_id)
        if current is not None and not current.ended:
            if current.supervisor != supervisor:
                raise SupervisionError(
                    409, "already_supervised",
                    f"该通话已由 {current.supervisor} 监听: the call is already supervised",
                )  # fmt: skip
            async with current.lock:
                if current.answered is not None and not current.answered.done():
                    raise SupervisionError(409, "ringing", "班长话机正在振铃: still ringing")
                if current.mode != mode:
                    previous = current.mode
                    await self._disconnect_media(current)
                    current.mode = mode  # type: ignore[assignment]
                    await self._connect_media(current, call)
                    self.events.append(
                        call_id, EventType.SUPERVISION_MODE_CHANGED,
                        {"seat_id": call.connected_seat, "mode": mode, "from": previous,
                         "supervisor": supervisor},
                    )  # fmt: skip
            return current.json()
        if phone in (call.connected_seat,):
            raise SupervisionError(409, "same_phone", "班长话机不能是被监听坐席: that is the seat")
        session = Supervising(
            call_id=call_id,
            supervisor=supervisor,
            phone=phone,
            mode=mode,  # type: ignore[arg-type]
            channel_id=f"{PREFIX}{uuid.uuid4().hex}",
            seat_channel=call.legs[call.connected_seat or ""].channel_id,
            caller_channel=call.caller_channel,
        )
        session.answered = asyncio.get_running_loop().create_future()
        self.sessions[call_id] = session
        for channel in (session.channel_id, session.seat_channel, session.caller_channel):
            self._by_channel[channel] = session
        waiter = waiter_for(self.ari)
        started = waiter.expect(session.channel_id)
        try:
            await self.ari.originate(
                self.service.endpoint(phone),
                app_args=f"supervise,{call_id}",
                channel_id=session.channel_id,
                caller_id=f'"12348 监听 {call.connected_seat}" <12348>',
                timeout=SUPERVISOR_RING_S,
            )
        except AriError as exc:
            waiter.cancel(session.channel_id)
            await self._end(session, "dial_failed", failed=True)
            raise SupervisionError(409, "dial_failed", f"无法呼叫班长话机 {phone}: {exc}") from exc
        try:
            done, _ = await asyncio.wait(
                {started, session.answered},
                timeout=SUPERVISOR_RING_S + 10,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel(session.channel_id)
        if started not in done or session.ended:
            await self._end(session, "no_answer", failed=True)
            raise SupervisionError(409, "no_answer", f"班长话机 {phone} 未接听: not answered")
        if not session.answered.done():
            session.answered.set_result(True)
        async with session.lock:
            try:
                call = self._call(call_id)
                await self._connect_media(session, call)
            except (SupervisionError, AriError, TimeoutError) as exc:
                await self._end(session, "connect_failed", failed=True)
                if isinstance(exc, SupervisionError):
                    raise
                raise SupervisionError(409, "connect_failed", f"监听连接失败: {exc}") from exc
        session.started_at = time.monotonic()
        self.events.append(
            call_id,
            EventType.SUPERVISION_STARTED,
            {"seat_id": call.connected_seat, "mode": mode, "supervisor": supervisor,
             "phone": phone},
        )  # fmt: skip
        log.info("call %s: %s supervises in %s mode from %s", call_id, supervisor, mode, phone)
        return session.json()

    async def stop(self, call_id: str, *, supervisor: str) -> dict[str, Any]:
        session = self.sessions.get(call_id)
        if session is None or session.ended:
            raise SupervisionError(409, "not_supervised", "该通话未被监听: nobody supervises it")
        await self._end(session, "stopped", by=supervisor)
        return {"call_id": call_id, "status": "ended"}

    async def _connect_media(self, session: Supervising, call: QueuedCall) -> None:
        if session.mode == "barge":
            if call.bridge_id is None:
                raise SupervisionError(409, "not_connected", "通话没有桥接: no conversation")
            async with call.lock:
                await self.ari.add_to_bridge(call.bridge_id, session.channel_id)
            session.call_bridge = call.bridge_id
            return
        waiter = waiter_for(self.ari)
        short = uuid.uuid4().hex[:12]
        session.snoop_id = f"{PREFIX}snoop-{short}"
        started = waiter.expect(session.snoop_id)
        try:
            await self.ari.snoop(
                session.seat_channel,
                spy="both",
                whisper="out" if session.mode == "whisper" else "none",
                snoop_id=session.snoop_id,
                app_args="supervise",
            )
            async with asyncio.timeout(STASIS_TIMEOUT_S):
                await started
        finally:
            waiter.cancel(session.snoop_id)
        session.bridge_id = f"{PREFIX}bridge-{short}"
        await self.ari.create_bridge("mixing", bridge_id=session.bridge_id, name=session.bridge_id)
        await self.ari.add_to_bridge(session.bridge_id, [session.snoop_id, session.channel_id])

    async def _disconnect_media(self, session: Supervising) -> None:
        if session.call_bridge is not None:
            with contextlib.suppress(AriError):
                await self.ari.remove_from_bridge(session.call_bridge, session.channel_id)
            session.call_bridge = None
        if session.snoop_id is not None:
            with contextlib.suppress(AriError):
                await self.ari.hangup(session.snoop_id)
            session.snoop_id = None
        if session.bridge_id is not None:
            with contextlib.suppress(AriError):
                await self.ari.destroy_bridge(session.bridge_id)
            session.bridge_id = None

    async def _end(
        self, session: Supervising, why: str, *, failed: bool = False, by: str | None = None
    ) -> None:
        if session.ended:
            return
        session.ended = True
        if session.answered is not None and not session.answered.done():
            session.answered.set_result(False)
        if self.sessions.get(session.call_id) is session:
            del self.sessions[session.call_id]
        for channel in (session.channel_id, session.seat_channel, session.caller_channel):
            if self._by_channel.get(channel) is session:
                del self._by_channel[channel]
        await self._disconnect_media(session)
        with contextlib.suppress(AriError):
            await self.ari.hangup(session.channel_id)
        if failed:
            self.events.append(
                session.call_id,
                EventType.SUPERVISION_FAILED,
                {"mode": session.mode, "supervisor": session.supervisor, "phone": session.phone,
                 "why": why},
            )  # fmt: skip
        else:
            self.events.append(
                session.call_id,
                EventType.SUPERVISION_ENDED,
                {"mode": session.mode, "supervisor": session.supervisor, "why": why,
                 "by": by or "system",
                 "duration_s": round(time.monotonic() - session.started_at, 1)},
            )  # fmt: skip
        log.info("call %s: supervision by %s ended: %s", session.call_id, session.supervisor, why)

    # ARI events -----------------------------------------------------------------------------
    async def handle(self, event: ari.Event) -> None:
        if isinstance(event, ari.BridgeDestroyed):
            for session in list(self.sessions.values()):
                if event.bridge_id == session.call_bridge:
                    await self._end(session, "conversation_moved")
            return
        if not isinstance(event, ari.StasisEnd | ari.ChannelDestroyed):
            return
        channel_id = event.channel.id
        for call_id, hold in list(self.holds.items()):
            if hold.caller_channel == channel_id:
                self.release_hold(call_id, "call_ended")
        session = self._by_channel.get(channel_id)
        if session is None:
            return
        if channel_id == session.channel_id:
            if session.answered is not None and not session.answered.done():
                await self._end(session, "no_answer", failed=True)  # rang out, busy, rejected
            else:
                await self._end(session, "supervisor_hung_up", by=session.supervisor)
        else:
            await self._end(session, "call_ended")
