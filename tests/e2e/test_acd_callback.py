"""Callback keeping the place, end to end: the caller presses 1 while waiting, hangs up, and is
called back through the carrier when a seat is free, the seat's phone first.

The carrier's side is a pjsua2 phone listening on ``asterisk.carrier_contact``: it plays the
caller's network, so an INVITE to it whose request URI carries the caller's number is the
callback reaching the caller. The same phone then plays the partner 12345 for a transfer to a
number through the trunk (``acd.transfer_trunk``).
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
    reach_queue,
    score,
    speech,
    uri_for,
    wait_seat,
)
from .test_first_call import new_caller

pytestmark = pytest.mark.e2e


@pytest.fixture
def callback_service(hotline_service):
    """The service with callbacks offered after 2 s, an outbound carrier contact and the
    carrier as the partner trunk; the test configuration is restored afterwards."""
    port = free_port("udp")
    hotline_service.restart_with(
        asterisk={"carrier_contact": f"sip:127.0.0.1:{port}"},
        acd={"callback_offer_after_s": 2, "transfer_trunk": "carrier"},
    )
    hotline_service.carrier_port = port
    try:
        yield hotline_service
    finally:
        hotline_service.restart_with(
            asterisk={"carrier_contact": None},
            acd={"callback_offer_after_s": None, "transfer_trunk": None},
        )


async def test_callback_keeps_the_place_rings_the_seat_first_then_the_caller(
    callback_service, tmp_path
):
    service = callback_service
    callee_says = speech(tmp_path / "callee.wav", "喂，您好，我是来电人。")
    # Added after the restart: `hotline seats add` renders the carrier's outbound contact too.
    seat_id, password = add_seat(service, "cb_seat", "general_law:2")
    caller = new_caller()
    masked = mask_number(caller)
    async with (
        Phone.start(seat_id, registrar=service.registrar, user=seat_id, password=password) as seat,
        Phone.start("network", sip_port=service.carrier_port) as network,
    ):
        await seat.wait_event("reg_state", active=True, code=200, timeout=10)
        await seat.set_auto_answer("answer", delay_ms=800)
        await network.set_auto_answer("answer", delay_ms=300, play=callee_says, play_loop=True)

        # Nobody is logged in: the caller waits, is offered a callback, presses 1, hangs up.
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            call_id = await reach_queue(phone, call, service, caller, "consult_other")
            service.wait_logged(masked, "prompt.started", prompt="queue_callback_offer", timeout=10)
            await phone.dtmf(call, "1")
            requested = logged(service, call_id, "callback.requested")
            assert requested["position"] == 1, requested
            await phone.wait_event("disconnected", call=call, timeout=15)
        service.wait_logged(masked, "call.ended")

        # The place is kept: the call is still first in its queue, without a caller on line.
        status, queues = service.api("GET", "/api/acd/queues")
        assert status == 200, queues
        waiting = next(q for q in queues if q["name"] == "consult_other")["calls"]
        assert [(c["call_id"], c["position"]) for c in waiting] == [(call_id, 1)], waiting

        # A seat logs in: its phone rings first; the caller is dialled only once it answered.
        assert service.api("POST", f"/api/acd/seats/{seat_id}/login")[0] == 200
        incoming = await seat.wait_event("incoming", timeout=10)
        assert network.find_events("incoming") == [], "the caller was dialled before the seat"
        placed = logged(service, call_id, "callback.placed", seat_id=seat_id)
        assert placed["attempt"] == 1
        await seat.wait_event("call_state", call=incoming["call"], state="CONFIRMED", timeout=10)
        dialled = await network.wait_event("incoming", timeout=10)
        assert caller in dialled["to"], f"the callback did not dial the caller: {dialled['to']}"
        assert "12348" in dialled["from"], dialled["from"]
        await network.wait_event("call_state", call=dialled["call"], state="CONFIRMED", timeout=10)
        connected = logged(service, call_id, "queue.connected", seat_id=seat_id)
        assert connected["callback"] is True, connected
        assert service.seat(seat_id)["state"] == "on_call"

        # They are bridged: the lawyer hears the called-back caller.
        seat_call = str(incoming["call"])
        await seat.wait_event("media_active", call=seat_call, timeout=5)
        heard = await listen(seat, seat_call, tmp_path / "seat-heard.wav", callee_says)
        r = score(heard, callee_says)
        assert r > HEARD, f"the seat does not hear the called-back caller (r={r:.3f})"

        # The lawyer hands the caller to 12345 through the partner trunk (blind).
        status, body = service.api(
            "POST", f"/api/acd/calls/{call_id}/transfer", {"to": "number:12345"}
        )
        assert status == 200 and body["status"] == "ringing", body
        partner = await network.wait_event("incoming", timeout=10)
        assert "12345" in partner["to"], partner["to"]
        await seat.wait_event("disconnected", call=seat_call, timeout=10)
        out = logged(service, call_id, "queue.transferred", to_number="12345")
        assert out["seat_id"] == seat_id and out["mode"] == "blind", out
        completed = logged(service, call_id, "queue.completed", seat_id=seat_id)
        assert completed["by"] == "seat"
        wait_seat(service, seat_id, "wrap_up", "available")
        await network.wait_event("call_state", call=partner["call"], state="CONFIRMED", timeout=10)
        # The partner ends the call: the called-back caller's leg is hung up too.
        await network.hangup(partner["call"])
        await network.wait_event("disconnected", call=dialled["call"], timeout=10)

        types = [e.type for e in service.events(call_id)]
        for expected in ("callback.requested", "call.ended", "callback.placed",
                         "queue.connected", "queue.transferred", "queue.completed"):  # fmt: skip
            assert expected in types, f"{expected} missing from {types}"
        assert "callback.failed" not in types, types
        # Nothing of the call is left in the ACD (and with it the caller's clear number).
        wait_for(
            lambda: service.api("GET", f"/api/acd/calls/{call_id}")[0] == 404,
            5,
            message="the call to leave the ACD",
        )
        service.api("POST", f"/api/acd/seats/{seat_id}/logout")
