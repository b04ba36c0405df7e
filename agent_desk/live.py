"""Live call events for the browsers: one bus subscription, filtered per role, numbers masked.

Theory of operation
-------------------
``LiveHub`` is the only subscriber of the ``EventBus`` on the desk's behalf. Its task takes each
event, in publish order, and

1. *redacts* it (``redact``): phone numbers are masked (``138****8000``) under known phone keys
   and wherever a run of 7+ digits appears in free text (transcripts included), for every role:
   no page and no WebSocket message ever carries a caller's number in clear. Keyed number
   hashes (``caller_key``) are dropped from the event data;
2. updates its live picture: a ``CallSummary`` per active call (masked caller, where the call
   came from, the IVR path built from the call's ``ivr.*`` events, topic, queue, state, seat,
   times, and the caller's keyed hash, which the screen pop needs to ask for the party archive
   ``GET /api/parties/{caller_key}/archive``: it only goes to the seat the call is offered to
   and to supervisors), the state of each seat (from ``seat.*`` events, with the wrap-up
   deadline), each seat's figures of today (``SeatFigures``), and the KPI picture (the last
   ``kpi.snapshot`` and the active ``kpi.alert_*``);
3. fans the message out to the connected clients that may see it. Supervisors,
   administrators and auditors see everything but the recogniser's running guesses
   (``transcript.partial``: many per second per call, only the talking seat needs them); a seat
   lawyer sees the events of their own seat and of the calls offered or connected to it,
   nothing else, and never ``supervision.*`` (who monitors a call is for supervisors). A call
   offered to a seat arrives with its summary, so the screen pop has the
   IVR path that happened before.
   An ``emergency.suspected`` (``integrations.emergency``: the caller said a configured
   emergency word) is a call event like the others: it reaches the seat of the call and the
   supervisors, and the summary keeps it (``emergency``), so a reloaded desk shows the banner
   again and the wallboard marks the call.

Because all of that happens in one task, a client never sees an event before the summary it
belongs to. Each client has a bounded queue; a client too slow to keep up loses the oldest
messages and gets ``{"kind": "resync"}``, after which the page asks for a fresh snapshot (the
bus is not durable either: the call-event log is the record). The figures of today are loaded
from the call-event log when the hub starts (``SeatFigures.load``), so a restart does not
reset a lawyer's count; they are idempotent per call, so an event seen twice counts once.

The wrap-up countdown: a ``seat.state_changed`` to ``wrap_up`` carries the seconds when the ACD
puts them in the event (``wrap_up_s``); otherwise ``wrap_up_lookup(seat_id, queue)`` (the
ACD's configuration, given by ``agent_desk.http.setup``) answers for the queue of the seat's
last call. The seat record then has ``wrap_up_s`` and ``wrap_up_until`` (ISO time).

``LiveHub.ingest`` is synchronous and has no I/O: tests feed it events directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
# A work order's human number (GD20261121-0001): under "number" in workorder.* events.
_ORDER_NUMBER = re.compile(r"[A-Z]{1,4}\d{6,8}-\d{1,6}")

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
    if isinstance(data, str) and _ORDER_NUMBER.fullmatch(data):
        return data
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
    """The call an event is about, or None for seat, service, KPI and other pseudo-call events.

    Seat events (logged under the pseudo call id ``seat:<id>``) are about the seat even when
    their data names the call the seat is busy with. Events under another pseudo call id
    (``workorder:<id>``, ``integration:<id>``, ``service:<boot>``) are about a call only when
    their data names one.
    """
    if str(message["type"]).startswith(("seat.", "service.", "kpi.")):
        return None
    data = message["data"]
    own = str(message.get("call_id") or "")
    if data.get("call_id"):
        return str(data["call_id"])
    if not own or ":" in own:
        return None
    return own


# Where a call came from: the service number 12348, or a partner line that transferred it in.
DIRECT = frozenset({"", "direct", "inbound", "12348", "none"})


def _origin(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return "12348" if text.lower() in DIRECT else text


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
    on_hold: bool = False  # the seat put the caller on hold (call.held / call.resumed)
    ivr_path: list[dict[str, Any]] = field(default_factory=list)
    attached: dict[str, Any] = field(default_factory=dict)  # data from a linked 110/12345 call
    # The caller's live speech named a danger (emergency.suspected): words, partner, text, at.
    # The seat's banner offers the transfer; the wallboard marks the call.
    emergency: dict[str, Any] | None = None
    caller_key: str | None = None  # keyed hash (never the number): for the party archive
    entered_at: str | None = None
    waiting_since: str | None = None
    offered_at: str | None = None
    connected_at: str | None = None
    ended_at: str | None = None

    def apply(self, message: dict[str, Any]) -> None:
        type_ = str(message["type"])
        data = message["data"]
        ts = message.get("ts")
        if type_ == "call.entered":
            self.caller = data.get("caller") or self.caller
            self.dialled = data.get("dialled") or data.get("called")
            origin = _origin(data.get("origin") or data.get("via") or data.get("source"))
            self.source = origin or "12348"
            self.entered_at = ts
            if isinstance(data.get("attached"), dict):
                self.attached = data["attached"]
        elif type_ == "ivr.call_started":
            self.is_repeat = bool(data.get("is_repeat", self.is_repeat))
            self.special_group = bool(data.get("special_group", self.special_group))
            origin = _origin(data.get("origin"))
            if origin and origin != "12348":
                self.source = origin
        elif type_ == "ivr.choice":
            step = {k: data.get(k) for k in ("node", "choice", "target") if k in data}
            self._step(step)
        elif type_ == "ivr.language" and data.get("chosen_by") not in (None, "default"):
            self._step({"node": "language", "choice": data.get("language")})
        elif type_ == "queue.entered":
            self.state = "waiting"
            self.waiting_since = self.waiting_since or ts
            origin = _origin(data.get("origin"))
            if origin and origin != "12348":
                self.source = origin
        elif type_ in ("queue.offered", "callback.placed"):
            self.state = "offered"
            self.seat_id = data.get("seat_id")
            self.offered_at = ts
        elif type_ in ("queue.no_answer", "queue.transferred", "callback.failed"):
            self.state = "waiting"
            self.seat_id = None
        elif type_ == "emergency.suspected":
            self.emergency = {
                "words": list(data.get("words") or []),
                "partner": str(data.get("partner") or "110"),
                "text": data.get("text") or "",
                "at": ts,
            }
        elif type_ in ("call.held", "call.resumed"):
            self.on_hold = type_ == "call.held"
        elif type_ == "queue.connected":
            self.state = "talking"
            self.seat_id = data.get("seat_id") or self.seat_id
            self.connected_at = ts
        elif type_ == "queue.left":  # back in the IVR (a message) or hanging up
            self.state = "ivr"
            self.seat_id = None
        elif type_ in ("call.ended", "call.rejected", "queue.abandoned", "queue.completed"):
            # After queue.completed the caller may still rate the call: not the seat's any more.
            self.state = "ended"
            self.on_hold = False
            self.ended_at = ts
        if type_ == "ivr.language":
            self.language = data.get("language") or self.language
        if data.get("topic") and type_.startswith(("ivr.", "queue.", "call.")):
            self.topic = str(data["topic"])
        if data.get("queue") and type_.startswith(("queue.", "ivr.action")):
            self.queue = str(data["queue"])
        if type_ == "queue.overflowed" and data.get("to_queue"):
            self.queue = str(data["to_queue"])
        if isinstance(data.get("priority"), int):
            self.priority = data["priority"]

    def _step(self, step: dict[str, Any]) -> None:
        self.ivr_path.append(step)
        del self.ivr_path[:-20]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- each seat's figures of today ----------------------------------------------------------


@dataclass
class _SeatDay:
    answered: set[str] = field(default_factory=set)  # calls connected to the seat
    talk: dict[str, float] = field(default_factory=dict)  # completed call -> talk seconds
    wrap: dict[str, float] = field(default_factory=dict)  # completed call -> wrap-up seconds
    good: dict[str, bool] = field(default_factory=dict)  # rated call -> not dissatisfied

    def to_json(self) -> dict[str, Any]:
        done = list(self.talk)
        aht = sum(self.talk[c] + self.wrap.get(c, 0.0) for c in done) / len(done) if done else None
        rated = len(self.good)
        return {
            "answered": len(self.answered),
            "completed": len(done),
            "aht_s": round(aht, 1) if aht is not None else None,
            "rated": rated,
            "satisfaction": sum(self.good.values()) / rated if rated else None,
        }


class SeatFigures:
    """Each seat's figures of today (the local day of ``tz``): answered calls, average handling
    time (talk + wrap-up, as in ``kpi.formulas``), share of satisfied ratings.

    Fed with raw bus events (``feed``) or with the log's events (``load``); keyed by call, so
    an event seen twice counts once.
    """

    def __init__(self, tz: str = "Asia/Shanghai") -> None:
        self.zone = ZoneInfo(tz)
        self.day = ""
        self.seats: dict[str, _SeatDay] = {}
        self.call_seat: dict[str, str] = {}
        self.last_call: dict[str, str] = {}  # seat -> its last connected call
        self.wrap_from: dict[str, tuple[str, datetime]] = {}  # seat -> (call, wrap-up start)

    def of(self, seat_id: str) -> dict[str, Any]:
        return self.seats.get(seat_id, _SeatDay()).to_json()

    def _roll(self, ts: datetime) -> bool:
        day = ts.astimezone(self.zone).strftime("%Y-%m-%d")
        if day < self.day:
            return False  # an event of an earlier day: it counted there
        if day > self.day:
            self.day = day
            self.seats.clear()
            self.call_seat.clear()
            self.wrap_from.clear()
        return True

    def feed(self, event: Any) -> str | None:
        """Take one event; returns the seat whose figures changed, if any."""
        type_ = str(getattr(event, "type", ""))
        ts = getattr(event, "ts", None)
        if not isinstance(ts, datetime) or not type_.startswith(("queue.", "seat.", "survey.")):
            return None
        if not self._roll(ts):
            return None
        data = getattr(event, "data", None) or {}
        call_id = str(data.get("call_id") or getattr(event, "call_id", "") or "")
        if type_ == "queue.connected" and data.get("seat_id"):
            seat = str(data["seat_id"])
            self.call_seat[call_id] = seat
            self.last_call[seat] = call_id
            self.seats.setdefault(seat, _SeatDay()).answered.add(call_id)
            return seat
        if type_ == "queue.completed":
            seat = str(data.get("seat_id") or self.call_seat.get(call_id) or "")
            if not seat:
                return None
            talk = data.get("talk")
            day = self.seats.setdefault(seat, _SeatDay())
            day.answered.add(call_id)
            day.talk[call_id] = float(talk) if isinstance(talk, int | float) else 0.0
            self.call_seat[call_id] = seat
            self.last_call[seat] = call_id
            return seat
        if type_ == "survey.answered":
            seat = self.call_seat.get(call_id)
            if seat is None or data.get("rating") is None:
                return None
            self.seats.setdefault(seat, _SeatDay()).good[call_id] = data["rating"] != "dissatisfied"
            return seat
        if type_ == "seat.state_changed":
            seat = str(data.get("seat_id") or "")
            if not seat:
                return None
            started = self.wrap_from.pop(seat, None)
            if data.get("to") == "wrap_up" and seat in self.last_call:
                self.wrap_from[seat] = (self.last_call[seat], ts)
            if started is not None:
                call, since = started
                day = self.seats.setdefault(seat, _SeatDay())
                day.wrap[call] = max(0.0, (ts - since).total_seconds())
                return seat
        return None

    def load(self, engine: Any, now: datetime | None = None) -> None:
        """Today's events from the call-event log (blocking: run it in a worker thread)."""
        from hotline.events.log import events_between

        now = now or datetime.now(UTC)
        local = now.astimezone(self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        types = ["queue.connected", "queue.completed", "survey.answered", "seat.state_changed"]
        for event in events_between(
            engine, local.astimezone(UTC), now + timedelta(seconds=1), types=types
        ):
            self.feed(event)


# --- clients and the hub -----------------------------------------------------------------


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


WrapUpLookup = Callable[[str, str | None], float | None]


class LiveHub:
    """Fan-out of redacted bus events to browser clients, with the live calls and seats."""

    def __init__(
        self,
        *,
        max_calls: int = 5000,
        keep_ended: int = 200,
        wrap_up_lookup: WrapUpLookup | None = None,
        kpi_targets: dict[str, float] | None = None,
        tz: str = "Asia/Shanghai",
    ) -> None:
        self.max_calls = max_calls
        self.keep_ended = keep_ended
        self.wrap_up_lookup = wrap_up_lookup
        self.calls: OrderedDict[str, _CallRec] = OrderedDict()
        self._ended: deque[str] = deque()
        self.seats: dict[str, dict[str, Any]] = {}
        self.figures = SeatFigures(tz)
        self.kpi: dict[str, Any] | None = None  # the last kpi.snapshot's data
        self.alerts: dict[str, dict[str, Any]] = {}  # active alerts by "<alert>:<scope>"
        self.kpi_targets = dict(kpi_targets or {})
        self.clients: set[LiveClient] = set()
        self.ingested = 0
        self._task: asyncio.Task[None] | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self, bus: EventBus, engine: Any = None) -> None:
        """Subscribe now (nothing is missed), then load today's figures and consume."""
        sub = bus.subscribe("*", maxsize=10_000)
        self._task = asyncio.create_task(self._run(sub, engine), name="desk-live-hub")

    async def _run(self, sub: Any, engine: Any = None) -> None:
        if engine is not None:
            try:
                await asyncio.to_thread(self.figures.load, engine)
            except Exception:  # the figures start at zero; the live views still work
                log.exception("live hub: could not load today's figures")
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

    def _seat_json(self, seat_id: str) -> dict[str, Any]:
        seat = self.seats.get(seat_id) or {"seat_id": seat_id, "state": "offline", "since": None}
        return {**seat, "today": self.figures.of(seat_id)}

    def snapshot(self, principal: Principal) -> dict[str, Any]:
        """What this principal may see of the present: seats, active calls (and the KPIs)."""
        if principal.role in SEE_ALL:
            seats = {s: self._seat_json(s) for s in self.seats}
            calls = [r.summary.to_json() for r in self.calls.values() if not r.ended]
            return {
                "kind": "snapshot",
                "seats": seats,
                "calls": calls,
                "kpi": self.kpi,
                "alerts": list(self.alerts.values()),
                "targets": self.kpi_targets,
            }
        seat = principal.seat_id
        seats = {seat: self._seat_json(seat)} if seat else {}
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
            if type_ == "call.entered":
                raw = getattr(event, "data", None) or {}
                key = raw.get("caller_key") if isinstance(raw, dict) else None
                rec.summary.caller_key = str(key) if key else None
        if type_.startswith("kpi."):
            self._apply_kpi(type_, data)
        figures_seat = self.figures.feed(event)
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
        shown_seat = seat_id if seat_id and seat_id in self.seats else figures_seat
        if shown_seat:
            out["seat"] = self._seat_json(shown_seat)
        partial = type_ == "transcript.partial"
        # A silent monitor is silent on the desk too: supervision events go to supervisors.
        supervision = type_.startswith("supervision.")
        for client in self.clients:
            if client.sees_all:
                if not partial:
                    client.put(out)
            elif supervision:
                continue
            elif (
                self._visible(client.principal, seat_id, rec)
                or (joined is not None and client.principal.seat_id == joined)
                # A work order held at the seat (an assigned callback: its call never reached
                # the seat) is the seat's business: its changes refresh the callback list.
                or (
                    type_.startswith("workorder.")
                    and bool(seat_id)
                    and seat_id == client.principal.seat_id
                )
            ):
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

    def _apply_kpi(self, type_: str, data: dict[str, Any]) -> None:
        if type_ == "kpi.snapshot":
            self.kpi = data
            active = data.get("alerts")
            if isinstance(active, list):  # the KPI service's own list is the truth
                names = {str(a) for a in active}
                for name in list(self.alerts):
                    if name not in names:
                        del self.alerts[name]
                for name in names - self.alerts.keys():
                    alert, _, scope = name.partition(":")
                    self.alerts[name] = {"name": name, "alert": alert, "scope": scope}
        elif type_ in ("kpi.alert_raised", "kpi.alert_cleared"):
            name = f"{data.get('alert')}:{data.get('scope')}"
            if type_ == "kpi.alert_raised":
                self.alerts[name] = {"name": name, **data}
            else:
                self.alerts.pop(name, None)

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
            seat["wrap_up_s"] = seat["wrap_up_until"] = None
            if seat["state"] == "wrap_up":
                self._start_wrap_up(seat, data, message.get("ts"))
        elif type_ == "seat.logout":
            seat.update(state="offline", reason=None, since=message.get("ts"))
        if data.get("call_id"):
            seat["call_id"] = data["call_id"]
        for key in ("region", "skills", "name"):
            if key in data:
                seat[key] = data[key]

    def _start_wrap_up(self, seat: dict[str, Any], data: dict[str, Any], ts: Any) -> None:
        seconds = data.get("wrap_up_s")
        if not isinstance(seconds, int | float) and self.wrap_up_lookup is not None:
            call = self.figures.last_call.get(seat["seat_id"]) or seat.get("call_id")
            rec = self.calls.get(call) if call else None
            queue = rec.summary.queue if rec is not None else None
            try:
                seconds = self.wrap_up_lookup(seat["seat_id"], queue)
            except Exception:  # the countdown falls back to the page's default
                log.exception("wrap-up lookup failed for seat %s", seat["seat_id"])
                seconds = None
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            seat["wrap_up_s"] = float(seconds)
            try:
                start = datetime.fromisoformat(str(ts)) if ts else datetime.now(UTC)
            except ValueError:
                start = datetime.now(UTC)
            seat["wrap_up_until"] = (start + timedelta(seconds=float(seconds))).isoformat()

    def _evict(self) -> None:
        while len(self.calls) > self.max_calls:
            # Oldest first; ended calls usually, but never unbounded.
            self.calls.popitem(last=False)
