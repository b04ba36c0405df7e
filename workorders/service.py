"""Work orders as a running service: drafts from the event bus, the lifecycle through the API,
SLA warnings, and the IVR progress query.

Theory of operation
-------------------
``WorkOrderService`` subscribes to the ``EventBus`` when it is constructed (so nothing is missed
before ``start``) and one consumer task handles the events in order:

- ``call.entered`` / ``ivr.action``: remembered per call (masked caller, caller key, the IVR
  topic of the queue the caller chose); after a restart they are read back from the event log.
- ``queue.connected``: a **draft** for the call (source ``call``) with the seat that answered;
  its topic is the classifier's answer on the IVR choice alone, until the transcript arrives.
- ``transcript.completed``: the call's stored transcript segments (``recordings`` table) are
  read, waiting briefly until the segments the event counts are all stored (live segments are
  written in the background); the classifier, ``extract`` and ``summarize`` then fill in the
  topic, confidence, evidence, fields and summary of every order of the call. What a person
  has edited (``locked``) is never overwritten, and the topic only changes while the order is
  still with the seat (the due time follows the topic, as in ``lifecycle.apply(edit)``).
- ``message.recorded`` → draft (``voice_message``), ``callback.booked`` → draft
  (``callback_request``), ``integration.workorder_received`` → draft (``integration``, linked
  back with ``integrations.link_work_order`` when the integration service is known).

Creating an order is idempotent per (call, source) and per partner order, so a replayed event
never makes a second draft. Every change goes through ``workorders.lifecycle`` (``create`` /
``apply`` / ``record_warning``), is written with its history row in one transaction, then
appended to the call-event log under the order's call id (``workorder:<id>`` without a call),
with ``order_id``, ``number``, ``actor``, ``role`` and ``at``. A call whose events are no longer
in the log's memory (days later, after a restart) is resumed first so its ``seq`` continues.

The caller's clear number never reaches the log or the database in clear: the IVR call path
hands it over in memory (``remember_caller`` / ``caller_lookup``) and it is stored sealed
(``workorders.protect``); views show only the masked form.

Roles: web roles map to lifecycle roles; the handler (承办人) is represented by supervisors for
now: a supervisor may also take the handler's actions (claim, start = callback made, return,
resolve) on an order, acting for the unit it is dispatched to. Seat lawyers see and act on
their own orders only (the ones their calls created); auditors only read; the API token acts
as an administrator. Refusals: ``Forbidden`` (403, the role or the person may not), ``Conflict``
(409, not possible in the order's state), ``NotFound`` (404), ``Invalid`` (400).

SLA: ``check_sla`` (run every ``check_interval`` seconds) raises each new near-due / overdue
warning once per SLA window as a ``workorder.warning`` event. A callback request or voice
message is due within ``SlaPolicy.callback_within`` until the caller has been reached.

Callback list (回拨列表): callback requests and voice messages are made with no seat, so at
first no seat lawyer sees them. The rule (see ``workorders.lifecycle``): action ``assign``
puts such an order at one seat (``seat_id``) and it is then that seat's like the orders of its
own calls. A seat lawyer may *claim* (``assign`` with no ``seat_id`` or their own) an open,
unheld order from their **pool**: the orders whose topic one of their seat's skills serves
(``SKILL_TOPICS``; a topic no skill serves is in every pool; a pool order is visible to them
read-only until claimed). A supervisor or administrator assigns to any active seat
(``{"seat_id": ...}``) and may re-assign a held one. Claims are decided inside one write
transaction that locks the order first (``UPDATE`` before reading: PostgreSQL row lock, SQLite
write lock), so of two lawyers claiming at once exactly one wins; the other gets 409
``already_assigned``. ``callback_list(principal, scope)`` serves the desk (``mine``, ``pool``)
and the wallboard (``open``): masked number, booked at, due time, warning, the last callback
outcome and, for a voice message, the audited recordings API's audio link.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from acd.seats import get_seat, list_seats
from hotline.db.engine import session_factory
from hotline.events.bus import EventBus
from hotline.events.log import CallEventLog, events_for_call
from hotline.events.types import EventType
from hotline.privacy import mask_number, normalise_number
from hotline.web import Principal
from hotline.web import Role as WebRole
from recordings.models import RecordingRow, TranscriptSegmentRow
from workorders import lifecycle as lc
from workorders.classify import TOPICS, Classifier, default_classifier
from workorders.extract import extract, redact
from workorders.models import WorkOrderCounterRow, WorkOrderHistoryRow, WorkOrderRow
from workorders.protect import Sealer, SealError, load_sealer
from workorders.summary import summarize

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SUBSCRIBED = (
    "call.entered",
    "ivr.action",
    "queue.connected",
    "transcript.completed",
    "message.recorded",
    "callback.booked",
    "integration.workorder_received",
)
SOURCES = ("call", "voice_message", "callback_request", "integration", "manual")
CALLER_MEMORY = 5000  # clear numbers of recent calls, in memory only

# API action names → lifecycle actions. ``start`` is the lifecycle's ``callback`` (the handler
# has called the caller back: in progress); ``callback`` asks the system to place that call.
API_ACTIONS: Mapping[str, lc.Action] = {
    "submit": lc.Action.SUBMIT,
    "dispatch": lc.Action.DISPATCH,
    "claim": lc.Action.CLAIM,
    "start": lc.Action.CALLBACK,
    "resolve": lc.Action.RESOLVE,
    "review": lc.Action.REVIEW,
    "close": lc.Action.CLOSE,
    "reopen": lc.Action.REOPEN,
    "return": lc.Action.RETURN,
    "note": lc.Action.NOTE,
}
CALLBACK_REQUEST = "callback"
ASSIGN = "assign"
# Seat skills (the flow's queue skills) → the work-order topics they serve, for the claim pool.
# ``general`` (the operator queue) serves every topic; a topic no skill serves is everyone's.
SKILL_TOPICS: Mapping[str, frozenset[str]] = {
    "labor": frozenset({"劳动争议"}),
    "family": frozenset({"婚姻家庭"}),
    "contract": frozenset({"合同纠纷", "借贷债务"}),
    "traffic": frozenset({"交通事故"}),
    "property": frozenset({"房产物业"}),
    "general_law": frozenset({"消费维权", "公证", "司法鉴定", "投诉建议", "其他"}),
    "legal_aid": frozenset({"法律援助"}),
    "mediation": frozenset({"人民调解"}),
    "general": frozenset(TOPICS),
}
# What the dialer reports (acd.adapter.call_back) → what the desk shows.
OUTCOME_LABELS: Mapping[str, str] = {
    "answered": "已接通",
    "no_answer": "无人接听",
    "busy": "忙线",
    "seat_no_answer": "坐席未接",
    "seat_hung_up": "坐席挂断",
    "seat_busy": "坐席忙",
    "no_route": "无外呼线路",
    "unknown_seat": "坐席不存在",
}
_OPEN_CALLBACK_STATES = ("draft", "submitted", "claimed", "in_progress")
_POOL_STATES = ("draft", "submitted")
_API_NAME = {action: name for name, action in API_ACTIONS.items()}
_ROLE = {
    WebRole.SEAT_LAWYER: lc.Role.SEAT_LAWYER,
    WebRole.SUPERVISOR: lc.Role.SUPERVISOR,
    WebRole.ADMINISTRATOR: lc.Role.ADMINISTRATOR,
    WebRole.AUDITOR: lc.Role.AUDITOR,
    WebRole.SERVICE: lc.Role.ADMINISTRATOR,
}
READ_ONLY = frozenset({WebRole.AUDITOR})
_EDIT_KEYS = ("topic", "summary", "details", "fields")
_AUTO_FIELDS = ("phones", "amounts", "dates", "id_cards")

CallerLookup = Callable[[str], str | None]
CallbackDialer = Callable[[dict[str, Any], str | None, str], Awaitable[Any]]


class WorkOrderProblem(Exception):
    status = 400
    code = "invalid"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class NotFound(WorkOrderProblem):
    status, code = 404, "not_found"


class Forbidden(WorkOrderProblem):
    status, code = 403, "forbidden"


class Conflict(WorkOrderProblem):
    status, code = 409, "not_allowed_in_state"


class Invalid(WorkOrderProblem):
    status, code = 400, "invalid"


@dataclass(frozen=True)
class _CallInfo:
    caller_masked: str | None = None
    caller_key: str | None = None
    ivr_topic: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def number_for(day: date, seq: int) -> str:
    """The human order number: GD20261121-0001."""
    return f"GD{day:%Y%m%d}-{seq:04d}"


def parse_number(text: str) -> str | None:
    """An order number from what a caller typed (digits only: 202611210001) or a full one."""
    digits = "".join(c for c in (text or "") if c.isdigit())
    if len(digits) < 9:
        return None
    try:
        datetime.strptime(digits[:8], "%Y%m%d")
    except ValueError:
        return None
    return f"GD{digits[:8]}-{int(digits[8:]):04d}"


class WorkOrderService:
    """See the module docstring."""

    def __init__(
        self,
        engine: Engine,
        event_log: CallEventLog,
        bus: EventBus | None,
        runtime_dir: Path,
        recordings: Any = None,
        *,
        sla: lc.SlaPolicy = lc.DEFAULT_SLA,
        clock: Callable[[], datetime] = _now,
        classifier: Classifier | None = None,
        check_interval: float = 60.0,
        segment_wait: float = 5.0,
        sealer: Sealer | None = None,
    ) -> None:
        self.engine = engine
        self.event_log = event_log
        self.bus = bus
        self.recordings = recordings
        self.sla = sla
        self.clock = clock
        self.classifier = classifier or default_classifier()
        self.check_interval = check_interval
        self.segment_wait = segment_wait
        self.sealer = sealer or load_sealer(Path(runtime_dir))
        self._sessions = session_factory(engine)
        # Wired by the service after construction (all optional).
        self.integrations: Any = None  # integrations.service.IntegrationService
        self.caller_lookup: CallerLookup | None = None  # call id → clear number, if in a call
        self.callback_dialer: CallbackDialer | None = None  # (order, seat_id, number)
        self.skill_topics: Mapping[str, frozenset[str]] = SKILL_TOPICS
        self._numbers: OrderedDict[str, str] = OrderedDict()
        self._calls: OrderedDict[str, _CallInfo] = OrderedDict()
        self._callback_by: dict[str, Principal] = {}
        self._lock = asyncio.Lock()
        self._sub = bus.subscribe(SUBSCRIBED, maxsize=10_000) if bus is not None else None
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._started = False
        self.processed = 0  # bus events handled (for tests and health)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._sub is not None:
            self._tasks.append(asyncio.create_task(self._consume(), name="workorders: bus"))
        if self.check_interval > 0:
            self._tasks.append(asyncio.create_task(self._sla_loop(), name="workorders: sla"))
        if self.integrations is not None:
            self._tasks.append(asyncio.create_task(self._link_unlinked(), name="workorders: pwo"))

    async def close(self) -> None:
        if self._sub is not None:
            self._sub.close()
        if self._pending:  # transcripts being applied: let them finish (bounded waits)
            await asyncio.wait(set(self._pending), timeout=self.segment_wait + 5)
        tasks = [*self._tasks, *self._pending]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self._started = False

    async def lifecycle(self, _app: object) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: run while the HTTP app runs."""
        await self.start()
        yield
        await self.close()

    # -- the caller's number (memory only) ---------------------------------------------------
    def remember_caller(self, call_id: str, number: str) -> None:
        """The IVR call path hands the clear number over; kept in memory for a while only."""
        self._numbers[call_id] = number
        self._numbers.move_to_end(call_id)
        while len(self._numbers) > CALLER_MEMORY:
            self._numbers.popitem(last=False)

    def _clear_number(self, call_id: str | None) -> str | None:
        if not call_id:
            return None
        number = self._numbers.get(call_id)
        if number is None and self.caller_lookup is not None:
            try:
                number = self.caller_lookup(call_id)
            except Exception:  # a hook must not stop an order
                log.exception("caller lookup failed for %s", call_id)
        return normalise_number(number) if number else None

    # -- the bus -------------------------------------------------------------------------------
    async def _consume(self) -> None:
        assert self._sub is not None
        async for event in self._sub:
            if self._sub.lagging:
                log.warning("work-order subscriber is lagging: %d events lost", self._sub.dropped)
            try:
                await self.handle(event)
            except Exception:
                log.exception("work orders: could not handle %s of %s", event.type, event.call_id)
            self.processed += 1

    async def handle(self, event: Any) -> None:
        """One bus event (also callable directly, e.g. to replay the log)."""
        type_, call_id, data = str(event.type), event.call_id, event.data
        if type_ == EventType.CALL_ENTERED:
            self._remember(
                call_id, caller_masked=data.get("caller"), caller_key=data.get("caller_key")
            )
        elif type_ == EventType.IVR_ACTION:
            if data.get("topic"):
                self._remember(call_id, ivr_topic=str(data["topic"]))
        elif type_ == EventType.QUEUE_CONNECTED:
            await self.create_for_call(call_id, "call", seat_id=data.get("seat_id"))
        elif type_ == EventType.MESSAGE_RECORDED:
            await self.create_for_call(call_id, "voice_message", ivr_topic=data.get("topic"))
        elif type_ == EventType.CALLBACK_BOOKED:
            await self.create_for_call(
                call_id,
                "callback_request",
                ivr_topic=data.get("topic") or None,
                caller_key=data.get("caller_key"),
            )
        elif type_ == EventType.TRANSCRIPT_COMPLETED:
            # May wait for late segment writes: off the consumer, so drafts are not held up.
            task = asyncio.create_task(self._transcript_task(call_id, data))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
        elif type_ == EventType.INTEGRATION_WORKORDER_RECEIVED:
            await self.create_for_partner(data)

    async def _transcript_task(self, call_id: str, data: Mapping[str, Any]) -> None:
        try:
            await self.update_from_transcript(call_id, expect=data)
        except Exception:
            log.exception("work orders: transcript of %s not applied", call_id)

    def _remember(self, call_id: str, **info: Any) -> None:
        old = self._calls.get(call_id, _CallInfo())
        values = {k: v for k, v in info.items() if v}
        self._calls[call_id] = _CallInfo(**{**old.__dict__, **values})
        self._calls.move_to_end(call_id)
        while len(self._calls) > CALLER_MEMORY:
            self._calls.popitem(last=False)

    async def _call_info(self, call_id: str) -> _CallInfo:
        info = self._calls.get(call_id)
        if info is not None and info.caller_key:
            return info
        # Not seen on the bus (restart, or a test feeding events directly): read the log.
        events = await asyncio.to_thread(events_for_call, self.engine, call_id)
        masked = key = topic = None
        for event in events:
            if event.type == EventType.CALL_ENTERED:
                masked, key = event.data.get("caller"), event.data.get("caller_key")
            elif event.type == EventType.IVR_ACTION and event.data.get("topic"):
                topic = event.data["topic"]
        base = info or _CallInfo()
        return _CallInfo(
            caller_masked=base.caller_masked or masked,
            caller_key=base.caller_key or key,
            ivr_topic=base.ivr_topic or topic,
        )

    # -- creating ------------------------------------------------------------------------------
    async def create_for_call(
        self,
        call_id: str,
        source: str,
        *,
        seat_id: str | None = None,
        ivr_topic: str | None = None,
        caller_key: str | None = None,
    ) -> dict[str, Any]:
        """The draft of ``call_id`` for ``source`` (made once; a replay returns the same)."""
        info = await self._call_info(call_id)
        topic_hint = ivr_topic or info.ivr_topic
        number = self._clear_number(call_id)
        return await self._create(
            source=source,
            call_id=call_id,
            seat_id=seat_id,
            ivr_topic=topic_hint,
            caller_masked=info.caller_masked or (mask_number(number) if number else None),
            caller_key=info.caller_key or caller_key,
            clear_number=number,
        )

    async def create_for_partner(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """A draft for a partner's pushed order (``integration.workorder_received`` data)."""
        linked = data.get("call_id")
        info = await self._call_info(linked) if linked else _CallInfo()
        title = str(data.get("title") or "")
        order = await self._create(
            source="integration",
            call_id=None,
            seat_id=None,
            ivr_topic=None,
            caller_masked=info.caller_masked,
            caller_key=info.caller_key,
            clear_number=self._clear_number(linked),
            external_ref=str(data["order_id"]),
            text=title,
            extra_fields={
                "partner": data.get("partner"),
                "case_id": data.get("case_id"),
                "urgency": data.get("urgency"),
                "linked_call_id": linked,
            },
        )
        if self.integrations is not None:
            try:
                await self.integrations.link_work_order(str(data["order_id"]), order["id"])
            except Exception:
                log.exception("could not link partner order %s", data.get("order_id"))
        return order

    async def create_manual(self, principal: Principal, body: Mapping[str, Any]) -> dict[str, Any]:
        """An order a person makes by hand (a second issue on a call, a walk-in)."""
        if principal.role in READ_ONLY:
            raise Forbidden("auditors cannot create orders")
        call_id = body.get("call_id") or None
        info = await self._call_info(str(call_id)) if call_id else _CallInfo()
        text = " ".join(str(body.get(k) or "") for k in ("summary", "details")).strip()
        topic = body.get("topic") or None
        if topic is not None and topic not in TOPICS:
            raise Invalid(f"unknown topic {topic!r}", code="unknown_topic", topics=list(TOPICS))
        order = await self._create(
            source="manual",
            call_id=str(call_id) if call_id else None,
            seat_id=principal.seat_id,
            ivr_topic=info.ivr_topic,
            caller_masked=info.caller_masked,
            caller_key=info.caller_key,
            clear_number=self._clear_number(call_id),
            text=text,
            actor=self._actor(principal),
            forced_topic=topic,
            summary=redact(str(body.get("summary") or "")) or None,
            details=redact(str(body.get("details") or "")),
        )
        return order

    async def _create(
        self,
        *,
        source: str,
        call_id: str | None,
        seat_id: str | None,
        ivr_topic: str | None,
        caller_masked: str | None,
        caller_key: str | None,
        clear_number: str | None,
        external_ref: str | None = None,
        text: str = "",
        extra_fields: Mapping[str, Any] | None = None,
        actor: lc.Actor | None = None,
        forced_topic: str | None = None,
        summary: str | None = None,
        details: str = "",
    ) -> dict[str, Any]:
        actor = actor or lc.Actor("system", lc.Role.SYSTEM)
        verdict = self.classifier.classify(text, ivr_topic)
        topic = forced_topic or verdict.topic
        now = self.clock()
        order_id = uuid.uuid4().hex
        core_source = source if source in ("call", "voice_message", "callback_request") else "call"
        transition = lc.create(
            order_id, topic, actor, now, call_id=call_id, source=core_source, sla=self.sla
        )
        found = extract(text, today=now.astimezone(SHANGHAI).date()) if text else None
        fields: dict[str, Any] = _fields_json(found) if found else {}
        fields.update({k: v for k, v in (extra_fields or {}).items() if v is not None})
        row_values = {
            "id": order_id,
            "source": source,
            "topic": topic,
            "ivr_topic": ivr_topic,
            "confidence": verdict.confidence if not forced_topic else None,
            "evidence": list(verdict.evidence),
            "summary": summary if summary is not None else summarize(text, verdict.evidence),
            "details": details,
            "fields": fields,
            "locked": ["topic"] if forced_topic else [],
            "caller_masked": caller_masked,
            "caller_key": caller_key,
            "caller_enc": self.sealer.seal(clear_number, order_id) if clear_number else None,
            "contacts_enc": _seal_contacts(self.sealer, found, order_id),
            "call_id": call_id,
            "seat_id": seat_id,
            "external_ref": external_ref,
        }

        def write() -> tuple[WorkOrderRow, dict[str, Any] | None]:
            with self._sessions.begin() as session:
                existing = _existing(session, source, call_id, external_ref)
                if existing is not None:
                    return existing, None
                row = WorkOrderRow(**row_values, number=_next_number(session, now))
                _store_core(row, transition.order)
                session.add(row)
                data = {
                    **transition.log.data,
                    "number": row.number,
                    "source": source,
                    "seat_id": seat_id,
                    "ivr_topic": ivr_topic,
                    "confidence": row.confidence,
                    "caller_key": caller_key,
                }
                _history(session, row, transition.log.type, actor, now, data)
                return row, data

        async with self._lock:
            for attempt in range(3):
                try:
                    row, data = await asyncio.to_thread(write)
                    break
                except IntegrityError:  # another process took the same day number first
                    if attempt == 2:
                        raise
        if data is not None:
            await self._append(row, transition.log.type, data)
            log.info("work order %s (%s) created for %s", row.number, source, call_id or "-")
        return await self._view(row)

    # -- the transcript ------------------------------------------------------------------------
    async def update_from_transcript(
        self, call_id: str, expect: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Fill the call's orders from its stored transcript (see the module docstring)."""
        segments = await self._wait_for_segments(call_id, expect or {})
        if not segments:
            return []
        caller_text = "\n".join(s.text for s in segments if s.speaker in ("caller", "mixed"))
        all_text = "\n".join(s.text for s in segments)
        now = self.clock()

        def write() -> list[tuple[WorkOrderRow, dict[str, Any]]]:
            changed = []
            with self._sessions.begin() as session:
                rows = session.scalars(
                    select(WorkOrderRow)
                    .where(WorkOrderRow.call_id == call_id)
                    .where(WorkOrderRow.source.in_(("call", "voice_message", "callback_request")))
                    .with_for_update()
                ).all()
                for row in rows:
                    data = self._apply_transcript(row, caller_text or all_text, all_text, now)
                    data["segments"] = len(segments)
                    _history(session, row, EventType.WORKORDER_UPDATED, _SYSTEM, now, data)
                    changed.append((row, data))
            return changed

        async with self._lock:
            changed = await asyncio.to_thread(write)
        for row, data in changed:
            await self._append(row, EventType.WORKORDER_UPDATED, data)
        return [await self._view(row) for row, _ in changed]

    def _apply_transcript(
        self, row: WorkOrderRow, text: str, all_text: str, now: datetime
    ) -> dict[str, Any]:
        verdict = self.classifier.classify(text, row.ivr_topic)
        locked = set(row.locked or [])
        with_seat = row.state in (lc.State.DRAFT, lc.State.SUBMITTED, lc.State.REOPENED)
        data: dict[str, Any] = {"suggested_topic": verdict.topic}
        if "topic" not in locked and with_seat and verdict.topic != row.topic:
            data["previous_topic"] = row.topic
            row.topic = verdict.topic
            row.due_at = self.sla.due_for(
                row.topic, row.clock_started_at, row.source, called_back=row.callbacks > 0
            )
            row.warning = None
        row.confidence = verdict.confidence
        row.evidence = list(verdict.evidence)
        if "summary" not in locked:
            row.summary = summarize(text, verdict.evidence)
        found = extract(all_text, today=row.created_at.astimezone(SHANGHAI).date())
        if "fields" not in locked:
            row.fields = {**(row.fields or {}), **_fields_json(found)}
        row.contacts_enc = _seal_contacts(self.sealer, found, row.id) or row.contacts_enc
        row.transcribed_at = now
        row.updated_at = now
        data.update(
            topic=row.topic,
            confidence=row.confidence,
            evidence=row.evidence,
            due_at=row.due_at.isoformat(),
        )
        return _event_data(row, _SYSTEM, now, "update", **data)

    async def _wait_for_segments(
        self, call_id: str, expect: Mapping[str, Any]
    ) -> list[TranscriptSegmentRow]:
        """The stored segments; waits (bounded) for the ones the event says exist."""
        wanted = int(expect.get("segments") or 0)
        speaker, source = expect.get("speaker"), expect.get("source")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.segment_wait
        delay = 0.02

        def read() -> list[TranscriptSegmentRow]:
            with self._sessions() as session:
                return list(
                    session.scalars(
                        select(TranscriptSegmentRow)
                        .where(TranscriptSegmentRow.call_id == call_id)
                        .order_by(TranscriptSegmentRow.start_s, TranscriptSegmentRow.id)
                    ).all()
                )

        while True:
            segments = await asyncio.to_thread(read)
            have = sum(
                1
                for s in segments
                if (speaker is None or s.speaker == speaker)
                and (source is None or s.source == source)
            )
            if have >= wanted or loop.time() >= deadline:
                if have < wanted:
                    log.warning(
                        "call %s: %d of %d %s segments stored; using what is there",
                        call_id, have, wanted, speaker,
                    )  # fmt: skip
                return segments
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    # -- reading -------------------------------------------------------------------------------
    async def list_orders(
        self,
        principal: Principal,
        *,
        state: str | None = None,
        seat: str | None = None,
        call_id: str | None = None,
        caller_key: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        states = [s for s in (state or "").split(",") if s]
        for value in states:
            if value not in {s.value for s in lc.State}:
                raise Invalid(f"unknown state {value!r}", code="unknown_state")
        if principal.role is WebRole.SEAT_LAWYER:
            if not principal.seat_id:
                return []
            if seat and seat != principal.seat_id:
                raise Forbidden("a seat lawyer sees only the orders of their own seat")
            seat = principal.seat_id
        limit = max(1, min(int(limit), 500))

        def read() -> list[WorkOrderRow]:
            query = select(WorkOrderRow)
            if states:
                query = query.where(WorkOrderRow.state.in_(states))
            if seat:
                query = query.where(WorkOrderRow.seat_id == seat)
            if call_id:
                query = query.where(WorkOrderRow.call_id == call_id)
            if caller_key:
                query = query.where(WorkOrderRow.caller_key == caller_key)
            query = query.order_by(WorkOrderRow.created_at.desc(), WorkOrderRow.number.desc())
            with self._sessions() as session:
                return list(session.scalars(query.limit(limit)).all())

        rows = await asyncio.to_thread(read)
        transcripts = await asyncio.to_thread(
            _transcripts, self.engine, [r.call_id for r in rows if r.call_id]
        )
        return [self._json(r, transcripts.get(r.call_id or "", [])) for r in rows]

    async def get(self, order_id: str, principal: Principal) -> dict[str, Any]:
        """One order with its history and what ``principal`` may do with it."""
        row = await self._load(order_id)
        pool = None
        if principal.role is WebRole.SEAT_LAWYER and row.seat_id != principal.seat_id:
            pool = await self.pool_topics(principal)
        self._check_visible(row, principal, pool)
        history = await asyncio.to_thread(self._history_of, row.id)
        transcripts = await asyncio.to_thread(_transcripts, self.engine, [row.call_id or ""])
        view = self._json(row, transcripts.get(row.call_id or "", []))
        view["history"] = history
        view["allowed_actions"] = self.allowed_actions(row, principal)
        return view

    async def _view(self, row: WorkOrderRow) -> dict[str, Any]:
        transcripts = await asyncio.to_thread(_transcripts, self.engine, [row.call_id or ""])
        return self._json(row, transcripts.get(row.call_id or "", []))

    async def _load(self, order_id: str) -> WorkOrderRow:
        def read() -> WorkOrderRow | None:
            with self._sessions() as session:
                if order_id.upper().startswith("GD"):
                    return session.scalars(
                        select(WorkOrderRow).where(WorkOrderRow.number == order_id.upper())
                    ).first()
                return session.get(WorkOrderRow, order_id)

        row = await asyncio.to_thread(read)
        if row is None:
            raise NotFound(f"no work order {order_id!r}")
        return row

    def _history_of(self, order_id: str) -> list[dict[str, Any]]:
        with self._sessions() as session:
            rows = session.scalars(
                select(WorkOrderHistoryRow)
                .where(WorkOrderHistoryRow.order_id == order_id)
                .order_by(WorkOrderHistoryRow.id)
            ).all()
        return [
            {
                "type": r.type,
                "at": r.at.isoformat(),
                "actor": r.actor,
                "role": r.role,
                "data": r.data,
            }
            for r in rows
        ]

    def _json(self, row: WorkOrderRow, transcript: list[dict[str, Any]]) -> dict[str, Any]:
        core = _core(row)
        level = lc.warning_level(core, self.clock(), self.sla)
        target = None
        if row.dispatch_unit:
            target = {
                "kind": row.dispatch_kind,
                "unit_id": row.dispatch_unit,
                "name": row.dispatch_name,
            }
        return {
            "id": row.id,
            "number": row.number,
            "call_id": row.call_id,
            "source": row.source,
            "state": row.state,
            "state_label": lc.STATE_LABELS[lc.State(row.state)],
            "topic": row.topic,
            "ivr_topic": row.ivr_topic,
            "confidence": row.confidence,
            "evidence": list(row.evidence or []),
            "summary": row.summary,
            "details": row.details,
            "transcript": transcript,
            "fields": dict(row.fields or {}),
            "caller": row.caller_masked,
            "caller_key": row.caller_key,
            "has_caller_number": row.caller_enc is not None,
            "seat_id": row.seat_id,
            "dispatched_to": target,
            "claimed_by": row.claimed_by,
            "callbacks": row.callbacks,
            "reopen_count": row.reopen_count,
            "created_at": _iso(row.created_at),
            "updated_at": _iso(row.updated_at),
            "due_at": _iso(row.due_at),
            "resolved_at": _iso(row.resolved_at),
            "closed_at": _iso(row.closed_at),
            "transcribed_at": _iso(row.transcribed_at),
            "warning": level,
            "warning_label": lc.WARNING_LABELS.get(level or ""),
        }

    # -- who may --------------------------------------------------------------------------------
    def _check_visible(
        self, row: WorkOrderRow, principal: Principal, pool: frozenset[str] | None = None
    ) -> None:
        if principal.role is WebRole.SEAT_LAWYER and (
            not principal.seat_id or row.seat_id != principal.seat_id
        ):
            if pool is not None and _in_pool(row, pool):
                return
            raise Forbidden(
                "a seat lawyer may only see the orders of their own calls", code="not_yours"
            )

    async def pool_topics(self, principal: Principal) -> frozenset[str] | None:
        """The topics a seat lawyer may claim callback orders of (None: not a seat lawyer
        with a seat). The seat's skills are read from the seats table at each use, so an
        administrator's change of skills applies at once."""
        if principal.role is not WebRole.SEAT_LAWYER or not principal.seat_id:
            return None
        seat = await asyncio.to_thread(get_seat, self.engine, principal.seat_id)
        if seat is None or not seat.active:
            return frozenset()
        return topics_for_skills(seat.skills or {}, self.skill_topics)

    def _actor(self, principal: Principal) -> lc.Actor:
        unit = principal.seat_id if principal.role is WebRole.SEAT_LAWYER else None
        return lc.Actor(principal.id, _ROLE[principal.role], unit)

    def _roles(self, principal: Principal) -> list[lc.Role]:
        """Lifecycle roles the principal acts in, preferred first."""
        role = _ROLE[principal.role]
        if role is lc.Role.SUPERVISOR:
            return [lc.Role.SUPERVISOR, lc.Role.HANDLER]
        return [role]

    def allowed_actions(self, row: WorkOrderRow, principal: Principal) -> list[str]:
        """API action names (and ``edit`` for PATCH) ``principal`` may use on ``row`` now."""
        if principal.role in READ_ONLY:
            return []
        if principal.role is WebRole.SEAT_LAWYER and row.seat_id != principal.seat_id:
            # A pool order (checked visible by the caller) can only be claimed.
            if principal.seat_id and row.seat_id is None and row.state in _POOL_STATES:
                return [ASSIGN] if row.source in lc.CALLBACK_SOURCES else []
            return []
        state = lc.State(row.state)
        core = _core(row)
        allowed: set[lc.Action] = set()
        for role in self._roles(principal):
            unit = row.dispatch_unit if role is lc.Role.HANDLER else principal.seat_id
            actor = lc.Actor(principal.id, role, unit)
            allowed |= {
                a
                for a in lc.allowed_actions(state, role)
                if lc.bound_refusal(core, a, actor) is None
            }
        if row.source not in lc.CALLBACK_SOURCES:
            allowed.discard(lc.Action.ASSIGN)
        names = {_API_NAME[a] for a in allowed if a in _API_NAME}
        if lc.Action.EDIT in allowed:
            names.add("edit")
        if lc.Action.ASSIGN in allowed:
            names.add(ASSIGN)
        if lc.Action.CALLBACK in allowed and row.caller_enc is not None:
            names.add(CALLBACK_REQUEST)
        order = [*API_ACTIONS, ASSIGN, CALLBACK_REQUEST, "edit"]
        return [n for n in order if n in names]

    def _acting_as(self, row: WorkOrderRow, principal: Principal, action: lc.Action) -> lc.Actor:
        """The lifecycle actor for ``action`` on ``row``, or Forbidden / Conflict."""
        if principal.role in READ_ONLY:
            raise Forbidden(f"role {principal.role} is read-only")
        if not (action is lc.Action.ASSIGN and principal.role is WebRole.SEAT_LAWYER):
            self._check_visible(row, principal)  # a claim's pool is checked by ``assign``
        roles = self._roles(principal)
        if not any(r in lc.PERMISSIONS.get(action, frozenset()) for r in roles):
            raise Forbidden(f"role {principal.role} may not {_API_NAME.get(action, action)}")
        state = lc.State(row.state)
        if action not in lc.TRANSITIONS[state]:
            possible = sorted(_API_NAME[a] for a in lc.TRANSITIONS[state] if a in _API_NAME)
            raise Conflict(
                f"cannot {_API_NAME.get(action, action.value)} an order in state {state.value}",
                state=state.value,
                possible=possible,
            )
        core = _core(row)
        refusal = None
        for role in roles:
            if action in lc.allowed_actions(state, role):
                if role is lc.Role.HANDLER:
                    unit = row.dispatch_unit
                elif role is lc.Role.SEAT_LAWYER:
                    unit = principal.seat_id
                else:
                    unit = None
                actor = lc.Actor(principal.id, role, unit)
                refusal = lc.bound_refusal(core, action, actor)
                if refusal is None:
                    return actor
        raise Forbidden(
            f"role {principal.role} may not do this in state {state.value}"
            + (f": {refusal}" if refusal else ""),
            code="not_yours" if refusal else "forbidden",
        )

    # -- changing -------------------------------------------------------------------------------
    async def act(
        self,
        order_id: str,
        name: str,
        principal: Principal,
        *,
        target: Any = None,
        note: str | None = None,
        seat_id: str | None = None,
    ) -> dict[str, Any]:
        """Take API action ``name`` on an order; returns the order as ``get`` does.
        ``seat_id``: for ``callback``, the seat to ring (a supervisor or the service token has
        none of its own)."""
        if name == CALLBACK_REQUEST:
            return await self.request_callback(order_id, principal, note=note, seat_id=seat_id)
        if name == ASSIGN:
            return await self.assign(order_id, principal, seat_id=seat_id, note=note)
        action = API_ACTIONS.get(name)
        if action is None:
            raise NotFound(
                f"unknown action {name!r}", code="unknown_action",
                actions=[*API_ACTIONS, CALLBACK_REQUEST, ASSIGN],
            )  # fmt: skip
        details: dict[str, Any] = {}
        if action is lc.Action.DISPATCH:
            details["target"] = target  # checked after the state and the role
        if note:
            key = {lc.Action.NOTE: "text", lc.Action.RETURN: "reason", lc.Action.REOPEN: "reason"}
            details[key.get(action, "note")] = redact(str(note))[:2000]
        elif action is lc.Action.NOTE:
            raise Invalid('a note needs its text: {"note": "..."}', code="note_required")
        await self._transition(order_id, principal, action, details)
        return await self.get(order_id, principal)

    async def edit(
        self, order_id: str, principal: Principal, body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """PATCH: topic, summary, details, fields (while the order is still with the seat)."""
        unknown = set(body) - set(_EDIT_KEYS)
        if unknown:
            raise Invalid(
                f"cannot change {sorted(unknown)}", code="unknown_keys", allowed=list(_EDIT_KEYS)
            )
        if not body:
            raise Invalid("nothing to change", code="empty")
        if "topic" in body and body["topic"] not in TOPICS:
            raise Invalid(
                f"unknown topic {body['topic']!r}", code="unknown_topic", topics=list(TOPICS)
            )
        if "fields" in body and not isinstance(body["fields"], dict):
            raise Invalid("fields must be an object", code="invalid_fields")
        for key in ("summary", "details"):
            if key in body and not isinstance(body[key], str):
                raise Invalid(f"{key} must be text", code=f"invalid_{key}")
        details: dict[str, Any] = {"changed": sorted(body)}
        if "topic" in body:
            details["topic"] = body["topic"]

        def content(row: WorkOrderRow) -> None:
            if "summary" in body:
                row.summary = redact(body["summary"])[:2000]
            if "details" in body:
                row.details = redact(body["details"])[:20000]
            if "fields" in body:
                row.fields = {**(row.fields or {}), **_redacted(body["fields"])}
            row.locked = sorted({*(row.locked or []), *body})

        await self._transition(order_id, principal, lc.Action.EDIT, details, content)
        return await self.get(order_id, principal)

    async def _transition(
        self,
        order_id: str,
        principal: Principal,
        action: lc.Action,
        details: dict[str, Any],
        content: Callable[[WorkOrderRow], None] | None = None,
        check: Callable[[WorkOrderRow], None] | None = None,
    ) -> WorkOrderRow:
        row = await self._load(order_id)
        now = self.clock()

        def write() -> tuple[WorkOrderRow, dict[str, Any], str]:
            with self._sessions.begin() as session:
                # Lock the order before reading it (a no-op write: SQLite takes its write lock
                # at once, PostgreSQL the row lock), so two processes acting on the same order
                # at once are serialised and the second one sees the first one's result.
                session.execute(
                    update(WorkOrderRow)
                    .where(WorkOrderRow.id == row.id)
                    .values(callbacks=WorkOrderRow.callbacks)
                    .execution_options(synchronize_session=False)
                )
                current = session.get(WorkOrderRow, row.id, with_for_update=True)
                assert current is not None
                session.refresh(current)
                if check is not None:
                    check(current)
                actor = self._acting_as(current, principal, action)
                if action is lc.Action.DISPATCH:
                    details["target"] = _target(details.get("target"))
                try:
                    transition = lc.apply(
                        _core(current), action, actor, now, sla=self.sla, **details
                    )
                except lc.TransitionError as exc:
                    raise Forbidden(str(exc)) from exc
                except lc.MissingDetail as exc:
                    raise Invalid(str(exc), code="missing_detail") from exc
                _store_core(current, transition.order)
                if content is not None:
                    content(current)
                data = {
                    **transition.log.data,
                    "number": current.number,
                    "seat_id": current.seat_id,
                    "principal_role": str(principal.role),
                }
                _history(session, current, transition.log.type, actor, now, data)
                return current, data, transition.log.type

        async with self._lock:
            updated, data, type_ = await asyncio.to_thread(write)
        await self._append(updated, type_, data)
        return updated

    async def assign(
        self,
        order_id: str,
        principal: Principal,
        *,
        seat_id: str | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """分配 / 认领: put a callback request or voice message at a seat (see the module
        docstring for who may)."""
        if principal.role in READ_ONLY:
            raise Forbidden(f"role {principal.role} is read-only")
        if seat_id is not None and (not isinstance(seat_id, str) or not 0 < len(seat_id) <= 64):
            raise Invalid("seat_id must be a seat's id", code="invalid_seat_id")
        is_seat = principal.role is WebRole.SEAT_LAWYER
        pool: frozenset[str] | None = None
        if is_seat:
            if not principal.seat_id:
                raise Forbidden("this account has no seat to claim for", code="no_seat")
            if seat_id not in (None, principal.seat_id):
                raise Forbidden(
                    "a seat lawyer may only claim for their own seat; a supervisor assigns",
                    code="assign_forbidden",
                )
            seat_id = principal.seat_id
            pool = await self.pool_topics(principal)
        elif not seat_id:
            raise Invalid('assign needs the seat: {"seat_id": "..."}', code="seat_required")
        else:
            seat = await asyncio.to_thread(get_seat, self.engine, seat_id)
            if seat is None or not seat.active:
                raise Invalid(f"no active seat {seat_id!r}", code="unknown_seat")
        assert seat_id is not None
        row = await self._load(order_id)
        if row.source not in lc.CALLBACK_SOURCES:
            raise Conflict(
                "only callback requests and voice messages are assigned", code="not_assignable"
            )

        def check(current: WorkOrderRow) -> None:
            if not is_seat:
                return
            if current.seat_id is not None or current.state not in _POOL_STATES:
                # Someone else won the claim (or it was assigned meanwhile).
                raise Conflict(
                    "此回拨已被认领 (already assigned)",
                    code="already_assigned",
                    seat_id=current.seat_id if current.seat_id == seat_id else None,
                )
            if pool is None or not _in_pool(current, pool):
                raise Forbidden(
                    "this topic is not in the pool of your seat's skills", code="not_in_pool"
                )

        details: dict[str, Any] = {"seat_id": seat_id}
        if note:
            details["note"] = redact(str(note))[:2000]
        if not is_seat:
            # The holder is the seat; the lawyer logged in at it acts through the seat id.
            details["assignee"] = f"seat:{seat_id}"
        await self._transition(order_id, principal, lc.Action.ASSIGN, details, check=check)
        return await self.get(order_id, principal)

    async def callback_list(
        self, principal: Principal, scope: str | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """Open callback requests and voice messages. ``mine``: held at the principal's seat
        (a seat lawyer's default); ``pool``: unheld ones (a seat lawyer's: their skills'
        topics); ``open``: all open ones (supervisors' default; not for seat lawyers)."""
        is_seat = principal.role is WebRole.SEAT_LAWYER
        scope = scope or ("mine" if is_seat else "open")
        if scope not in ("mine", "pool", "open"):
            raise Invalid("scope must be mine, pool or open", code="invalid_scope")
        if is_seat and scope == "open":
            raise Forbidden("seat lawyers see their own callbacks and their pool", code="scope")
        pool = await self.pool_topics(principal) if is_seat else None
        mine = principal.seat_id
        if scope == "mine" and not mine:
            return []
        limit = max(1, min(int(limit), 500))

        def read() -> tuple[list[WorkOrderRow], dict[str, dict[str, Any]], dict[str, str]]:
            query = select(WorkOrderRow).where(WorkOrderRow.source.in_(sorted(lc.CALLBACK_SOURCES)))
            if scope == "mine":
                query = query.where(WorkOrderRow.seat_id == mine).where(
                    WorkOrderRow.state.in_(_OPEN_CALLBACK_STATES)
                )
            elif scope == "pool":
                query = query.where(WorkOrderRow.seat_id.is_(None)).where(
                    WorkOrderRow.state.in_(_POOL_STATES)
                )
            else:
                query = query.where(WorkOrderRow.state.in_(_OPEN_CALLBACK_STATES))
            query = query.order_by(WorkOrderRow.due_at, WorkOrderRow.number).limit(limit)
            with self._sessions() as session:
                rows = list(session.scalars(query).all())
                ids = [r.id for r in rows]
                outcomes: dict[str, dict[str, Any]] = {}
                if ids:
                    for h in session.scalars(
                        select(WorkOrderHistoryRow)
                        .where(WorkOrderHistoryRow.order_id.in_(ids))
                        .where(
                            WorkOrderHistoryRow.type.in_(
                                (
                                    EventType.WORKORDER_CALLBACK_OUTCOME,
                                    EventType.WORKORDER_CALLBACK_REQUESTED,
                                )
                            )
                        )
                        .order_by(WorkOrderHistoryRow.id)
                    ).all():
                        outcomes[h.order_id] = {
                            "type": h.type, "at": h.at.isoformat(), "data": h.data or {}
                        }  # fmt: skip
                messages: dict[str, str] = {}
                calls = [r.call_id for r in rows if r.source == "voice_message" and r.call_id]
                if calls:
                    for rec in session.scalars(
                        select(RecordingRow)
                        .where(RecordingRow.call_id.in_(calls))
                        .where(RecordingRow.kind == "message")
                        .where(RecordingRow.deleted_at.is_(None))
                        .order_by(RecordingRow.created_at)
                    ).all():
                        messages[rec.call_id] = rec.id
            return rows, outcomes, messages

        rows, outcomes, messages = await asyncio.to_thread(read)
        if scope == "pool" and pool is not None:
            rows = [r for r in rows if _in_pool(r, pool)]
        items = []
        for row in rows:
            view = self._callback_json(row, outcomes.get(row.id), messages.get(row.call_id or ""))
            view["allowed_actions"] = self.allowed_actions(row, principal)
            items.append(view)
        return items

    async def assignable_seats(self) -> list[dict[str, Any]]:
        """Active seats with their skills and the topics they serve (for the assign picker)."""
        rows = await asyncio.to_thread(list_seats, self.engine)
        return [
            {
                "seat_id": r.seat_id,
                "name": r.display_name,
                "skills": sorted(r.skills or {}),
                "topics": sorted(topics_for_skills(r.skills or {}, self.skill_topics)),
            }
            for r in rows
        ]

    def _callback_json(
        self, row: WorkOrderRow, last: Mapping[str, Any] | None, recording_id: str | None
    ) -> dict[str, Any]:
        level = lc.warning_level(_core(row), self.clock(), self.sla)
        outcome = None
        if last is not None:
            if last["type"] == EventType.WORKORDER_CALLBACK_OUTCOME:
                value = str(last["data"].get("outcome") or "")
                outcome = {
                    "outcome": value,
                    "label": OUTCOME_LABELS.get(value, value),
                    "at": last["at"],
                }
            else:  # asked, no outcome yet: the phones are ringing
                outcome = {"outcome": "dialing", "label": "呼叫中", "at": last["at"]}
        audio = None
        if recording_id is not None:
            audio = f"/api/recordings/{recording_id}/audio"
        return {
            "id": row.id,
            "number": row.number,
            "call_id": row.call_id,
            "source": row.source,
            "source_label": "留言" if row.source == "voice_message" else "预约回拨",
            "state": row.state,
            "state_label": lc.STATE_LABELS[lc.State(row.state)],
            "topic": row.topic,
            "summary": row.summary,
            "caller": row.caller_masked,
            "has_caller_number": row.caller_enc is not None,
            "seat_id": row.seat_id,
            "claimed_by": row.claimed_by,
            "callbacks": row.callbacks,
            "booked_at": _iso(row.created_at),
            "due_at": _iso(row.due_at),
            "warning": level,
            "warning_label": lc.WARNING_LABELS.get(level or ""),
            "last_outcome": outcome,
            "recording_id": recording_id,
            "audio_url": audio,
        }

    async def request_callback(
        self,
        order_id: str,
        principal: Principal,
        *,
        note: str | None = None,
        seat_id: str | None = None,
    ) -> dict[str, Any]:
        """回拨: log the request and hand it to the dialer (which rings the seat, then the
        caller); ``callback_outcome`` records what happened. The seat rung is ``seat_id``
        if given, else the principal's own."""
        if seat_id is not None and (not isinstance(seat_id, str) or not 0 < len(seat_id) <= 64):
            raise Invalid("seat_id must be a seat's id", code="invalid_seat_id")
        if principal.role is WebRole.SEAT_LAWYER and seat_id not in (None, principal.seat_id):
            raise Forbidden("a seat lawyer's callback rings their own seat", code="not_your_seat")
        seat = seat_id or principal.seat_id
        row = await self._load(order_id)
        actor = self._acting_as(row, principal, lc.Action.CALLBACK)
        if self.callback_dialer is not None and not seat:
            raise Invalid(
                '回拨需要指定坐席: a callback rings a seat first: {"seat_id": "..."}',
                code="seat_required",
            )
        if row.caller_enc is None:
            raise Conflict("this order has no caller number to call back", code="no_number")
        try:
            number = self.sealer.open(row.caller_enc, row.id)
        except SealError as exc:
            raise Conflict(f"the caller number cannot be opened: {exc}", code="sealed") from exc
        now = self.clock()
        data = _event_data(row, actor, now, "callback_requested", seat_id=seat)
        if note:
            data["note"] = redact(note)[:2000]
        await self._record(row, EventType.WORKORDER_CALLBACK_REQUESTED, actor, now, data)
        self._callback_by[row.id] = principal
        if self.callback_dialer is not None:
            view = await self._view(row)
            task = asyncio.create_task(self.callback_dialer(view, seat, number))
            task.add_done_callback(_log_failure)
        return await self.get(order_id, principal)

    async def callback_outcome(self, order_id: str, outcome: str) -> dict[str, Any]:
        """The dialer's report: ``answered`` moves a claimed order to in progress (as the
        person who asked), anything else is only logged."""
        row = await self._load(order_id)
        principal = self._callback_by.pop(row.id, None)
        now = self.clock()
        data = _event_data(row, _SYSTEM, now, "callback_outcome", outcome=outcome)
        await self._record(row, EventType.WORKORDER_CALLBACK_OUTCOME, _SYSTEM, now, data)
        if outcome == "answered" and principal is not None:
            with contextlib.suppress(WorkOrderProblem):
                await self._transition(
                    row.id, principal, lc.Action.CALLBACK, {"outcome": outcome, "via": "system"}
                )
        return await self._view(await self._load(order_id))

    async def caller_number(self, order_id: str, principal: Principal) -> str | None:
        """The clear caller number for a callback (not exposed over HTTP)."""
        row = await self._load(order_id)
        self._acting_as(row, principal, lc.Action.CALLBACK)
        return self.sealer.open(row.caller_enc, row.id) if row.caller_enc else None

    # -- SLA warnings ---------------------------------------------------------------------------
    async def _sla_loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval)
            try:
                await self.check_sla()
            except Exception:
                log.exception("SLA check failed; will retry")

    async def check_sla(self, now: datetime | None = None) -> list[lc.SlaWarning]:
        """Raise every new near-due / overdue warning once (``workorder.warning``)."""
        now = now or self.clock()

        def write() -> list[tuple[WorkOrderRow, lc.SlaWarning, dict[str, Any]]]:
            raised = []
            with self._sessions.begin() as session:
                rows = session.scalars(
                    select(WorkOrderRow)
                    .where(WorkOrderRow.state.in_([s.value for s in lc.OPEN_STATES]))
                    .with_for_update()
                ).all()
                by_id = {r.id: r for r in rows}
                for warning in lc.warnings([_core(r) for r in rows], now, self.sla):
                    row = by_id[warning.order_id]
                    transition = lc.record_warning(_core(row), warning, now)
                    row.warning = transition.order.warned
                    data = {**transition.log.data, "number": row.number, "seat_id": row.seat_id}
                    _history(session, row, transition.log.type, _SYSTEM, now, data)
                    raised.append((row, warning, data))
            return raised

        async with self._lock:
            raised = await asyncio.to_thread(write)
        for row, _, data in raised:
            await self._append(row, EventType.WORKORDER_WARNING, data)
        return [w for _, w, _ in raised]

    # -- the IVR's progress query (menu 9) ------------------------------------------------------
    async def status_for_number(
        self, number: str, *, call_id: str | None = None
    ) -> tuple[str | None, tuple[str, ...]]:
        """(state, prompt ids) for what a caller typed; (None, ("workorder_not_found",))."""
        wanted = parse_number(number)
        row = None
        if wanted is not None:

            def read() -> WorkOrderRow | None:
                with self._sessions() as session:
                    return session.scalars(
                        select(WorkOrderRow).where(WorkOrderRow.number == wanted)
                    ).first()

            row = await asyncio.to_thread(read)
        state = row.state if row is not None else None
        prompts = (f"workorder_status_{state}",) if state else ("workorder_not_found",)
        if call_id is not None:
            data = {"number": wanted or "", "found": row is not None, "state": state}
            if row is not None:
                data["order_id"] = row.id
            await self._ensure_seq(call_id)
            self.event_log.append(call_id, EventType.WORKORDER_STATUS_QUERIED, data)
        return state, prompts

    # -- writing to the log ---------------------------------------------------------------------
    async def _ensure_seq(self, call_id: str) -> None:
        # A call this process no longer counts (old call, restart): continue after the
        # stored events, or the new event would reuse a seq and be dropped as a replay.
        if self.event_log.last_seq(call_id) == 0:
            await self.event_log.resume_call(call_id)

    async def _append(self, row: WorkOrderRow, type_: str, data: dict[str, Any]) -> None:
        call_id = row.call_id or f"workorder:{row.id}"
        await self._ensure_seq(call_id)
        self.event_log.append(call_id, type_, data)

    async def _record(
        self, row: WorkOrderRow, type_: str, actor: lc.Actor, now: datetime, data: dict[str, Any]
    ) -> None:
        def write() -> None:
            with self._sessions.begin() as session:
                _history(session, row, type_, actor, now, data)

        await asyncio.to_thread(write)
        await self._append(row, type_, data)

    async def _link_unlinked(self) -> None:
        """Partner orders stored while their event was lost (crash) become orders at start."""
        try:
            for order in await self.integrations.unlinked_orders():
                payload = order.get("payload") or {}
                await self.create_for_partner(
                    {
                        "order_id": order["id"],
                        "partner": order.get("partner"),
                        "case_id": order.get("case_id"),
                        "title": payload.get("title", ""),
                        "urgency": payload.get("urgency"),
                        "call_id": payload.get("call_id"),
                    }
                )
        except Exception:
            log.exception("could not pick up unlinked partner orders")


# --- helpers ------------------------------------------------------------------------------------
_SYSTEM = lc.Actor("system", lc.Role.SYSTEM)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("callback dialer failed", exc_info=task.exception())


def _existing(
    session: Session, source: str, call_id: str | None, external_ref: str | None
) -> WorkOrderRow | None:
    if external_ref is not None:
        query = select(WorkOrderRow).where(WorkOrderRow.external_ref == external_ref)
    elif call_id is not None and source != "manual":
        query = (
            select(WorkOrderRow)
            .where(WorkOrderRow.call_id == call_id)
            .where(WorkOrderRow.source == source)
        )
    else:
        return None
    return session.scalars(query).first()


def _next_number(session: Session, now: datetime) -> str:
    """The next number of the day (Asia/Shanghai), counted in this transaction."""
    day = now.astimezone(SHANGHAI).date()
    key = f"{day:%Y%m%d}"
    # Write first, so SQLite takes its write lock at once (no read-then-write upgrade).
    result = session.execute(
        update(WorkOrderCounterRow)
        .where(WorkOrderCounterRow.day == key)
        .values(last=WorkOrderCounterRow.last + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 0:
        # Start after any number already used that day (a counter row lost in a restore).
        used = session.scalar(
            select(func.count())
            .select_from(WorkOrderRow)
            .where(WorkOrderRow.number.like(f"GD{key}-%"))
        )
        session.add(WorkOrderCounterRow(day=key, last=int(used or 0) + 1))
        session.flush()
    last = session.scalar(select(WorkOrderCounterRow.last).where(WorkOrderCounterRow.day == key))
    return number_for(day, int(last))


def _core(row: WorkOrderRow) -> lc.WorkOrder:
    target = None
    if row.dispatch_unit:
        target = lc.Target(
            lc.TargetKind(row.dispatch_kind or "agency"), row.dispatch_unit, row.dispatch_name or ""
        )
    core_source = (
        row.source if row.source in ("call", "voice_message", "callback_request") else "call"
    )
    return lc.WorkOrder(
        id=row.id,
        topic=row.topic,
        created_at=row.created_at,
        due_at=row.due_at,
        state=lc.State(row.state),
        call_id=row.call_id,
        source=core_source,
        dispatched_to=target,
        claimed_by=row.claimed_by,
        callbacks=row.callbacks,
        clock_started_at=row.clock_started_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        reopen_count=row.reopen_count,
        warned=row.warning,
        updated_at=row.updated_at,
        seat_id=row.seat_id,
    )


def _store_core(row: WorkOrderRow, order: lc.WorkOrder) -> None:
    row.state = order.state.value
    row.topic = order.topic
    row.created_at = order.created_at
    row.due_at = order.due_at
    row.clock_started_at = order.clock_started_at or order.created_at
    row.claimed_by = order.claimed_by
    row.callbacks = order.callbacks
    row.resolved_at = order.resolved_at
    row.closed_at = order.closed_at
    row.reopen_count = order.reopen_count
    row.warning = order.warned
    row.updated_at = order.updated_at or order.created_at
    target = order.dispatched_to
    row.dispatch_kind = target.kind.value if target else None
    row.dispatch_unit = target.unit_id if target else None
    row.dispatch_name = target.name if target else None
    if order.seat_id is not None:  # only ``assign`` moves an order to a seat
        row.seat_id = order.seat_id


def _history(
    session: Session,
    row: WorkOrderRow,
    type_: str,
    actor: lc.Actor,
    at: datetime,
    data: dict[str, Any],
) -> None:
    session.add(
        WorkOrderHistoryRow(
            order_id=row.id,
            at=at,
            type=str(type_),
            actor=actor.id,
            role=actor.role.value,
            data=json.loads(json.dumps(data, ensure_ascii=False, default=str)),
        )
    )


def _event_data(
    row: WorkOrderRow, actor: lc.Actor, now: datetime, action: str, **extra: Any
) -> dict[str, Any]:
    return {
        "order_id": row.id,
        "number": row.number,
        "call_id": row.call_id,
        "seat_id": row.seat_id,
        "action": action,
        "actor": actor.id,
        "role": actor.role.value,
        "at": now.isoformat(),
        **extra,
    }


def topics_for_skills(
    skills: Mapping[str, Any], skill_topics: Mapping[str, frozenset[str]] = SKILL_TOPICS
) -> frozenset[str]:
    """The work-order topics a seat with ``skills`` may claim callbacks of."""
    served = frozenset().union(*skill_topics.values()) if skill_topics else frozenset()
    unserved = frozenset(TOPICS) - served
    mine: set[str] = set(unserved)
    for skill in skills:
        mine |= skill_topics.get(skill, frozenset())
    return frozenset(mine)


def _in_pool(row: WorkOrderRow, pool: frozenset[str]) -> bool:
    return (
        row.source in lc.CALLBACK_SOURCES
        and row.seat_id is None
        and row.state in _POOL_STATES
        and row.topic in pool
    )


def _target(value: Any) -> lc.Target:
    if isinstance(value, str) and value.strip():
        return lc.Target(lc.TargetKind.AGENCY, value.strip()[:64], value.strip()[:128])
    if isinstance(value, Mapping) and value.get("unit_id"):
        try:
            kind = lc.TargetKind(value.get("kind") or "agency")
        except ValueError as exc:
            raise Invalid(
                f"target kind must be one of {[k.value for k in lc.TargetKind]}",
                code="invalid_target",
            ) from exc
        return lc.Target(kind, str(value["unit_id"])[:64], str(value.get("name") or "")[:128])
    raise Invalid(
        'dispatch needs a target: {"target": {"kind": "agency", "unit_id": ..., '
        '"name": ...}} or {"target": "<unit>"}',
        code="target_required",
    )


def _fields_json(found: Any) -> dict[str, Any]:
    return {
        "phones": [p.masked for p in found.phones],
        "amounts": [
            {"value": str(a.value), "text": a.text, "approximate": a.approximate}
            for a in found.amounts
        ],
        "dates": [
            {"text": d.text, "iso": d.iso, "year_assumed": d.year_assumed, "relative": d.relative}
            for d in found.dates
        ],
        "id_cards": list(found.id_cards),
    }


def _seal_contacts(sealer: Sealer, found: Any, order_id: str) -> str | None:
    if found is None or not found.phones:
        return None
    return sealer.seal(json.dumps([p.number for p in found.phones]), order_id)


def _redacted(value: Any) -> Any:
    """Phone and identity-card numbers masked in every string of a JSON value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _redacted(v) for k, v in value.items()}
    return value


def _transcripts(engine: Engine, call_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Stored transcript segments per call, phone and identity numbers masked."""
    ids = sorted({c for c in call_ids if c})
    if not ids:
        return {}
    table = TranscriptSegmentRow.__table__
    with engine.connect() as conn:
        rows = conn.execute(
            select(table)
            .where(table.c.call_id.in_(ids))
            .order_by(table.c.call_id, table.c.start_s, table.c.id)
        ).all()
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r.call_id, []).append(
            {
                "speaker": r.speaker,
                "start_s": r.start_s,
                "end_s": r.end_s,
                "text": redact(r.text),
                "source": r.source,
            }
        )
    return out
