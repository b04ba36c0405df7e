"""Call-event types: the one flat vocabulary of the call-event log.

Every step of a call is a ``CallEvent``: ``(call_id, seq, ts, type, data)``. ``seq`` counts
1, 2, 3 ... per call and orders the call's events; ``ts`` is UTC; ``data`` is a JSON object.

``EventType`` is ONE flat ``StrEnum`` of dotted names ``<area>.<what happened>`` (past tense).
Feature packages add their members here (``ivr.*``, ``queue.*``, ``seat.*``, ``survey.*``,
``recording.*``, ``transcript.*``, ``workorder.*``), each with a comment naming its ``data``
keys, so that KPIs, reports and the party archive can rely on them. The log refuses a type that
is not a member (``UnknownEventType``): a typo must fail in the test that makes it, not silently
create a new kind of row that no report counts. ``REQUIRED_DATA`` lists keys that must be
present in ``data``; add an entry when a report depends on a key.

Service-wide events (``service.*``) are logged under a pseudo call id ``service:<boot id>``
(see ``CallEventLog.service_call_id``), so they never collide with a real call's sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    # --- call lifecycle -------------------------------------------------------------------
    # data: caller (masked where shown), called (service number), channel, via ("direct" |
    # "110" | "12345" | ...), trunk
    CALL_ENTERED = "call.entered"
    # data: reason (e.g. "unknown_number", "answer_failed", "overload"), cause
    CALL_REJECTED = "call.rejected"
    # The caller's channel was answered by the service (not a seat: see seat.* / queue.*).
    # data: channel
    CALL_ANSWERED = "call.answered"
    # data: hangup_by (HangupBy), cause (Q.850 int), cause_txt
    CALL_ENDED = "call.ended"

    # --- prompts --------------------------------------------------------------------------
    # data: prompt (catalogue id), playback (ARI playback id)
    PROMPT_STARTED = "prompt.started"
    # data: prompt, playback, state ("done" | "failed" | "stopped")
    PROMPT_FINISHED = "prompt.finished"

    # --- IVR (ivr.interpreter: every step of the caller's path; keys masked when sensitive) ----
    IVR_CALL_STARTED = "ivr.call_started"  # flow, caller (masked), is_repeat, special_group, ...
    IVR_NODE_ENTERED = "ivr.node_entered"  # node, node_type
    IVR_PROMPT_PLAYED = "ivr.prompt_played"  # node, prompts, languages, interruptible
    IVR_BARGE_IN = "ivr.barge_in"  # node
    IVR_INPUT = "ivr.input"  # node, kind, digit (masked when sensitive), timer
    IVR_IGNORED = "ivr.ignored"  # node, kind
    IVR_CHOICE = "ivr.choice"  # node, choice, target
    IVR_INVALID = "ivr.invalid"  # node, reason, failures
    IVR_COLLECTED = "ivr.collected"  # node, variable, length, value (masked when sensitive)
    IVR_LANGUAGE = "ivr.language"  # language, chosen_by
    IVR_ACTION = "ivr.action"  # node, action (queue|transfer|record|callback|lookup), arguments
    IVR_ACTION_FAILED = "ivr.action_failed"  # node, action, reason
    IVR_OUTCOME = "ivr.outcome"  # outcome, node, data

    # --- ACD (acd.core's queue_log equivalents; call events under the caller's call id) --------
    QUEUE_ENTERED = "queue.entered"  # queue, priority, position, origin
    QUEUE_OFFERED = "queue.offered"  # queue, seat_id, ring_timeout, attempt
    QUEUE_NO_ANSWER = "queue.no_answer"  # queue, seat_id, why (no_answer|busy|rejected|error)
    QUEUE_CONNECTED = "queue.connected"  # queue, seat_id, wait
    QUEUE_ABANDONED = "queue.abandoned"  # queue, position, wait, ringing
    QUEUE_COMPLETED = "queue.completed"  # queue, seat_id, by (caller|seat), talk
    QUEUE_TRANSFERRED = "queue.transferred"  # from_queue, to_queue or seat_id
    QUEUE_OVERFLOWED = "queue.overflowed"  # from_queue, to_queue, wait
    QUEUE_LEFT = "queue.left"  # queue, reason, action (message|callback|hangup)
    CALLBACK_REQUESTED = "callback.requested"  # queue, position
    CALLBACK_PLACED = "callback.placed"  # seat_id, attempt
    CALLBACK_FAILED = "callback.failed"  # attempt, final
    # Consultation and three-way calls (not queue.transferred: KPI talk time stays with the seat)
    TRANSFER_CONSULT_STARTED = "transfer.consult_started"  # seat_id, to
    TRANSFER_CONSULT_ENDED = "transfer.consult_ended"  # why (completed|cancelled|...)
    CONFERENCE_INVITED = "conference.invited"  # seat_id, to
    # Hold (保持) from the desk: the caller hears music on hold, out of the conversation.
    CALL_HELD = "call.held"  # seat_id, by (user id)
    CALL_RESUMED = "call.resumed"  # seat_id, held_s, why (resumed|rebuilt|call_ended|...), by
    # Supervisors on a call (监听 / 密语 / 强插), owner acd/supervision.py: the audit of who
    # listened. mode: monitor|whisper|barge; supervisor: the desk user id; phone: its seat id
    SUPERVISION_STARTED = "supervision.started"  # seat_id, mode, supervisor, phone
    SUPERVISION_MODE_CHANGED = "supervision.mode_changed"  # seat_id, mode, from, supervisor
    SUPERVISION_ENDED = "supervision.ended"  # mode, supervisor, why, by, duration_s
    SUPERVISION_FAILED = "supervision.failed"  # mode, supervisor, phone, why
    # Seat events are logged under the pseudo call id "seat:<seat_id>".
    SEAT_STATE_CHANGED = "seat.state_changed"  # seat_id, from, to, reason, call_id
    SEAT_LOGIN = "seat.login"  # seat_id, region
    SEAT_LOGOUT = "seat.logout"  # seat_id
    # A supervisor set another seat's state from the wallboard (强制置态). data: seat_id,
    # action (ready|pause|logout|login|wrapup-done), reason, by (user id), by_role
    SEAT_FORCED = "seat.forced"

    # --- messages and callbacks booked in the IVR -------------------------------------------
    MESSAGE_RECORDED = "message.recorded"  # recording, duration_s, topic
    CALLBACK_BOOKED = "callback.booked"  # topic, caller_key

    # --- satisfaction survey (满意度评价), one per answered call -------------------------------
    SURVEY_OFFERED = "survey.offered"  # seat
    SURVEY_INVALID = "survey.invalid"  # digit
    SURVEY_ANSWERED = "survey.answered"  # rating: satisfied|basically_satisfied|dissatisfied
    SURVEY_NOT_RATED = "survey.not_rated"  # reason: timeout|invalid|hangup

    # --- KPI (kpi/): alerts, quality inspection (质检), follow-up of dissatisfied callers ---
    # Alerts are service-wide (logged under the service pseudo call id).
    # data: alert (answer_rate|satisfaction|service_level|longest_wait), value, target,
    # scope ("hotline" or a queue), calls (how many calls the value is over)
    KPI_ALERT_RAISED = "kpi.alert_raised"
    # data: alert, value, target, scope, raised_at
    KPI_ALERT_CLEARED = "kpi.alert_cleared"
    # Logged under the call's own id, so the KPI deriver sees them with the call.
    QA_SAMPLED = "qa.sampled"  # seat, period (e.g. 2026-10), share
    QA_SCORED = "qa.scored"  # score (0..100), comment, inspector
    FOLLOWUP_OPENED = "followup.opened"  # seat, reason ("dissatisfied")
    FOLLOWUP_UPDATED = "followup.updated"  # status (open|contacted|unreachable|closed), note, by

    # ===== recordings and transcripts (owner: recordings/) ================================
    # A recording started on a bridge or channel. data: name (Asterisk recording name),
    # kind ("call" | "message"), target ("bridge:<id>" | "channel:<id>")
    RECORDING_STARTED = "recording.started"
    # The file is encrypted at rest and its row written. data: recording_id, kind, sha256
    # (of the clear WAV), size, duration_s, key_id
    RECORDING_STORED = "recording.stored"
    # A recording could not be made or stored. data: name, reason
    RECORDING_FAILED = "recording.failed"
    # Someone listened to / downloaded a recording or read a transcript (the audit table has
    # the full record). data: recording_id (or null), action, principal, role, reason, outcome
    RECORDING_ACCESSED = "recording.accessed"
    # Retention removed a file. data: item_id, kind, path, stored_at, retention_days,
    # expired_at, purged_at
    RECORDING_PURGED = "recording.purged"
    # Live transcription of one party started. data: speaker ("caller" | "seat"), stream
    TRANSCRIPT_STARTED = "transcript.started"
    # Bus only, never logged (seq 0): the recogniser's current guess. data: speaker, text
    TRANSCRIPT_PARTIAL = "transcript.partial"
    # One final segment. data: speaker ("caller" | "seat" | "mixed"), start_s, end_s, text,
    # source ("live" | "post_call"), recording_id (post_call only)
    TRANSCRIPT_SEGMENT = "transcript.segment"
    # Live transcription was not possible for a party; the call is transcribed from its
    # recording after it ends. data: speaker, reason ("saturated" | "no_model" |
    # "tap_failed" | "worker_failed")
    TRANSCRIPT_DEFERRED = "transcript.deferred"
    # A transcription stream finished. data: speaker, source, segments, audio_s,
    # recording_id (post_call only)
    TRANSCRIPT_COMPLETED = "transcript.completed"
    # Post-call transcription failed for good (after retries). data: recording_id, reason
    TRANSCRIPT_FAILED = "transcript.failed"
    # ===== end of recordings and transcripts ================================================

    # ===== partner integration (owner: integrations/) ========================================
    # A partner (110, 12345, ...) pushed a work order and it is stored; the work-order package
    # makes it one of ours. Logged under the pseudo call id "integration:<order_id>".
    # data: order_id (our id, pwo_...), partner, case_id (the partner's reference), title,
    # urgency ("normal" | "urgent"), call_id (the linked call, or null)
    INTEGRATION_WORKORDER_RECEIVED = "integration.workorder_received"
    # A call left for a partner hotline through its SIP trunk (integrations.trunks).
    # data: partner, mode ("blind" | "consult" | "ivr" | "back_to_partner"), seat_id, reference
    # (our work-order number or call id, sent in a header), headers (names sent), node (IVR)
    PARTNER_TRANSFERRED = "partner.transferred"
    # A transferred-in call no seat answered within the partner's answer_timeout_s.
    # data: partner, fallback ("overflow" | "callback" | "back_to_partner"), queue, to_queue,
    # result ("done" | "failed" | ...)
    PARTNER_FALLBACK = "partner.fallback"
    # The caller's live speech contained a configured emergency word (integrations.emergency);
    # once per call, the seat's desk then offers a transfer to the partner. data: words (as
    # configured), speaker ("caller"), source ("partial" | "segment"), partner ("110"), text
    EMERGENCY_SUSPECTED = "emergency.suspected"
    # ===== end of partner integration =======================================================

    # ===== work orders (owner: workorders/) ==================================================
    # Logged under the order's call id, or "workorder:<order id>" for an order without a call
    # (partner orders). Every event has order_id, number, actor, role, at; lifecycle events
    # (workorders.lifecycle) also from, to, and the action's details. Never a clear number.
    # A draft was made. data: + source (call|voice_message|callback_request|integration|
    # manual), topic, ivr_topic, confidence, due_at, seat_id, caller_key
    WORKORDER_CREATE = "workorder.create"
    # Transcript, topic, fields and summary filled in by the system from the transcript.
    # data: + topic, confidence, evidence, segments, due_at
    WORKORDER_UPDATED = "workorder.updated"
    # A person changed the content. data: + changed (list of keys), topic, previous_topic
    WORKORDER_EDIT = "workorder.edit"
    WORKORDER_SUBMIT = "workorder.submit"  # + from, to
    WORKORDER_DISPATCH = "workorder.dispatch"  # + target {kind, unit_id, name}, note
    WORKORDER_CLAIM = "workorder.claim"  # + from, to
    WORKORDER_RETURN = "workorder.return"  # + reason
    WORKORDER_CALLBACK = "workorder.callback"  # + callbacks (count): the handler called back
    WORKORDER_RESOLVE = "workorder.resolve"  # + note
    WORKORDER_REVIEW = "workorder.review"  # + note
    WORKORDER_CLOSE = "workorder.close"  # + note
    WORKORDER_REOPEN = "workorder.reopen"  # + reason, due_at
    WORKORDER_NOTE = "workorder.note"  # + text
    # A callback request / voice message put at a seat. data: + seat_id, previous_seat_id,
    # assignee, kind (claim: the seat lawyer took it | assign: a supervisor gave it)
    WORKORDER_ASSIGN = "workorder.assign"
    # SLA warning (预警). data: + level (near_due|overdue), label, state, topic, due_at,
    # remaining_s, dispatched_to
    WORKORDER_WARNING = "workorder.warning"
    # A handler asked the system to call the caller back (回拨). data: + seat_id
    WORKORDER_CALLBACK_REQUESTED = "workorder.callback_requested"
    # What became of that callback. data: + outcome (answered|no_answer|failed), seat_id
    WORKORDER_CALLBACK_OUTCOME = "workorder.callback_outcome"
    # A caller asked for an order's progress in the IVR (menu 9). data: number (as typed),
    # found, state
    WORKORDER_STATUS_QUERIED = "workorder.status_queried"
    # ===== end of work orders ================================================================

    # --- service --------------------------------------------------------------------------
    # After (re)connecting to Asterisk: what was found and what was done with it.
    # data: adopted (list of call ids), cleaned (list of channel/bridge ids)
    SERVICE_RECONCILED = "service.reconciled"


class HangupBy(StrEnum):
    """Who ended the call (``call.ended`` data ``hangup_by``)."""

    CALLER = "caller"
    SYSTEM = "system"
    SEAT = "seat"
    PARTNER = "partner"  # the 110/12345 side of a linked call


# Keys a report relies on; checked by the log when the event is appended.
REQUIRED_DATA: dict[EventType, frozenset[str]] = {
    EventType.CALL_ENDED: frozenset({"hangup_by"}),
    # recordings and transcripts (owner: recordings/)
    EventType.RECORDING_STORED: frozenset({"recording_id", "kind", "sha256"}),
    EventType.RECORDING_PURGED: frozenset({"item_id", "kind"}),
    EventType.TRANSCRIPT_SEGMENT: frozenset({"speaker", "start_s", "end_s", "text", "source"}),
    EventType.TRANSCRIPT_DEFERRED: frozenset({"speaker", "reason"}),
    # partner integration (owner: integrations/)
    EventType.EMERGENCY_SUSPECTED: frozenset({"words", "speaker", "source"}),
    # work orders (owner: workorders/): every change names the order, who and when
    **{
        t: frozenset({"order_id", "actor", "at"})
        for t in EventType
        if t.startswith("workorder.") and t != "workorder.status_queried"
    },
}

# Keys whose values must come from a fixed set.
ALLOWED_VALUES: dict[tuple[EventType, str], frozenset[str]] = {
    (EventType.CALL_ENDED, "hangup_by"): frozenset(HangupBy),
}


class UnknownEventType(ValueError):
    """An event type that is not a member of ``EventType``."""

    def __init__(self, value: object) -> None:
        super().__init__(
            f"unknown call-event type {value!r}: add it to hotline.events.types.EventType "
            f"(known areas: {', '.join(sorted({t.split('.')[0] for t in EventType}))})"
        )
        self.value = value


class InvalidEventData(ValueError):
    """Event data that is not a JSON object or lacks a key its type requires."""


def parse_event_type(value: str | EventType) -> EventType:
    """The ``EventType`` for ``value``; raises ``UnknownEventType`` for anything else."""
    try:
        return EventType(value)
    except ValueError:
        raise UnknownEventType(value) from None


def check_data(type_: EventType, data: Mapping[str, Any]) -> None:
    """Raise ``InvalidEventData`` if ``data`` lacks a key or value ``type_`` requires."""
    missing = REQUIRED_DATA.get(type_, frozenset()) - data.keys()
    if missing:
        raise InvalidEventData(f"{type_} needs data keys {sorted(missing)}; got {sorted(data)}")
    for (t, key), allowed in ALLOWED_VALUES.items():
        if t is type_ and key in data and data[key] not in allowed:
            raise InvalidEventData(
                f"{type_} data {key}={data[key]!r} is not one of {sorted(allowed)}"
            )


@dataclass(frozen=True, slots=True)
class CallEvent:
    """One step of one call, as appended to (and read back from) the call-event log.

    ``type`` is an ``EventType``; rows read back from the database whose type this version
    does not know keep the raw string, so an older reader never fails on a newer table.
    Treat ``data`` as read-only: the same dict goes to every bus subscriber and to the writer.
    """

    call_id: str
    seq: int
    ts: datetime
    type: EventType | str
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (ISO-8601 UTC timestamp), as pushed to WebSockets and spooled."""
        return {
            "call_id": self.call_id,
            "seq": self.seq,
            "ts": self.ts.isoformat(),
            "type": str(self.type),
            "data": self.data,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> CallEvent:
        type_: EventType | str
        try:
            type_ = EventType(obj["type"])
        except ValueError:
            type_ = str(obj["type"])
        return cls(
            call_id=str(obj["call_id"]),
            seq=int(obj["seq"]),
            ts=datetime.fromisoformat(obj["ts"]),
            type=type_,
            data=dict(obj.get("data") or {}),
        )
