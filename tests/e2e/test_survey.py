"""The satisfaction survey (满意度评价) after the lawyer hangs up, with real calls: 1, 2, 3, a
wrong key twice, and a hang-up. Only the caller's own keys count; anything else is not rated."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest

from hotline.privacy import mask_number
from sim.phone import Phone

pytestmark = pytest.mark.e2e

# What the caller does when asked → the survey's result in the event log.
ANSWERS = [
    ("1", ("survey.answered", "satisfied")),
    ("2", ("survey.answered", "basically_satisfied")),
    ("3", ("survey.answered", "dissatisfied")),
    ("77", ("survey.not_rated", "invalid")),
    ("hangup", ("survey.not_rated", "hangup")),
]


async def test_survey_answers_after_the_lawyer_hangs_up(hotline_service):
    service = hotline_service
    seats = [f"op{i}" for i in range(len(ANSWERS))]
    async with contextlib.AsyncExitStack() as stack:
        phones = {}
        for seat_id in seats:
            password = service.add_seat(seat_id, "general:1")
            phone = await stack.enter_async_context(
                Phone.start(seat_id, registrar=service.registrar, user=seat_id, password=password)
            )
            await phone.wait_event("reg_state", active=True, code=200, timeout=10)
            await phone.set_auto_answer("answer", delay_ms=200)
            assert service.api("POST", f"/api/acd/seats/{seat_id}/login")[0] == 200
            phones[seat_id] = phone
        try:
            results = await asyncio.gather(
                *(caller(service, phones, keys) for keys, _ in ANSWERS), return_exceptions=True
            )
        finally:
            for seat_id in seats:
                service.api("POST", f"/api/acd/seats/{seat_id}/logout")
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    assert not failures, "\n".join(failures)

    for number, (_, (kind, result)) in zip(results, ANSWERS, strict=True):
        events = service.wait_call_ended(mask_number(number))
        surveys = [e for e in events if e.type in ("survey.answered", "survey.not_rated")]
        assert len(surveys) == 1, f"one evaluation per answered call: {surveys}"
        assert surveys[0].type == kind and result in surveys[0].data.values(), surveys[0].data
        completed = next(e for e in events if e.type == "queue.completed")
        assert completed.data["by"] == "seat"


async def caller(service, phones: dict[str, Phone], keys: str) -> str:
    number = f"136{random.randrange(10**8):08d}"
    masked = mask_number(number)
    async with Phone.start(f"caller-{keys}") as phone:
        call = await phone.call(f"sip:12348@127.0.0.1:{service.sip_port}", from_user=number)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
        await service.await_logged(masked, "ivr.node_entered", node="language", timeout=30)
        await phone.dtmf(call, "0")  # 人工服务
        connected = await service.await_logged(masked, "queue.connected", timeout=30)
        seat = phones[connected.data["seat_id"]]
        offered = await seat.wait_event("incoming", timeout=10)
        await seat.wait_event("call_state", call=offered["call"], state="CONFIRMED", timeout=10)
        await seat.hangup(offered["call"])  # the lawyer ends the conversation
        await service.await_logged(masked, "survey.offered", timeout=15)
        if keys == "hangup":
            await phone.hangup(call)
        else:
            await phone.dtmf(call, keys)
        await phone.wait_event("disconnected", call=call, timeout=40)
    return number
