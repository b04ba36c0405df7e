"""The callback list (回拨列表), end to end with real Asterisk, the real service and pjsua2 phones.

A caller rings 12348 on a Saturday (the IVR's clock is set: lawyers are off), presses through to
the after-hours menu and books a callback (``callback`` node → ``callback.booked``). The booking
becomes a work order with no seat; a supervisor signed in to the desk sees it in the open
callback list and assigns it to a seat; the seat lawyer, signed in to the desk, finds it in their
own list and presses 回拨 (the ``callback`` action for their seat). The lawyer's phone rings first,
then the caller's phone is dialled through the carrier trunk (``asterisk.carrier_contact``, as
in ``test_workorder_callback``), answers, and the lawyer hears the caller. The outcome comes back
to the lawyer's list, the lawyer marks it done, and the order's history tells the whole story.
"""

from __future__ import annotations

import json

import pytest

from hotline.privacy import mask_number
from hotline.testing import OFFICE_HOURS, async_wait_for, free_port
from hotline.web import Role
from sim.phone import Phone

from .test_acd_transfer import HEARD, add_seat, listen, logged, score, speech, wait_seat
from .test_first_call import new_caller
from .test_ivr_paths import LANG, MAIN, Caller, follow_to_end
from .test_supervision import add_user, desk_session, post

pytestmark = pytest.mark.e2e

SATURDAY = "2026-11-21T10:00:00+08:00"  # not a 调休 workday: the IVR offers message / callback


@pytest.fixture
def after_hours_with_carrier(hotline_service):
    """The service after hours, with an outbound carrier contact; restored after."""
    port = free_port("udp")
    hotline_service.restart_with(
        asterisk={"carrier_contact": f"sip:127.0.0.1:{port}"}, ivr={"clock": SATURDAY}
    )
    hotline_service.carrier_port = port
    try:
        yield hotline_service
    finally:
        hotline_service.restart_with(
            asterisk={"carrier_contact": None}, ivr={"clock": OFFICE_HOURS}
        )


async def get(http, path: str):
    async with http.get(path) as response:
        return response.status, await response.json()


async def test_booked_callback_assigned_then_called_back_from_the_lawyers_list(
    after_hours_with_carrier, tmp_path
):
    service = after_hours_with_carrier
    caller_says = speech(
        tmp_path / "caller.wav", "喂，您好，我是预约回拨的来电人，我想咨询工资的问题。"
    )
    seat_id, password = add_seat(service, "cbl_seat", "general_law:2")
    add_user(service, "cbl_lawyer", Role.SEAT_LAWYER, seat_id)
    add_user(service, "cbl_super", Role.SUPERVISOR, None)
    number = new_caller()
    masked = mask_number(number)

    # 1. After hours, the caller books a callback in the IVR and hangs up.
    booking = Caller(
        "booking", [LANG, (MAIN, "1"), ("after_hours", "2")], "callback", number=number
    )
    await follow_to_end(service, booking)
    (call_id,) = service.call_ids_for(masked)
    logged(service, call_id, "callback.booked")

    async with (
        desk_session(service, "cbl_super") as boss,
        desk_session(service, "cbl_lawyer") as lawyer,
        Phone.start(seat_id, registrar=service.registrar, user=seat_id, password=password) as seat,
        Phone.start("network", sip_port=service.carrier_port) as network,
    ):
        await seat.wait_event("reg_state", active=True, code=200, timeout=10)
        await seat.set_auto_answer("answer", delay_ms=800)
        await network.set_auto_answer("answer", delay_ms=300, play=caller_says, play_loop=True)

        # 2. The supervisor finds it in the open callback list (masked) and assigns it.
        async def booked_order():
            status, body = await get(boss, "/api/workorders/callbacks?scope=open")
            assert status == 200, body
            return next((o for o in body["items"] if o["call_id"] == call_id), None)

        order = await async_wait_for(booked_order, 20, message="the booked callback's order")
        assert order["source"] == "callback_request" and order["caller"] == masked
        assert order["seat_id"] is None and order["due_at"] and order["booked_at"]
        order_id = order["id"]
        status, body = await get(lawyer, "/api/workorders/callbacks")
        assert status == 200 and all(o["id"] != order_id for o in body["items"]), body
        status, body = await post(lawyer, f"/api/workorders/{order_id}/actions/assign",
                                  {"seat_id": "someone_else"})  # fmt: skip
        assert status == 403, body  # only a supervisor assigns to a seat
        status, assigned = await post(
            boss, f"/api/workorders/{order_id}/actions/assign", {"seat_id": seat_id}
        )
        assert status == 200 and assigned["state"] == "claimed", assigned
        assert assigned["seat_id"] == seat_id

        # 3. The lawyer's own list has it, masked; signed in to the ACD, they press 回拨.
        status, body = await get(lawyer, "/api/workorders/callbacks")
        assert status == 200, body
        (mine,) = [o for o in body["items"] if o["id"] == order_id]
        assert mine["caller"] == masked and "callback" in mine["allowed_actions"], mine
        assert number not in json.dumps(body)
        status, view = await post(lawyer, f"/api/acd/seats/{seat_id}/login")
        assert status == 200 and view["state"] == "available", view
        status, body = await post(lawyer, f"/api/workorders/{order_id}/actions/callback")
        assert status == 200, body

        # 4. The lawyer's phone rings first, then the caller's, through the carrier trunk.
        incoming = await seat.wait_event("incoming", timeout=15)
        assert network.find_events("incoming") == [], "the caller was dialled before the seat"
        await seat.wait_event("call_state", call=incoming["call"], state="CONFIRMED", timeout=10)
        dialled = await network.wait_event("incoming", timeout=15)
        assert number in dialled["to"], f"the callback did not dial the caller: {dialled['to']}"
        await network.wait_event("call_state", call=dialled["call"], state="CONFIRMED", timeout=10)

        # 5. Audio flows: the lawyer hears the called-back caller.
        seat_call = str(incoming["call"])
        await seat.wait_event("media_active", call=seat_call, timeout=5)
        heard = await listen(seat, seat_call, tmp_path / "seat-heard.wav", caller_says)
        r = score(heard, caller_says)
        assert r > HEARD, f"the lawyer does not hear the called-back caller (r={r:.3f})"

        # 6. The outcome comes back to the lawyer's list; the order is in progress.
        async def answered():
            _, body = await get(lawyer, "/api/workorders/callbacks")
            found = next((o for o in body["items"] if o["id"] == order_id), None)
            outcome = (found or {}).get("last_outcome") or {}
            return found if outcome.get("outcome") == "answered" else None

        mine = await async_wait_for(answered, 15, message="the answered outcome on the list")
        assert mine["state"] == "in_progress" and "resolve" in mine["allowed_actions"], mine

        await network.hangup(dialled["call"])
        await seat.wait_event("disconnected", call=seat_call, timeout=10)
        wait_seat(service, seat_id, "available")

        # 7. Done: the lawyer closes the callback step; the history shows every step.
        status, done = await post(
            lawyer, f"/api/workorders/{order_id}/actions/resolve", {"note": "已回电解答"}
        )
        assert status == 200 and done["state"] == "resolved", done
        types = [h["type"] for h in done["history"]]
        for earlier, later in zip(
            ["workorder.create", "workorder.assign", "workorder.callback_requested",
             "workorder.callback_outcome", "workorder.callback"],
            ["workorder.assign", "workorder.callback_requested", "workorder.callback_outcome",
             "workorder.callback", "workorder.resolve"],
            strict=True,
        ):  # fmt: skip
            assert types.index(earlier) < types.index(later), types
        assign = next(h for h in done["history"] if h["type"] == "workorder.assign")
        assert assign["actor"] == "cbl_super" and assign["data"]["seat_id"] == seat_id
        outcome = next(h for h in done["history"] if h["type"] == "workorder.callback_outcome")
        assert outcome["data"]["outcome"] == "answered"
        # The assignment is in the call's event log too, under the booked call.
        logged(service, call_id, "workorder.assign", seat_id=seat_id)
        await post(lawyer, f"/api/acd/seats/{seat_id}/logout")
