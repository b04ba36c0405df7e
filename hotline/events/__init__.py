"""Call events: the types, the call-event log (the one writer of ``call_events``) and the
in-process event bus for live views."""

from hotline.events.bus import EventBus, Subscription
from hotline.events.log import (
    CallEventLog,
    EventLogClosed,
    LogStats,
    calls_between,
    events_between,
    events_for_call,
    insert_events,
    max_seq,
)
from hotline.events.types import (
    CallEvent,
    EventType,
    HangupBy,
    InvalidEventData,
    UnknownEventType,
    parse_event_type,
)

__all__ = [
    "CallEvent",
    "CallEventLog",
    "EventBus",
    "EventLogClosed",
    "EventType",
    "HangupBy",
    "InvalidEventData",
    "LogStats",
    "Subscription",
    "UnknownEventType",
    "calls_between",
    "events_between",
    "events_for_call",
    "insert_events",
    "max_seq",
    "parse_event_type",
]
