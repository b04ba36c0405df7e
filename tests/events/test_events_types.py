"""The event vocabulary and the CallEvent value."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime

import pytest

from hotline.events import CallEvent, EventType, HangupBy, UnknownEventType, parse_event_type


def test_event_types_are_dotted_lowercase_names() -> None:
    for member in EventType:
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*\.[a-z]+(_[a-z]+)*", member.value), member
        assert member.name == member.value.upper().replace(".", "_")
    assert {"call.entered", "call.rejected", "call.answered", "call.ended"} <= set(EventType)
    assert {"prompt.started", "prompt.finished", "service.reconciled"} <= set(EventType)
    assert set(HangupBy) == {"caller", "system", "seat", "partner"}


def test_parse_event_type() -> None:
    assert parse_event_type("call.ended") is EventType.CALL_ENDED
    with pytest.raises(UnknownEventType, match=r"'call\.endd'") as info:
        parse_event_type("call.endd")
    assert isinstance(info.value, ValueError)


def test_call_event_json_round_trip_and_frozen() -> None:
    event = CallEvent("c1", 3, datetime(2025, 1, 1, tzinfo=UTC), EventType.CALL_ENTERED, {"a": 1})
    assert CallEvent.from_json(event.to_json()) == event
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.seq = 4  # type: ignore[misc]
    future = CallEvent.from_json({**event.to_json(), "type": "robot.spoke"})
    assert future.type == "robot.spoke"  # a newer type read by older code is kept as text
