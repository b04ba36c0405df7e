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
    # data: reason (e.g. "overload", "closed", "blocked"), cause
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
    IVR_ACTION = "ivr.action"  # node, action (queue|transfer|record|callback), arguments
    IVR_ACTION_FAILED = "ivr.action_failed"  # node, action, reason
    IVR_OUTCOME = "ivr.outcome"  # outcome, node, data

    # --- messages and callbacks booked in the IVR -------------------------------------------
    MESSAGE_RECORDED = "message.recorded"  # recording, duration_s, topic
    CALLBACK_BOOKED = "callback.booked"  # topic, caller_key

    # --- satisfaction survey (满意度评价), one per answered call -------------------------------
    SURVEY_OFFERED = "survey.offered"  # seat
    SURVEY_INVALID = "survey.invalid"  # digit
    SURVEY_ANSWERED = "survey.answered"  # rating: satisfied|basically_satisfied|dissatisfied
    SURVEY_NOT_RATED = "survey.not_rated"  # reason: timeout|invalid|hangup

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
