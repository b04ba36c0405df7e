"""ACD guarantees with real calls: a paused seat is never offered a call; a 绿色通道 caller who
arrives later is served first; a call that waits too long in its queue overflows to another."""

from __future__ import annotations

import pytest

from hotline.privacy import mask_number
from hotline.testing import wait_for
from sim.phone import Phone

from .test_acd_calls import seat_phone

pytestmark = pytest.mark.e2e

GREEN = "13800009999"  # on the special-group list for this test


async def into_queue(service, phone: Phone, number: str, menu_key: str, queue: str) -> str:
    masked = mask_number(number)
    call = await phone.call(f"sip:12348@127.0.0.1:{service.sip_port}", from_user=number)
    await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
    steps = [("language", "1"), ("main_menu", menu_key)]
    if queue == "consult_property":
        steps.append(("consult_menu", "5"))
    for node, key in steps:
        await service.await_logged(masked, "ivr.node_entered", node=node, timeout=60)
        await phone.dtmf(call, key)
    await service.await_logged(masked, "queue.entered", queue=queue, timeout=30)
    return call


async def test_pause_priority_and_overflow(hotline_service):
    service = hotline_service
    service.restart_with(
        ivr={"special_group_numbers": [GREEN]},
        acd={
            "overflow_to": "operator",
            "overflow_after_s": 4,
            "queues": {"mediation": {"overflow": None}},
        },
    )
    try:
        async with seat_phone(service, "med1", "mediation:1") as seat:
            await seat.set_auto_answer("answer", delay_ms=100)
            assert service.api("POST", "/api/acd/seats/med1/login")[0] == 200
            status, view = service.api("POST", "/api/acd/seats/med1/pause", {"reason": "小休"})
            assert status == 200 and (view["state"], view["reason"]) == ("paused", "小休")
            status, error = service.api("POST", "/api/acd/seats/med1/pause", {"reason": "乱写"})
            assert status == 400 and error["error"]["code"] == "bad_reason"

            async with Phone.start("callers") as callers:
                ordinary = "13700001111"
                first = await into_queue(service, callers, ordinary, "3", "mediation")
                second = await into_queue(service, callers, GREEN, "3", "mediation")
                # Paused: both wait, nobody rings the seat.
                status, queues = service.api("GET", "/api/acd/queues")
                mediation = next(q for q in queues if q["name"] == "mediation")
                assert mediation["waiting"] == 2 and not seat.find_events("incoming")

                assert service.api("POST", "/api/acd/seats/med1/ready")[0] == 200
                await seat.wait_event("incoming", timeout=10)
                connected = await service.await_logged(
                    mask_number(GREEN), "queue.connected", timeout=15
                )
                assert connected.data["seat_id"] == "med1"  # the later, 绿色通道 caller first
                await callers.hangup(first)
                await callers.hangup(second)

        async with seat_phone(service, "op9", "general:1") as operator:
            await operator.set_auto_answer("answer", delay_ms=100)
            assert service.api("POST", "/api/acd/seats/op9/login")[0] == 200
            async with Phone.start("caller") as phone:
                number = "13700002222"
                call = await into_queue(service, phone, number, "1", "consult_property")
                # Nobody has the property skill: after 4 s the call overflows to the operators.
                overflowed = await service.await_logged(
                    mask_number(number), "queue.overflowed", timeout=20
                )
                assert overflowed.data["to_queue"] == "operator"
                await service.await_logged(mask_number(number), "queue.connected", timeout=15)
                await phone.hangup(call)
    finally:
        service.restart_with(
            ivr={"special_group_numbers": []},
            acd={"overflow_to": None, "overflow_after_s": 90, "queues": {}},
        )

    events = service.wait_call_ended(mask_number(GREEN))
    entered = next(e for e in events if e.type == "queue.entered")
    assert entered.data["priority"] == 10
    ordinary_events = service.wait_call_ended(mask_number("13700001111"))
    assert "queue.connected" not in [e.type for e in ordinary_events]
    seat_log = wait_for(lambda: service.events("seat:med1"), 5, message="seat events")
    reasons = [e.data.get("reason") for e in seat_log if e.type == "seat.state_changed"]
    assert "小休" in reasons
