"""Work-order callback (工单回拨), end to end: the handler asks for it on a claimed order, the
system rings the seat's phone first, then dials the caller through the carrier trunk and bridges
them; the outcome is logged on the order.

The carrier's side is a pjsua2 phone listening on ``asterisk.carrier_contact`` (as in
``test_acd_callback``): an INVITE to it whose request URI carries the caller's number is the
callback reaching the caller. The caller's number is known to the order because the order was
made from a real call (the IVR hands the number to the work-order service, which seals it).
"""

from __future__ import annotations

import pytest

from hotline.privacy import mask_number
from hotline.testing import free_port, wait_for
from sim.phone import Phone

from .test_acd_transfer import (
    HEARD,
    add_seat,
    listen,
    logged,
    score,
    speech,
    uri_for,
    wait_seat,
)
from .test_first_call import new_caller

pytestmark = pytest.mark.e2e


@pytest.fixture
def carrier_service(hotline_service):
    """The service with an outbound carrier contact (the callback route); restored after."""
    port = free_port("udp")
    hotline_service.restart_with(asterisk={"carrier_contact": f"sip:127.0.0.1:{port}"})
    hotline_service.carrier_port = port
    try:
        yield hotline_service
    finally:
        hotline_service.restart_with(asterisk={"carrier_contact": None})


def act(service, order_id: str, action: str, body: dict | None = None) -> dict:
    status, order = service.api("POST", f"/api/workorders/{order_id}/actions/{action}", body or {})
    assert status == 200, (action, order)
    return order


def history(service, order_id: str) -> list[dict]:
    status, order = service.api("GET", f"/api/workorders/{order_id}")
    assert status == 200, order
    return order["history"]


async def test_workorder_callback_rings_the_seat_first_then_the_caller(carrier_service, tmp_path):
    service = carrier_service
    callee_says = speech(tmp_path / "callee.wav", "喂，您好，我是来电人，工单回拨收到了。")
    seat_id, password = add_seat(service, "wo_cb_seat", "general_law:2")
    caller = new_caller()
    masked = mask_number(caller)
    async with (
        Phone.start(seat_id, registrar=service.registrar, user=seat_id, password=password) as seat,
        Phone.start("network", sip_port=service.carrier_port) as network,
    ):
        await seat.wait_event("reg_state", active=True, code=200, timeout=10)
        await seat.set_auto_answer("answer", delay_ms=800)
        await network.set_auto_answer("answer", delay_ms=300, play=callee_says, play_loop=True)
        status, view = service.api("POST", f"/api/acd/seats/{seat_id}/login")
        assert status == 200 and view["state"] == "available", view

        # A real call: the IVR hands the caller's number to the work-order service.
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            service.wait_logged(masked, "call.entered", timeout=10)
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)
        service.wait_logged(masked, "call.ended")
        (call_id,) = service.call_ids_for(masked)

        # The order of that call, taken to a handler (claimed): a callback is possible now.
        status, order = service.api(
            "POST", "/api/workorders", {"call_id": call_id, "summary": "劳动合同纠纷，需回拨"}
        )
        assert status == 201, order
        order_id = order["id"]
        act(service, order_id, "submit")
        act(service, order_id, "dispatch", {"target": "区法律援助中心"})
        order = act(service, order_id, "claim")
        assert "callback" in order["allowed_actions"], order["allowed_actions"]

        # Without a seat to ring (the service token has none) the request is refused.
        status, body = service.api("POST", f"/api/workorders/{order_id}/actions/callback", {})
        assert status == 400 and body["error"]["code"] == "seat_required", body

        act(service, order_id, "callback", {"seat_id": seat_id})
        # The seat's phone rings first; the seat takes no queue call meanwhile.
        incoming = await seat.wait_event("incoming", timeout=10)
        assert network.find_events("incoming") == [], "the caller was dialled before the seat"
        paused = service.seat(seat_id)
        assert (paused["state"], paused["reason"]) == ("paused", "回拨"), paused
        placed = logged(service, f"workorder:{order_id}", "callback.placed", seat_id=seat_id)
        assert placed["origin"] == "workorder", placed
        await seat.wait_event("call_state", call=incoming["call"], state="CONFIRMED", timeout=10)

        # Then the caller, through the carrier trunk, from 12348.
        dialled = await network.wait_event("incoming", timeout=10)
        assert caller in dialled["to"], f"the callback did not dial the caller: {dialled['to']}"
        assert "12348" in dialled["from"], dialled["from"]
        await network.wait_event("call_state", call=dialled["call"], state="CONFIRMED", timeout=10)

        # The outcome is on the order, which is now in progress (the handler called back).
        def outcome() -> dict | None:
            return next(
                (
                    h
                    for h in history(service, order_id)
                    if h["type"] == "workorder.callback_outcome"
                ),
                None,
            )

        found = wait_for(outcome, 10, message="the callback outcome on the order")
        assert found["data"]["outcome"] == "answered", found
        wait_for(
            lambda: service.api("GET", f"/api/workorders/{order_id}")[1]["state"] == "in_progress",
            5,
            message="the order to be in progress",
        )

        # They are bridged: the lawyer hears the called-back caller.
        seat_call = str(incoming["call"])
        await seat.wait_event("media_active", call=seat_call, timeout=5)
        heard = await listen(seat, seat_call, tmp_path / "seat-heard.wav", callee_says)
        r = score(heard, callee_says)
        assert r > HEARD, f"the seat does not hear the called-back caller (r={r:.3f})"

        # The caller hangs up: the seat's leg goes too, and the seat is available again.
        await network.hangup(dialled["call"])
        await seat.wait_event("disconnected", call=seat_call, timeout=10)
        ended = logged(service, f"workorder:{order_id}", "call.ended")
        assert ended["hangup_by"] == "caller" and ended["outcome"] == "answered", ended
        wait_seat(service, seat_id, "available")

        types = [h["type"] for h in history(service, order_id)]
        assert types.index("workorder.callback_requested") < types.index(
            "workorder.callback_outcome"
        ), types
        assert "workorder.callback" in types, types  # claimed → in progress, as the asker
        service.api("POST", f"/api/acd/seats/{seat_id}/logout")
