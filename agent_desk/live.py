"""Live call events for the browsers: one bus subscription, filtered per role, numbers masked.

Theory of operation
-------------------
``LiveHub`` is the only subscriber of the ``EventBus`` on the desk's behalf. Its task takes each
event, in publish order, and

1. *redacts* it (``redact``): phone numbers are masked (``138****8000``) under known phone keys
   and wherever a run of 7+ digits appears in free text, for every role: no page and no
   WebSocket message ever carries a caller's number in clear. Keyed number hashes
   (``caller_key``) are dropped: the browser has no use for a stable identifier of a person;
2. updates its live picture: a ``CallSummary`` per active call (masked caller, where the call
   came from, the IVR path, topic, queue, state, seat, times) and the state of each seat (from
   ``seat.*`` events), and which seats a call belongs to (offered or connected to them);
3. fans the message out to the connected clients that may see it. Supervisors,
   administrators and auditors see everything; a seat lawyer sees the events of their own
   seat and of the calls offered or connected to it, nothing else. A call offered to a seat
   arrives with its summary, so the screen pop has the IVR path that happened before.

Because all of that happens in one task, a client never sees an event before the summary it
belongs to. Each client has a bounded queue; a client too slow to keep up loses the oldest
messages and gets ``{"kind": "resync"}``, after which the page asks for a fresh snapshot (the
bus is not durable either: the call-event log is the record).

``LiveHub.ingest`` is synchronous and has no I/O: tests feed it events directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hotline.events.bus import EventBus
from hotline.privacy import mask_number
from hotline.web import Principal, Role

log = logging.getLogger(__name__)

# Keys whose value is a phone number, wherever they appear in event data.
PHONE_KEYS = frozenset(
    {
        "caller",
        "caller_number",
        "caller_id",
        "callerid",
        "callee",
        "number",
        "phone",
        "phone_number",
        "callback_number",
        "external_number",
        "ani",
        "from_number",
        "to_number",
        "connected_number",
        "contact_number",
    }
)
# Keys that hold identifiers (digits in them are not phone numbers) or service numbers.
ID_KEYS = frozenset(
    {"call_id", "seat_id", "channel", "bridge", "playback", "recording", "snoop", "at", "seq"}
)
DROP_KEYS = frozenset({"caller_key", "number_key"})
# 7+ digits, not part of a decimal number (channel ids look like 1712345678.12).
_DIGIT_RUN = re.compile(r"(?<![\d.])\+?\d{7,}(?![\d.])")

SEE_ALL = frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR, Role.SERVICE})


def _mask_value(value: Any) -> Any:
    if value is None or value == "":
        return value
    text = str(value)
    if "*" in text:  # already masked upstream
        return text
    return mask_number(text)


def redact(data: Any, key: str | None = None) -> Any:
    """A copy of ``data`` with phone numbers masked and keyed number hashes dropped."""
    if isinstance(data, dict):
        return {
            k: redact(v, k) for k, v in data.items() if not (isinstance(k, str) and k in DROP_KEYS)
        }
    if isinstance(data, list | tuple):
        return [redact(v, key) for v in data]
    if key in PHONE_KEYS and isinstance(data, str | int) and not isinstance(data, bool):
        return _mask_value(data)
    if isinstance(data, str) and key not in ID_KEYS:
        return _DIGIT_RUN.sub(lambda m: mask_number(m.group(0)), data)
    return data


def event_json(event: Any) -> dict[str, Any]:
    """The bus event as a redacted JSON-ready dict."""
    if hasattr(event, "to_json"):
        raw = event.to_json()
    else:  # anything with the CallEvent attributes
        ts = getattr(event, "ts", None)
        raw = {
            "call_id": getattr(event, "call_id", None),
            "seq": getattr(event, "seq", None),
            "ts": ts.isoformat() if isinstance(ts, datetime) else ts,
            "type": str(event.type),
            "data": dict(getattr(event, "data", {}) or {}),
        }
    raw["data"] = redact(raw.get("data") or {})
    return raw


def call_key(message: dict[str, Any]) -> str | None:
    """The call an event is about, or None for seat and service events.

    Seat events (logged under the pseudo call id ``seat:<id>``) are about the seat even when
    their data names the call the seat is busy with.
    """
    if str(message["type"]).startswith(("seat.", "service.", "kpi.")):
        return None
    data = message["data"]
    return str(data.get("call_id") or message.get("call_id") or "") or None


@dataclass
class CallSummary:
    """What a screen pop and the wallboard show about one call (masked)."""

    call_id: str
    caller: str = "unknown"
    source: str = "12348"  # 12348 | 110 | 12345 | ...
    dialled: str | None = None
    state: str = "ivr"  # ivr | waiting | offered | talking | ended
    queue: str | None = None
    topic: str | None = None
    seat_id: str | None = None
    language: str | None = None
    priority: int | None = None
    special_group: bool = False
    is_repeat: bool = False
    ivr_path: list[dict[str, Any]] = field(default_factory=list)
    attached: dict[str, Any] = field(default_factory=dict)  # data from a linked 110/12345 call
    entered_at: str | None = None
    waiting_since: str | None = None
    connected_at: str | None = None
    ended_at: str | None = None

    def apply(self, message: dict[str, Any]) -> None:
        type_ = str(message["type"])
        data = message["data"]
        ts = message.get("ts")
        if type_ == "call.entered":
            self.caller = data.get("caller") or self.caller
            self.dialled = data.get("dialled") or data.get("called")
            self.source = str(data.get("via") or data.get("source") or "12348")
            if self.source == "direct":
                self.source = "12348"
            self.entered_at = ts
            if isinstance(data.get("attached"), dict):
                self.attached = data["attached"]
        elif type_ == "ivr.call_started":
            self.is_repeat = bool(data.get("is_repeat", self.is_repeat))
            self.special_group = bool(data.get("special_group", self.special_group))
        elif type_ == "ivr.choice":
            self.ivr_path.append(
                {k: data.get(k) for k in ("node", "choice", "target") if k in data}
            )
            del self.ivr_path[:-20]
        elif type_ == "ivr.language":
            self.language = data.get("language") or self.language
        elif type_ == "queue.entered":
            self.state = "waiting"
            self.waiting_since = self.waiting_since or ts
        elif type_ == "queue.offered":
            self.state = "offered"
            self.seat_id = data.get("seat_id")
        elif type_ in ("queue.no_answer", "queue.transferred"):
            self.state = "waiting"
            self.seat_id = None
        elif type_ == "queue.connected":
            self.state = "talking"
            self.seat_id = data.get("seat_id") or self.seat_id
            self.connected_at = ts
        elif type_ in ("call.ended", "call.rejected", "queue.abandoned"):
            self.state = "ended"
            self.ended_at = ts
        if data.get("topic"):
            self.topic = str(data["topic"])
        if data.get("queue") and type_.startswith(("queue.", "ivr.action")):
            self.queue = str(data["queue"])
        if isinstance(data.get("priority"), int):
            self.priority = data["priority"]

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class _CallRec:
    summary: CallSummary
    seats: set[str] = field(default_factory=set)
    ended: bool = False


@dataclass(eq=False)  # identity: clients live in a set
class LiveClient:
    """One browser connection's view: who it is and its bounded outbox."""

    principal: Principal
    maxsize: int = 500
    outbox: deque[dict[str, Any]] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: int = 0

    @property
    def sees_all(self) -> bool:
        return self.principal.role in SEE_ALL

    def put(self, message: dict[str, Any]) -> None:
        if len(self.outbox) >= self.maxsize:
            self.outbox.clear()
            self.dropped += 1
            self.outbox.append({"kind": "resync"})
        self.outbox.append(message)
        self.ready.set()

    async def get(self) -> dict[str, Any]:
        while not self.outbox:
            self.ready.clear()
            await self.ready.wait()
        return self.outbox.popleft()


class LiveHub:
    """Fan-out of redacted bus events to browser clients, with the live calls and seats."""

    def __init__(self, *, max_calls: int = 5000, keep_ended: int = 200) -> None:
        self.max_calls = max_calls
        self.keep_ended = keep_ended
        self.calls: OrderedDict[str, _CallRec] = OrderedDict()
        self._ended: deque[str] = deque()
        self.seats: dict[str, dict[str, Any]] = {}
        self.clients: set[LiveClient] = set()
        self.ingested = 0
        self._task: asyncio.Task[None] | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self, bus: EventBus) -> None:
        sub = bus.subscribe("*", maxsize=10_000)
        self._task = asyncio.create_task(self._run(sub), name="desk-live-hub")

    async def _run(self, sub: Any) -> None:
        async with sub:
            async for event in sub:
                try:
                    self.ingest(event)
                except Exception:  # one malformed event must not stop the live views
                    log.exception("live hub: could not handle %r", event)
                if sub.lagging:
                    for client in self.clients:
                        client.put({"kind": "resync"})

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # clients -------------------------------------------------------------------------------
    def connect(self, principal: Principal) -> LiveClient:
        client = LiveClient(principal)
        self.clients.add(client)
        client.put(self.snapshot(principal))
        return client

    def disconnect(self, client: LiveClient) -> None:
        self.clients.discard(client)

    def snapshot(self, principal: Principal) -> dict[str, Any]:
        """What this principal may see of the present: seats and active calls."""
        if principal.role in SEE_ALL:
            seats = dict(self.seats)
            calls = [r.summary.to_json() for r in self.calls.values() if not r.ended]
        else:
            seat = principal.seat_id
            seats = {seat: self.seats[seat]} if seat and seat in self.seats else {}
            calls = [
                r.summary.to_json()
                for r in self.calls.values()
                if not r.ended and seat is not None and seat in r.seats
            ]
        return {"kind": "snapshot", "seats": seats, "calls": calls}

    # events --------------------------------------------------------------------------------
    def ingest(self, event: Any) -> None:
        self.ingested += 1
        message = event_json(event)
        type_ = str(message["type"])
        data = message["data"]
        seat_id = data.get("seat_id")
        seat_id = str(seat_id) if seat_id else None
        cid = call_key(message)
        rec = None
        if cid is not None:
            rec = self.calls.get(cid)
            if rec is None:
                rec = self.calls[cid] = _CallRec(CallSummary(cid))
                self._evict()
            rec.summary.apply(message)
        if type_.startswith("seat.") and seat_id:
            self._apply_seat(seat_id, message)

        joined = None
        if rec is not None and seat_id and type_ in ("queue.offered", "queue.connected"):
            if seat_id not in rec.seats:
                rec.seats.add(seat_id)
                joined = seat_id
        out: dict[str, Any] = {"kind": "event", "event": message}
        if rec is not None:
            out["call"] = rec.summary.to_json()
        if seat_id and seat_id in self.seats:
            out["seat"] = self.seats[seat_id]
        for client in self.clients:
            if client.sees_all or self._visible(client.principal, seat_id, rec):
                client.put(out)
            elif joined is not None and client.principal.seat_id == joined:
                client.put(out)

        if rec is not None:
            if type_ == "queue.no_answer" and seat_id:
                rec.seats.discard(seat_id)  # offered elsewhere now: no longer this seat's call
            if rec.summary.state == "ended" and not rec.ended:
                rec.ended = True
                self._ended.append(rec.summary.call_id)
                while len(self._ended) > self.keep_ended:
                    self.calls.pop(self._ended.popleft(), None)

    def _visible(self, principal: Principal, seat_id: str | None, rec: _CallRec | None) -> bool:
        mine = principal.seat_id
        if not mine:
            return False
        if rec is not None:
            return mine in rec.seats
        return seat_id == mine

    def _apply_seat(self, seat_id: str, message: dict[str, Any]) -> None:
        type_ = str(message["type"])
        data = message["data"]
        seat = self.seats.setdefault(
            seat_id, {"seat_id": seat_id, "state": "offline", "reason": None, "since": None}
        )
        if type_ == "seat.state_changed":
            seat["state"] = data.get("to", seat["state"])
            seat["reason"] = data.get("reason")
            seat["since"] = message.get("ts")
        elif type_ == "seat.logout":
            seat.update(state="offline", reason=None, since=message.get("ts"))
        if data.get("call_id"):
            seat["call_id"] = data["call_id"]
        for key in ("region", "skills", "name"):
            if key in data:
                seat[key] = data[key]

    def _evict(self) -> None:
        while len(self.calls) > self.max_calls:
            # Oldest first; ended calls usually, but never unbounded.
            self.calls.popitem(last=False)
