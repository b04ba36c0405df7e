"""One SIP phone in its own process: pjsua2 driven by JSON lines on stdin, reporting on stdout.

This module owns everything that touches pjsua2 for the simulator and the end-to-end tests.
``sim.phone`` is the asyncio side that spawns it; nothing else should import pjsua2.

Run it as ``python -m sim.phone_worker --name N --sip-port P --rtp-port R
[--registrar sip:127.0.0.1:5060 --user U --password PW]``. Every command is one JSON object on
one stdin line (``{"cmd": "call", "id": 7, "uri": "sip:b@127.0.0.1:5062"}``); every event is one
JSON object on one stdout line (``{"event": "call_state", "call": "c1", ...}``), flushed at once.
A command carrying ``id`` is answered by an ``ack`` (or an ``error``) event with the same id.

Theory of operation
-------------------
pjsua2 runs with no SIP worker thread (``threadCnt=0``) and ``mainThreadOnly``, as measured in
shared/RUNTIME.md, and the media endpoint has no ioqueue or thread of its own: RTP sockets sit
in the SIP ioqueue. So SIP, RTP (DTMF included) and every pjsua2 callback that reaches Python
are handled on the main thread, between two commands, and the worker's state needs no locks.
The only other native thread that matters is the null sound device's clock, which drives the
conference bridge (mixing, encoding, sending, recording); the one callback it raises (end of a
played file) is queued by pjsua2 for the main thread.

The main loop blocks in ``libHandleEvents(timeout)``, which returns as soon as a SIP or RTP
packet arrives or a pjsip timer fires. Commands arrive on stdin, which pjsip cannot watch, so a
small reader thread queues each line and then sends a CRLF keep-alive datagram to the worker's
own SIP port: pjsip discards it, but its arrival wakes the loop at once. With no call up the
loop wakes once a second (to notice SIGTERM) and costs nothing measurable; with calls up, RTP
wakes it every 20 ms and the timeout is cut to 100 ms for queued callbacks.

Each call with active media is connected both ways to the null sound device: that keeps the
bridge's clock running (pjsua stops it one second after the last connection goes, and then
nothing is sent, not even DTMF) and makes the phone send RTP silence like a real one.

Calls get their own ids ("c1", "c2", ...) that are never reused, unlike pjsua's call slots 0-3.
Rules that keep pjsua from crashing or misbehaving (all measured):

- at most 4 calls per process; a fifth is refused with an ``error`` event before pjsua is asked;
- ``hangup()`` may fire DISCONNECTED synchronously, so ``local_hangup`` is set before calling it;
- a finished ``Call`` is kept alive until shutdown: its destructor would otherwise hang up
  whatever new call pjsua has put in the same slot;
- players and recorders are released outside pjsua callbacks (in the ``deferred`` queue that
  the loop runs after each poll). The bridge closes a destroyed recorder's file on its next
  clock tick, so ``recording_done`` waits until the WAV's RIFF header holds the final size:
  the controller may read the file as soon as it sees the event;
- at shutdown all calls are hung up, then every Call, player, recorder and the Account are
  dropped before ``libDestroy()``, which aborts the process otherwise (a Call freed later
  asserts in ``pjsua_call_set_user_data``); so no local variable of ``shutdown`` may hold one.

File descriptor 1 is pointed at stderr at start-up and the JSON stream goes to a private
duplicate of the original stdout, so nothing pjlib prints can corrupt the event stream.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import itertools
import json
import os
import queue
import re
import signal
import socket
import sys
import threading
import time
import traceback
import wave
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

import pjsua2 as pj

MAX_CALLS = 4  # compiled into pjsua-python; raising maxCalls is silently clamped
RTP_PORT_RANGE = 40  # ports tried from --rtp-port upwards (2 per call: RTP + RTCP)
IDLE_WAIT_MS = 1000  # bounds how late a SIGTERM is noticed; commands wake the loop at once
# With calls up, callbacks from the bridge's clock thread (end of a played file) are queued by
# pjsua2 for the main thread and run when libHandleEvents returns; RTP usually wakes the loop
# every 20 ms anyway, this bounds their latency when the far end sends no audio.
CALL_WAIT_MS = 100
SHUTDOWN_GRACE_S = 2.0  # time given to BYE/CANCEL transactions before libDestroy
WAKE_PACKET = b"\r\n\r\n"  # a SIP keep-alive: pjsip ignores it, but its arrival wakes the poll

CLOCK_RATE = 8000  # recordings come out 8 kHz mono 16-bit
RECORDING_POLL_S = 0.01
RECORDING_CLOSE_TIMEOUT_S = 3.0

AUTO_ANSWER_MODES = ("answer", "never", "reject")

_STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}

# RFC 3261 compact header forms, so `incoming.headers` always uses the long names.
_COMPACT_HEADERS = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
}


class CommandError(Exception):
    """A command that cannot be carried out; reported as an ``error`` event, never fatal."""


def parse_sip_headers(message: str) -> dict[str, str]:
    """Header fields of a SIP message as {name: value}; repeated fields are joined by ", ".

    Folded continuation lines are unfolded, compact names expanded; the body is ignored.
    """
    head = re.split(r"\r?\n\r?\n", message, maxsplit=1)[0]
    lines = re.split(r"\r?\n", head)[1:]  # skip the request line
    headers: dict[str, str] = {}
    last: str | None = None
    for line in lines:
        if line[:1] in (" ", "\t") and last is not None:
            headers[last] = f"{headers[last]} {line.strip()}"
            continue
        name, sep, value = line.partition(":")
        if not sep:
            continue
        name = name.strip()
        name = _COMPACT_HEADERS.get(name.lower(), name)
        value = value.strip()
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
        last = name
    return headers


@dataclass
class AutoAnswer:
    """What to do with an incoming call before the controller says anything."""

    mode: str = "never"
    delay_ms: int = 0
    code: int = 486  # used by mode "reject"
    play: str | None = None
    play_loop: bool = False
    record: str | None = None


@dataclass
class CallState:
    """The worker's view of one call; outlives the pjsua call slot it used."""

    cid: str
    direction: str  # "out" or "in"
    call: WorkerCall | None = None
    local_hangup: bool = False
    finished: bool = False
    confirmed_at: float | None = None
    audio: pj.AudioMedia | None = None
    play_wav: str | None = None
    play_loop: bool = False
    player: Player | None = None
    record_wav: str | None = None
    recorder: pj.AudioMediaRecorder | None = None
    retired: list[Any] = field(default_factory=list)  # media objects waiting to be released


class Player(pj.AudioMediaPlayer):
    """A WAV player that reports the end of a non-looping file as ``play_done``."""

    def __init__(self, worker: Worker, cid: str, wav: str) -> None:
        super().__init__()
        self.worker = worker
        self.cid = cid
        self.wav = wav

    def onEof2(self) -> None:
        self.worker.guarded(self.worker.emit, "play_done", call=self.cid, wav=self.wav)


class WorkerCall(pj.Call):
    """Forwards pjsua2 call callbacks to the worker, with any exception turned into an event."""

    def __init__(self, worker: Worker, account: pj.Account, cid: str, call_id: int) -> None:
        super().__init__(account, call_id)
        self.worker = worker
        self.cid = cid

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        self.worker.guarded(self.worker.on_call_state, self)

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        self.worker.guarded(self.worker.on_call_media_state, self)

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        self.worker.guarded(self.worker.emit, "dtmf", call=self.cid, digit=prm.digit)


class WorkerAccount(pj.Account):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        self.worker.guarded(self.worker.on_incoming_call, prm)

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        self.worker.guarded(self.worker.on_reg_state, prm)


class LogWriter(pj.LogWriter):
    """pjlib's log goes to stderr; stdout belongs to the event stream."""

    def write(self, entry: pj.LogEntry) -> None:
        sys.stderr.write(entry.msg if entry.msg.endswith("\n") else entry.msg + "\n")
        sys.stderr.flush()


class Worker:
    """Owns the pjsua2 endpoint, the account and every call of this process."""

    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.out_lock = threading.Lock()
        self.commands: queue.Queue[str | None] = queue.Queue()
        self.stopping = False
        self.calls: dict[str, CallState] = {}
        self.graveyard: list[pj.Call] = []  # finished calls, alive until shutdown (see above)
        self.auto = AutoAnswer()
        self.next_cid = itertools.count(1)
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.timer_seq = itertools.count()
        self.deferred: list[Callable[[], None]] = []
        self.closing: list[tuple[str, str, float]] = []  # (call id, wav, deadline)
        self.ep: pj.Endpoint | None = None
        self.account: WorkerAccount | None = None
        self.log_writer = LogWriter()
        self.sip_port = 0
        self.domain = ""

    # -- output ----------------------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> None:
        record = {"event": kind, "ts": round(time.time(), 6), **fields}
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self.out_lock:  # a player's end-of-file callback may come from the clock thread
            self.out.write(line)
            self.out.flush()

    def guarded(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """Run a callback body; an exception becomes an ``error`` event instead of a crash."""
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            self.emit("error", message=f"internal error in {fn.__name__}: {exc!r}")

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        args = self.args
        ep = pj.Endpoint()
        self.ep = ep
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = MAX_CALLS
        cfg.uaConfig.userAgent = f"hotline-sim/{args.name}"
        cfg.logConfig.level = args.log_level
        cfg.logConfig.consoleLevel = args.log_level
        cfg.logConfig.writer = self.log_writer
        cfg.logConfig.decor = pj.PJ_LOG_HAS_TIME | pj.PJ_LOG_HAS_SENDER
        cfg.medConfig.hasIoqueue = False  # RTP shares the SIP ioqueue: the main loop polls it
        cfg.medConfig.threadCnt = 0
        cfg.medConfig.clockRate = CLOCK_RATE
        cfg.medConfig.sndClockRate = CLOCK_RATE
        cfg.medConfig.channelCount = 1
        cfg.medConfig.ecTailLen = 0  # an echo canceller would distort what we measure
        cfg.medConfig.noVad = True
        ep.libInit(cfg)

        tcfg = pj.TransportConfig()
        tcfg.port = args.sip_port
        tcfg.boundAddress = "127.0.0.1"
        tcfg.publicAddress = "127.0.0.1"
        tid = ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        self.sip_port = int(ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])

        ep.audDevManager().setNullDev()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, 0)  # 0 disables: only G.711 is offered
        ep.codecSetPriority("PCMU/8000/1", 255)
        ep.codecSetPriority("PCMA/8000/1", 254)
        ep.libStart()

        self.account = WorkerAccount(self)
        self.account.create(self._account_config())
        self.emit("ready", sip_port=self.sip_port, name=args.name, pid=os.getpid())

    def _account_config(self) -> pj.AccountConfig:
        args = self.args
        acfg = pj.AccountConfig()
        if args.registrar:
            self.domain = re.sub(r"^sips?:", "", args.registrar).split(";")[0]
            acfg.idUri = f"sip:{args.user}@{self.domain}"
            acfg.regConfig.registrarUri = args.registrar
            acfg.regConfig.timeoutSec = 300
            acfg.regConfig.retryIntervalSec = 5
            acfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", "*", args.user, 0, args.password or "")
            )
        else:
            self.domain = f"127.0.0.1:{self.sip_port}"
            acfg.idUri = f"sip:{args.name}@{self.domain}"
            acfg.regConfig.registerOnAdd = False
        # Loopback only: no NAT tricks that would rewrite addresses or re-register.
        acfg.natConfig.contactRewriteUse = 0
        acfg.natConfig.viaRewriteUse = 0
        acfg.natConfig.sdpNatRewriteUse = 0
        acfg.natConfig.sipOutboundUse = 0
        acfg.natConfig.iceEnabled = False
        acfg.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acfg.mediaConfig.transportConfig.port = args.rtp_port
        acfg.mediaConfig.transportConfig.portRange = RTP_PORT_RANGE if args.rtp_port else 0
        acfg.mediaConfig.transportConfig.boundAddress = "127.0.0.1"
        acfg.mediaConfig.srtpUse = pj.PJMEDIA_SRTP_DISABLED
        return acfg

    def run(self) -> None:
        assert self.ep is not None
        ep = self.ep
        while not self.stopping:
            self._drain_commands()
            self._run_deferred()
            if self.stopping:
                break
            ep.libHandleEvents(self._wait_ms())
            self._run_deferred()
            self._run_due_timers()

    def shutdown(self) -> None:
        """Hang up, finalise recordings, release every pjsua2 object, then destroy the library."""
        if self.ep is None:
            return
        self._hangup_all()
        self._release_all_media()
        self._run_deferred()
        self._drain_closing()
        # Drop every Call and the Account before libDestroy (it aborts otherwise). No local
        # variable of this frame may still hold one.
        self.calls.clear()
        self.graveyard.clear()
        self.timers.clear()
        if self.account is not None:
            with contextlib.suppress(pj.Error):
                self.account.shutdown()
        self.account = None
        gc.collect()
        # Calls are already over: only an unregistration can still want an answer, so the
        # library's wait for incoming messages (a flat second) is skipped without a registrar.
        self.ep.libDestroy(0 if self.args.registrar else pj.PJSUA_DESTROY_NO_RX_MSG)
        self.ep = None
        gc.collect()

    def _hangup_all(self) -> None:
        assert self.ep is not None
        live = [st for st in self.calls.values() if not st.finished and st.call is not None]
        if not live:
            return
        for st in live:
            st.local_hangup = True
        with contextlib.suppress(pj.Error):
            self.ep.hangupAllCalls()
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while time.monotonic() < deadline and any(not st.finished for st in live):
            self.ep.libHandleEvents(50)
            self._run_deferred()

    def _release_all_media(self) -> None:
        for st in self.calls.values():
            self._release_media(st, final=True)

    def _drain_closing(self) -> None:
        assert self.ep is not None
        while self.closing:
            self.ep.libHandleEvents(int(RECORDING_POLL_S * 1000))
            self._run_due_timers()

    # -- the loop's helpers --------------------------------------------------------------------

    def _wait_ms(self) -> int:
        if self.deferred or not self.commands.empty():
            return 0
        if self.timers:
            left = self.timers[0][0] - time.monotonic()
            return max(0, min(self._max_wait_ms(), int(left * 1000) + 1))
        return self._max_wait_ms()

    def _max_wait_ms(self) -> int:
        busy = any(not st.finished for st in self.calls.values()) or self.closing
        return CALL_WAIT_MS if busy else IDLE_WAIT_MS

    def _run_deferred(self) -> None:
        while self.deferred:
            jobs, self.deferred = self.deferred, []
            for job in jobs:
                self.guarded(job)

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, job = heapq.heappop(self.timers)
            self.guarded(job)

    def call_later(self, delay_s: float, job: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay_s, next(self.timer_seq), job))

    def _drain_commands(self) -> None:
        while True:
            try:
                line = self.commands.get_nowait()
            except queue.Empty:
                return
            if line is None:  # stdin closed: the controller is gone
                self.stopping = True
                return
            self._handle_line(line)
            if self.stopping:
                return

    def _handle_line(self, line: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            cmd = json.loads(line)
            if not isinstance(cmd, dict):
                raise ValueError("a command must be a JSON object")
        except ValueError as exc:
            self.emit("error", message=f"bad command line {line[:200]!r}: {exc}")
            return
        cid = cmd.get("id")
        name = cmd.get("cmd")
        handler = getattr(self, f"cmd_{name}", None) if isinstance(name, str) else None
        try:
            if handler is None:
                raise CommandError(f"unknown command {name!r}")
            result = handler(cmd) or {}
        except (CommandError, pj.Error, KeyError, TypeError, ValueError) as exc:
            message = exc.info() if isinstance(exc, pj.Error) else str(exc)
            if isinstance(exc, KeyError):
                message = f"missing field {exc}"
            self.emit("error", id=cid, cmd=name, message=message)
            return
        self.emit("ack", id=cid, cmd=name, **result)

    # -- commands --------------------------------------------------------------------------------

    def _state(self, cmd: dict[str, Any]) -> CallState:
        cid = cmd["call"]
        st = self.calls.get(cid)
        if st is None:
            raise CommandError(f"no such call {cid!r}")
        if st.finished or st.call is None:
            raise CommandError(f"call {cid!r} has already ended")
        return st

    def _active_count(self) -> int:
        return sum(1 for st in self.calls.values() if not st.finished)

    def cmd_ping(self, cmd: dict[str, Any]) -> dict[str, Any]:
        return {"calls": [cid for cid, st in self.calls.items() if not st.finished]}

    def cmd_quit(self, cmd: dict[str, Any]) -> None:
        self.stopping = True

    def cmd_call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        uri = cmd["uri"]
        if self._active_count() >= MAX_CALLS:
            raise CommandError(
                f"too many calls: a phone worker holds at most {MAX_CALLS} simultaneous calls"
            )
        assert self.account is not None
        cid = f"c{next(self.next_cid)}"
        st = CallState(cid=cid, direction="out")
        st.play_wav, st.play_loop = cmd.get("play"), bool(cmd.get("play_loop", False))
        call = WorkerCall(self, self.account, cid, pj.PJSUA_INVALID_ID)
        st.call = call
        self.calls[cid] = st
        if cmd.get("record"):
            self._start_recorder(st, cmd["record"])
        prm = pj.CallOpParam(True)
        if cmd.get("from_user"):
            prm.txOption.localUri = f"sip:{cmd['from_user']}@{self.domain}"
        for hname, hvalue in (cmd.get("headers") or {}).items():
            hdr = pj.SipHeader()
            hdr.hName, hdr.hValue = str(hname), str(hvalue)
            prm.txOption.headers.append(hdr)
        try:
            call.makeCall(uri, prm)
        except pj.Error:
            st.finished = True
            self._release_media(st, final=True)
            self.graveyard.append(call)
            del self.calls[cid]
            raise
        return {"call": cid}

    def cmd_answer(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        prm = pj.CallOpParam(True)
        prm.statusCode = int(cmd.get("code", 200))
        st.call.answer(prm)

    def cmd_reject(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        st.local_hangup = True  # set first: the callback may fire inside hangup()
        prm = pj.CallOpParam(True)
        prm.statusCode = int(cmd.get("code", 486))
        st.call.hangup(prm)

    def cmd_hangup(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        st.local_hangup = True
        prm = pj.CallOpParam(True)
        if cmd.get("code"):
            prm.statusCode = int(cmd["code"])
        st.call.hangup(prm)

    def cmd_dtmf(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        digits = str(cmd["digits"])
        if not re.fullmatch(r"[0-9A-Da-d*#]+", digits):
            raise CommandError(f"invalid DTMF digits {digits!r}")
        st.call.dialDtmf(digits)

    def cmd_play(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        st.play_wav, st.play_loop = cmd["wav"], bool(cmd.get("loop", False))
        self._retire_player(st)
        if st.audio is not None:
            self._start_player(st)

    def cmd_stop_play(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        st.play_wav = None
        self._retire_player(st)

    def cmd_record(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        self._finish_recording(st)
        self._start_recorder(st, cmd["wav"])

    def cmd_stop_record(self, cmd: dict[str, Any]) -> None:
        st = self._state(cmd)
        if st.record_wav is None:
            raise CommandError(f"call {st.cid!r} is not recording")
        self._finish_recording(st)

    def cmd_set_auto_answer(self, cmd: dict[str, Any]) -> None:
        mode = cmd.get("mode", "answer")
        if mode not in AUTO_ANSWER_MODES:
            raise CommandError(f"auto-answer mode must be one of {AUTO_ANSWER_MODES}, not {mode!r}")
        self.auto = AutoAnswer(
            mode=mode,
            delay_ms=max(0, int(cmd.get("delay_ms", 0))),
            code=int(cmd.get("code", 486)),
            play=cmd.get("play"),
            play_loop=bool(cmd.get("play_loop", False)),
            record=cmd.get("record"),
        )

    # -- pjsua2 callbacks (all on the main thread) -------------------------------------------

    def on_reg_state(self, prm: pj.OnRegStateParam) -> None:
        assert self.account is not None
        info = self.account.getInfo()
        self.emit("reg_state", code=int(prm.code), reason=prm.reason, active=info.regIsActive)

    def on_incoming_call(self, prm: pj.OnIncomingCallParam) -> None:
        assert self.account is not None
        cid = f"c{next(self.next_cid)}"
        call = WorkerCall(self, self.account, cid, prm.callId)
        st = CallState(cid=cid, direction="in", call=call)
        self.calls[cid] = st
        info = call.getInfo()
        auto = self.auto
        if self.stopping:
            st.local_hangup = True
            reply = pj.CallOpParam(True)
            reply.statusCode = 503
            call.hangup(reply)
            return
        self.emit(
            "incoming",
            call=cid,
            **{"from": info.remoteUri, "to": info.localUri},
            headers=parse_sip_headers(prm.rdata.wholeMsg),
            source=prm.rdata.srcAddress,
        )
        if auto.record:
            self._start_recorder(st, auto.record)
        st.play_wav, st.play_loop = auto.play, auto.play_loop
        reply = pj.CallOpParam(True)
        if auto.mode == "reject":
            st.local_hangup = True
            reply.statusCode = auto.code
            call.hangup(reply)
            return
        reply.statusCode = 180
        call.answer(reply)
        if auto.mode == "answer":
            self.call_later(auto.delay_ms / 1000, lambda: self._auto_answer(st))

    def _auto_answer(self, st: CallState) -> None:
        if st.finished or st.call is None:
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = 200
        st.call.answer(prm)

    def on_call_state(self, call: WorkerCall) -> None:
        st = self.calls.get(call.cid)
        if st is None or st.finished:
            return
        info = call.getInfo()
        state = _STATE_NAMES.get(info.state, str(info.state))
        if state == "CONFIRMED" and st.confirmed_at is None:
            st.confirmed_at = time.monotonic()
        code, reason = int(info.lastStatusCode), info.lastReason
        self.emit("call_state", call=st.cid, state=state, code=code, reason=reason)
        if state != "DISCONNECTED":
            return
        st.finished = True
        duration = time.monotonic() - st.confirmed_at if st.confirmed_at is not None else 0.0
        self.emit(
            "disconnected",
            call=st.cid,
            code=code,
            reason=reason,
            local_hangup=st.local_hangup,
            duration_s=round(duration, 3),
        )
        self.graveyard.append(call)  # never freed before shutdown (slot reuse, see docstring)
        self.deferred.append(lambda: self._release_media(st, final=True))

    def on_call_media_state(self, call: WorkerCall) -> None:
        st = self.calls.get(call.cid)
        if st is None or st.finished:
            return
        info = call.getInfo()
        audio = None
        for mi in info.media:
            if mi.type == pj.PJMEDIA_TYPE_AUDIO and mi.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                audio = call.getAudioMedia(mi.index)
                break
        was_active = st.audio is not None
        st.audio = audio
        if audio is None:
            return
        self._connect_clock(audio)
        if st.record_wav is not None:
            self._attach_recorder(st)
        if st.player is not None:
            st.player.startTransmit(audio)
        elif st.play_wav:
            self._start_player(st)
        if not was_active:
            self.emit("media_active", call=st.cid)

    # -- media --------------------------------------------------------------------------------

    def _connect_clock(self, audio: pj.AudioMedia) -> None:
        """Connect the call to the null sound device, both ways, while it has media.

        The (null) sound device is the conference bridge's clock: without it nothing is
        encoded, sent (DTMF included) or recorded, and pjsua closes it one second after its
        last connection goes. A call that sends silence also keeps RTP flowing, as a real
        phone does, so the far end's RTP timeouts are not triggered.
        """
        assert self.ep is not None
        mgr = self.ep.audDevManager()
        mgr.getCaptureDevMedia().startTransmit(audio)
        audio.startTransmit(mgr.getPlaybackDevMedia())

    def _start_player(self, st: CallState) -> None:
        assert st.play_wav and st.audio is not None
        player = Player(self, st.cid, st.play_wav)
        player.createPlayer(st.play_wav, 0 if st.play_loop else pj.PJMEDIA_FILE_NO_LOOP)
        st.player = player
        player.startTransmit(st.audio)

    def _retire_player(self, st: CallState) -> None:
        if st.player is not None:
            player, st.player = st.player, None
            if st.audio is not None:
                with contextlib.suppress(pj.Error):
                    player.stopTransmit(st.audio)
            st.retired.append(player)
            self.deferred.append(st.retired.clear)

    def _start_recorder(self, st: CallState, wav: str) -> None:
        """Remember where to record; the recorder itself is made once media is active.

        A recorder that never receives a frame is never closed by pjmedia (measured), so it
        is only created when there is audio to connect; the file is created now, so a bad
        path is reported to the command that asked for it.
        """
        try:
            with open(wav, "wb"):
                pass
        except OSError as exc:
            raise CommandError(f"cannot record to {wav!r}: {exc}") from exc
        st.record_wav = wav
        if st.audio is not None:
            self._attach_recorder(st)

    def _attach_recorder(self, st: CallState) -> None:
        assert st.record_wav and st.audio is not None
        if st.recorder is None:
            recorder = pj.AudioMediaRecorder()
            recorder.createRecorder(st.record_wav)
            st.recorder = recorder
        st.audio.startTransmit(st.recorder)

    def _finish_recording(self, st: CallState) -> None:
        """Destroy the recorder, then emit ``recording_done`` once the WAV file is final.

        Since pjsua 2.14 the conference bridge removes ports asynchronously, on its clock
        thread: the file is closed a tick after the recorder is destroyed, and never if the
        (null) sound device has been auto-closed. So the clock is restarted if needed and
        the file's RIFF header is watched until it holds the final size.
        """
        if st.record_wav is None:
            return
        wav, recorder = st.record_wav, st.recorder
        st.record_wav, st.recorder = None, None
        if recorder is None:  # no audio ever came: write a valid empty recording ourselves
            _write_empty_wav(wav)
            self.emit("recording_done", call=st.cid, wav=wav, complete=True)
            return
        if st.audio is not None:
            with contextlib.suppress(pj.Error):
                st.audio.stopTransmit(recorder)
        assert self.ep is not None
        if not self.ep.audDevManager().sndIsActive():
            self.ep.audDevManager().setNullDev()  # gives the bridge a clock to close the file
        del recorder  # the last reference: pjsua_recorder_destroy queues the close
        self.closing.append((st.cid, wav, time.monotonic() + RECORDING_CLOSE_TIMEOUT_S))
        if len(self.closing) == 1:
            self.call_later(RECORDING_POLL_S, self._check_closing)

    def _check_closing(self) -> None:
        now = time.monotonic()
        still: list[tuple[str, str, float]] = []
        for cid, wav, deadline in self.closing:
            if _wav_is_final(wav):
                self.emit("recording_done", call=cid, wav=wav, complete=True)
            elif now >= deadline:
                self.emit("error", call=cid, message=f"recording {wav} was not closed in time")
                self.emit("recording_done", call=cid, wav=wav, complete=False)
            else:
                still.append((cid, wav, deadline))
        self.closing = still
        if still:
            self.call_later(RECORDING_POLL_S, self._check_closing)

    def _release_media(self, st: CallState, *, final: bool) -> None:
        self._retire_player(st)
        self._finish_recording(st)
        st.retired.clear()
        if final:
            st.audio = None


def _write_empty_wav(path: str) -> None:
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(CLOCK_RATE)


def _wav_is_final(path: str) -> bool:
    """True once pjmedia's WAV writer has written the real sizes into the RIFF header."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return (
        size >= 44
        and head[:4] == b"RIFF"
        and head[8:12] == b"WAVE"
        and int.from_bytes(head[4:8], "little") == size - 8
    )


def _stdin_reader(commands: queue.Queue[str | None], sip_port: int) -> None:
    """Queue each stdin line and wake the main loop with a datagram to our own SIP port.

    Reads the raw file descriptor: a daemon thread blocked inside ``sys.stdin``'s buffered
    reader would hold its lock and abort the interpreter's shutdown on SIGTERM.
    """
    waker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    waker.bind(("127.0.0.1", 0))
    pending = b""
    try:
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                commands.put(raw.decode("utf-8", errors="replace"))
            if lines:
                waker.sendto(WAKE_PACKET, ("127.0.0.1", sip_port))
        if pending.strip():
            commands.put(pending.decode("utf-8", errors="replace"))
        commands.put(None)
        waker.sendto(WAKE_PACKET, ("127.0.0.1", sip_port))
    finally:
        waker.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m sim.phone_worker", description="One pjsua2 SIP phone on JSON lines."
    )
    ap.add_argument("--name", required=True, help="user part of this phone's own SIP URI")
    ap.add_argument("--sip-port", type=int, default=0, help="UDP port on 127.0.0.1 (0: any free)")
    ap.add_argument(
        "--rtp-port",
        type=int,
        default=0,
        help=f"first RTP port; up to {RTP_PORT_RANGE} ports from it are used (0: any free)",
    )
    ap.add_argument("--registrar", help="register here, e.g. sip:127.0.0.1:5060")
    ap.add_argument("--user", help="SIP user for registration and authentication")
    ap.add_argument("--password", help="SIP password")
    ap.add_argument("--log-level", type=int, default=1, help="pjlib log level on stderr (0-6)")
    args = ap.parse_args(argv)
    if args.registrar and not args.user:
        ap.error("--registrar needs --user")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Keep fd 1 for the JSON stream only: anything native code prints goes to stderr.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    worker = Worker(args, out)

    def on_signal(signum: int, frame: object) -> None:
        worker.stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    code = 0
    try:
        worker.start()
        threading.Thread(
            target=_stdin_reader, args=(worker.commands, worker.sip_port), daemon=True
        ).start()
        worker.run()
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        with contextlib.suppress(Exception):
            worker.emit("error", message=f"worker failed: {exc!r}", fatal=True)
        code = 1
    finally:
        worker.shutdown()
    with contextlib.suppress(Exception):
        worker.emit("stopped", code=code)
        out.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
