"""The service survives what operators do to it: Asterisk restarts, stops, crashes."""

from __future__ import annotations

import pytest

from hotline.privacy import mask_number
from hotline.testing import wait_for
from sim.phone import Phone

from .test_first_call import new_caller, uri

pytestmark = pytest.mark.e2e


async def _one_welcome_call(asterisk_instance, hotline_service) -> list:
    caller = new_caller()
    async with Phone.start("caller") as phone:
        call = await phone.call(uri(asterisk_instance), from_user=caller)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
        hotline_service.wait_logged(
            mask_number(caller), "prompt.finished", prompt="welcome", state="done", timeout=30
        )
        await phone.hangup(call)
        await phone.wait_event("disconnected", call=call, timeout=10)
    return hotline_service.wait_call_ended(mask_number(caller))


async def test_service_stop_during_a_call_leaves_a_complete_record(
    asterisk_instance, hotline_service
):
    caller = new_caller()
    async with Phone.start("caller") as phone:
        call = await phone.call(uri(asterisk_instance), from_user=caller)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
        wait_for(
            lambda: hotline_service.call_ids_for(mask_number(caller)), 10, message="call.entered"
        )
        assert hotline_service.stop() == 0
        await phone.wait_event("disconnected", call=call, timeout=10)
    try:
        events = hotline_service.wait_call_ended(mask_number(caller), timeout=5)
        assert events[-1].data["hangup_by"] == "system"
    finally:
        hotline_service.start()


async def test_killed_service_adopts_its_orphan_call_on_restart(asterisk_instance, hotline_service):
    caller = new_caller()
    async with Phone.start("caller") as phone:
        call = await phone.call(uri(asterisk_instance), from_user=caller)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
        wait_for(
            lambda: any(
                e.type == "prompt.started"
                for cid in hotline_service.call_ids_for(mask_number(caller))
                for e in hotline_service.events(cid)
            ),
            timeout=10,
            message="the welcome prompt to start",
        )
        hotline_service.process.kill()  # no chance to clean up
        hotline_service.process.wait(timeout=10)
        hotline_service.process = None
        hotline_service.start()  # reconciles: the call is found by its channel variable
        await phone.wait_event("disconnected", call=call, timeout=10)
    events = hotline_service.wait_call_ended(mask_number(caller), timeout=10)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert "service.reconciled" in [e.type for e in events]
    assert events[-1].data["hangup_by"] == "system"


async def test_asterisk_restart_then_next_call_works(asterisk_instance, hotline_service):
    asterisk_instance.runtime.stop()
    wait_for(
        lambda: (hotline_service.health() or {}).get("ari_connected") is False,
        timeout=10,
        message="the service to notice Asterisk is gone",
    )
    asterisk_instance.runtime.start()
    wait_for(
        lambda: (hotline_service.health() or {}).get("ari_connected"),
        timeout=30,
        message="the service to reconnect to ARI by itself",
    )
    events = await _one_welcome_call(asterisk_instance, hotline_service)
    assert events[-1].type == "call.ended" and events[-1].data["hangup_by"] == "caller"
