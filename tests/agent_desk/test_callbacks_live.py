"""Live events of the callback list: a work order held at a seat (an assigned callback whose
call never reached that seat) reaches that seat's desk, and no other seat's."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from agent_desk.live import LiveHub
from hotline.events.types import CallEvent
from hotline.web import Principal, Role


def ev(call_id: str, seq: int, type_: str, /, **data: Any) -> CallEvent:
    return CallEvent(call_id, seq, datetime(2026, 11, 21, 2, 0, seq, tzinfo=UTC), type_, data)


def drain(client: Any) -> list[dict]:
    out = list(client.outbox)
    client.outbox.clear()
    return out


def test_work_order_events_of_an_assigned_callback_reach_only_the_holding_seat() -> None:
    hub = LiveHub()
    mine = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    other = hub.connect(Principal("lawyer2", Role.SEAT_LAWYER, seat_id="s102"))
    seatless = hub.connect(Principal("x", Role.SEAT_LAWYER, seat_id=None))
    boss = hub.connect(Principal("super", Role.SUPERVISOR))
    for client in (mine, other, seatless, boss):
        drain(client)
    # The after-hours call that booked the callback: no seat ever had it.
    hub.ingest(ev("b1", 1, "call.entered", caller="13700002222", dialled="12348"))
    hub.ingest(ev("b1", 2, "callback.booked", topic="劳动争议"))
    hub.ingest(ev("b1", 3, "call.ended", outcome="callback"))
    hub.ingest(ev("b1", 4, "workorder.create", order_id="o1", number="GD20261121-0001",
                  seat_id=None, source="callback_request"))  # fmt: skip
    for client in (mine, other, seatless):
        assert drain(client) == []
    assert len(drain(boss)) == 4

    hub.ingest(ev("b1", 5, "workorder.assign", order_id="o1", number="GD20261121-0001",
                  seat_id="s101", previous_seat_id=None, actor="super"))  # fmt: skip
    hub.ingest(ev("b1", 6, "workorder.callback_outcome", order_id="o1", seat_id="s101",
                  outcome="no_answer"))  # fmt: skip
    got = drain(mine)
    assert [m["event"]["type"] for m in got] == ["workorder.assign", "workorder.callback_outcome"]
    assert got[0]["event"]["data"]["number"] == "GD20261121-0001"  # an order number, unmasked
    assert "13700002222" not in json.dumps(got, ensure_ascii=False)
    assert drain(other) == [] and drain(seatless) == []
    # Other events of that call are still not the seat's.
    hub.ingest(ev("b1", 7, "survey.answered", score=1, seat_id=None))
    assert drain(mine) == []
