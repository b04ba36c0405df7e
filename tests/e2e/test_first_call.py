"""A real call to 12348: pjsua2 caller → carrier trunk → Asterisk → our Stasis app."""

from __future__ import annotations

import random

import pytest

from hotline.privacy import mask_number
from hotline.testing import AsteriskInstance, wait_for
from sim.audio import segment_correlation
from sim.phone import Phone

pytestmark = pytest.mark.e2e


def new_caller() -> str:
    return f"139{random.randrange(10**8):08d}"


def uri(asterisk: AsteriskInstance, number: str = "12348") -> str:
    return f"sip:{number}@127.0.0.1:{asterisk.sip_port}"


def types(events) -> list[str]:
    return [event.type for event in events]


async def test_call_hears_welcome_and_is_logged(asterisk_instance, hotline_service, tmp_path):
    caller = new_caller()
    received = tmp_path / "received.wav"
    async with Phone.start("caller") as phone:
        call = await phone.call(uri(asterisk_instance), from_user=caller, record=str(received))
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
        hotline_service.wait_logged(
            mask_number(caller), "prompt.finished", prompt="welcome", state="done", timeout=30
        )
        await phone.hangup(call)
        ended = await phone.wait_event("disconnected", call=call, timeout=10)
        await phone.wait_event("recording_done", call=call, timeout=10)
    assert ended["local_hangup"] is True

    welcome = asterisk_instance.runtime.sounds_dir / "zh" / "welcome.wav"
    # Per-segment alignment: a jitter-buffer slip under load costs nothing, lost audio does.
    score = segment_correlation(received, welcome)
    assert score > 0.9, f"received audio does not match the welcome prompt (r={score:.3f})"

    events = hotline_service.wait_call_ended(mask_number(caller))
    kinds = types(events)
    assert kinds[:3] == ["call.entered", "call.answered", "ivr.call_started"]
    assert kinds[-1] == "call.ended"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    stamps = [e.ts for e in events]
    assert stamps == sorted(stamps) and all(ts.tzinfo is not None for ts in stamps)
    entered, end = events[0], events[-1]
    assert entered.data["dialled"] == "12348" and entered.data["kind"] == "inbound"
    assert caller not in str([e.data for e in events]), "the clear number must not be logged"
    played = [e.data for e in events if e.type == "prompt.finished"]
    assert played[0] == {"prompt": "welcome", "state": "done"}
    assert end.data["hangup_by"] == "caller" and end.data["answered"] is True
    assert events[-2].type == "ivr.outcome" and events[-2].data["outcome"] == "hung_up"


async def test_caller_hangs_up_during_prompt(asterisk_instance, hotline_service):
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
        await phone.hangup(call)
        await phone.wait_event("disconnected", call=call, timeout=10)

    events = hotline_service.wait_call_ended(mask_number(caller))
    assert types(events)[:2] == ["call.entered", "call.answered"]
    assert "prompt.started" in types(events)
    finished = [e for e in events if e.type == "prompt.finished"]
    assert all(e.data["state"] != "done" for e in finished)
    assert events[-1].data["hangup_by"] == "caller"


async def test_unknown_number_is_rejected_and_logged(asterisk_instance, hotline_service):
    caller = new_caller()
    async with Phone.start("caller") as phone:
        call = await phone.call(uri(asterisk_instance, "99999"), from_user=caller)
        ended = await phone.wait_event("disconnected", call=call, timeout=10)
    assert ended["code"] == 404

    events = hotline_service.wait_call_ended(mask_number(caller))
    assert types(events) == ["call.entered", "call.rejected", "call.ended"]
    assert events[0].data["dialled"] == "99999" and events[0].data["kind"] == "unknown"
    assert events[-1].data["hangup_by"] == "system"
