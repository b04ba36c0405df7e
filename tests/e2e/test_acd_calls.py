"""Callers reach seat lawyers: real SIP calls through the IVR and the ACD to pjsua2 seats."""

from __future__ import annotations

import contextlib

import pytest

from hotline.privacy import mask_number
from sim.audio import segment_correlation, speak_wav
from sim.phone import Phone

from .test_first_call import new_caller

pytestmark = pytest.mark.e2e

# Main menu 1 法律咨询, then the topic's key in the consultation menu.
TOPIC_KEYS = {"consult_labor": "1", "consult_family": "2", "consult_traffic": "4"}


async def reach_queue(phone: Phone, call: str, service, caller: str, queue: str) -> None:
    """Press through the IVR as a caller would: 1 普通话, 1 法律咨询, topic key."""
    masked = mask_number(caller)
    for node, digit in [("language", "1"), ("main_menu", "1"), ("consult_menu", TOPIC_KEYS[queue])]:
        service.wait_logged(masked, "ivr.node_entered", node=node, timeout=20)
        await phone.dtmf(call, digit)
    service.wait_logged(masked, "queue.entered", queue=queue, timeout=15)


@contextlib.asynccontextmanager
async def seat_phone(service, seat_id: str, skills: str):
    password = service.add_seat(seat_id, skills)
    async with Phone.start(
        seat_id, registrar=service.registrar, user=seat_id, password=password
    ) as phone:
        await phone.wait_event("reg_state", active=True, code=200, timeout=10)
        yield phone
        service.api("POST", f"/api/acd/seats/{seat_id}/logout")


def call_events(service, caller: str) -> list:
    (call_id,) = service.call_ids_for(mask_number(caller))
    return service.events(call_id)


async def test_caller_reaches_a_lawyer_talks_and_rates_the_call(hotline_service, tmp_path):
    service = hotline_service
    lawyer_says = speak_wav(tmp_path / "lawyer.wav", "您好，我是劳动争议律师，请讲。")
    heard = tmp_path / "caller-heard.wav"
    async with seat_phone(service, "labor1", "labor:3") as seat:
        await seat.set_auto_answer("answer", delay_ms=300, play=lawyer_says, play_loop=True)
        status, view = service.api("POST", "/api/acd/seats/labor1/login")
        assert status == 200 and view["state"] == "available", view

        caller = new_caller()
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            await reach_queue(phone, call, service, caller, "consult_labor")
            offered = await seat.wait_event("incoming", timeout=10)
            await seat.wait_event("call_state", call=offered["call"], state="CONFIRMED", timeout=10)
            service.wait_logged(mask_number(caller), "queue.connected", timeout=10)
            assert service.seat("labor1")["state"] == "on_call"

            await phone.record(call, heard)
            await seat.wait_event("media_active", call=offered["call"], timeout=5)
            # Listen long enough to hear the lawyer's whole sentence once.
            with contextlib.suppress(TimeoutError):
                await phone.wait_event("never", timeout=6)
            await phone.stop_record(call)
            await phone.wait_event("recording_done", call=call, timeout=5)
            score = segment_correlation(heard, lawyer_says)
            assert score > 0.9, f"the caller did not hear the lawyer (r={score:.3f})"

            await seat.hangup(offered["call"])  # the lawyer ends the call: survey follows
            service.wait_logged(mask_number(caller), "survey.offered", timeout=10)
            await phone.dtmf(call, "1")
            await phone.wait_event("disconnected", call=call, timeout=20)

        events = service.wait_call_ended(mask_number(caller))
        kinds = [e.type for e in events]
        for expected in ["queue.entered", "queue.offered", "queue.connected", "queue.completed",
                         "survey.offered", "survey.answered", "call.ended"]:  # fmt: skip
            assert expected in kinds, f"{expected} missing from {kinds}"
        completed = next(e for e in events if e.type == "queue.completed")
        assert completed.data["by"] == "seat" and completed.data["seat_id"] == "labor1"
        survey = next(e for e in events if e.type == "survey.answered")
        assert "satisfied" in survey.data.values()
        # Wrap-up (1 s in these tests), then the seat is available again by itself.
        wait_seat_state(service, "labor1", "available")


def wait_seat_state(service, seat_id: str, state: str, timeout: float = 10) -> dict:
    from hotline.testing import wait_for

    return wait_for(
        lambda: (seat := service.seat(seat_id))["state"] == state and seat,
        timeout,
        message=f"seat {seat_id} to be {state}",
    )


def uri_for(service) -> str:
    return f"sip:12348@127.0.0.1:{service.sip_port}"


async def test_no_answer_pauses_the_seat_and_the_call_goes_to_the_next(hotline_service):
    service = hotline_service
    async with (
        seat_phone(service, "family1", "family:2") as silent,
        seat_phone(service, "family2", "family:2") as answering,
    ):
        await silent.set_auto_answer("never")
        await answering.set_auto_answer("answer", delay_ms=200)
        assert service.api("POST", "/api/acd/seats/family1/login")[0] == 200
        assert service.api("POST", "/api/acd/seats/family2/login")[0] == 200

        caller = new_caller()
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            await reach_queue(phone, call, service, caller, "consult_family")
            # Whoever rings first: if it is the silent seat, the ring timeout (4 s) moves the
            # call on, and the silent seat is paused with 未接听.
            answered = await answering.wait_event("incoming", timeout=20)
            await answering.wait_event(
                "call_state", call=answered["call"], state="CONFIRMED", timeout=10
            )
            service.wait_logged(mask_number(caller), "queue.connected", timeout=10)
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)

        events = service.wait_call_ended(mask_number(caller))
        offers = [e.data["seat_id"] for e in events if e.type == "queue.offered"]
        assert offers[-1] == "family2"
        if "family1" in offers:
            assert "queue.no_answer" in [e.type for e in events]
            seat = service.seat("family1")
            assert seat["state"] == "paused" and seat["reason"] == "未接听", seat
        completed = next(e for e in events if e.type == "queue.completed")
        assert completed.data["by"] == "caller"


async def test_caller_hangs_up_while_the_seat_rings(hotline_service):
    service = hotline_service
    async with seat_phone(service, "traffic1", "traffic:2") as seat:
        await seat.set_auto_answer("never")
        assert service.api("POST", "/api/acd/seats/traffic1/login")[0] == 200
        caller = new_caller()
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            await reach_queue(phone, call, service, caller, "consult_traffic")
            ringing = await seat.wait_event("incoming", timeout=10)
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)
            # The offer is cancelled: the seat's phone stops ringing.
            await seat.wait_event("disconnected", call=ringing["call"], timeout=10)

        events = service.wait_call_ended(mask_number(caller))
        abandoned = next(e for e in events if e.type == "queue.abandoned")
        assert abandoned.data["position"] == 1 and abandoned.data["wait"] >= 0
        ended = next(e for e in events if e.type == "call.ended")
        assert ended.data["hangup_by"] == "caller"
        seat_view = wait_seat_state(service, "traffic1", "available")
        assert seat_view["call_id"] is None
