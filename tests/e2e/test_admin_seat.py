"""A seat created through the administration API works at once, with no restart: the real
service re-renders PJSIP and reloads the real Asterisk, a pjsua2 phone registers with the
credentials the API returned (once), and a real call to 12348 is routed to it and answered.
Disabling the seat removes its SIP endpoint: the phone can no longer register."""

from __future__ import annotations

import pytest

from hotline.privacy import mask_number
from sim.phone import Phone

from .test_acd_calls import reach_queue, uri_for, wait_seat_state
from .test_first_call import new_caller

pytestmark = pytest.mark.e2e

SEAT = "admseat1"


async def test_a_seat_created_by_the_admin_api_registers_and_answers_a_call(hotline_service):
    service = hotline_service
    status, body = service.api(
        "POST",
        "/api/admin/seats",
        {"seat_id": SEAT, "display_name": "孙律师", "skills": {"labor": 3}, "region": "武汉"},
    )
    assert status == 201, body
    assert body["asterisk"] == {"ok": True, "message": "Asterisk reloaded"}, body
    assert body["acd"] == "applied"
    sip = body["sip"]
    assert sip["user"] == SEAT and sip["registrar"] == service.registrar
    status, listing = service.api("GET", "/api/admin/seats")
    assert status == 200 and sip["password"] not in str(listing)

    async with Phone.start(
        SEAT, registrar=sip["registrar"], user=sip["user"], password=sip["password"]
    ) as seat:
        await seat.wait_event("reg_state", active=True, code=200, timeout=10)
        await seat.set_auto_answer("answer", delay_ms=300)
        status, view = service.api("POST", f"/api/acd/seats/{SEAT}/login")
        assert status == 200 and view["state"] == "available", view
        assert view["skills"] == {"labor": 3} and view["region"] == "武汉"

        caller = new_caller()
        masked = mask_number(caller)
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            await reach_queue(phone, call, service, caller, "consult_labor")
            offered = await seat.wait_event("incoming", timeout=15)
            await seat.wait_event("call_state", call=offered["call"], state="CONFIRMED", timeout=10)
            connected = service.wait_logged(masked, "queue.connected", timeout=10)
            assert connected.data["seat_id"] == SEAT
            assert service.seat(SEAT)["state"] == "on_call"
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)
        events = service.wait_call_ended(masked)
        completed = next(e for e in events if e.type == "queue.completed")
        assert completed.data["seat_id"] == SEAT
        wait_seat_state(service, SEAT, "available")

        # Disabled: signed out of the ACD and gone from Asterisk's PJSIP configuration.
        status, body = service.api("POST", f"/api/admin/seats/{SEAT}/disable")
        assert status == 200 and body["acd"] == "signed_out", body
        assert body["asterisk"]["message"] == "Asterisk reloaded"
    async with Phone.start(
        SEAT, registrar=sip["registrar"], user=sip["user"], password=sip["password"]
    ) as again:
        refused = await again.wait_event("reg_state", timeout=10)
        assert refused["code"] != 200, refused
    status, body = service.api("POST", f"/api/acd/seats/{SEAT}/login")
    assert status == 404, body
