"""Every path of the default 12348 flow, called as a caller would: real SIP calls with RFC 4733
DTMF through Asterisk into the IVR. Callers run concurrently; each ends in a defined outcome
that the event log records."""

from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field

import pytest

from hotline.privacy import mask_number
from hotline.testing import OFFICE_HOURS
from sim.audio import speak_wav
from sim.phone import Phone

pytestmark = pytest.mark.e2e

# Callers are found in the log by their masked number (first 3 and last 4 digits): give each
# one distinct last digits, under a prefix no other test uses.
NUMBERS = (f"1350000{n % 10000:04d}" for n in itertools.count(random.randrange(10000)))

# (node to wait for, keys to press there); "hangup" ends the call at that node.
Steps = list[tuple[str, str]]


@dataclass
class Caller:
    name: str
    steps: Steps
    outcome: str  # the ivr.outcome the log must show
    queue: str | None = None  # the queue the call must enter
    also: list[str] = field(default_factory=list)  # more event types the log must show
    number: str = field(default_factory=lambda: next(NUMBERS))


LANG = ("language", "1")
MAIN = "main_menu"
CALLERS = [
    *[
        Caller(
            f"consult-{key}",
            [LANG, (MAIN, "1"), ("consult_menu", key), (f"queue:{queue}", "hangup")],
            "queued",
            queue,
        )
        for key, queue in [
            ("1", "consult_labor"),
            ("2", "consult_family"),
            ("3", "consult_contract"),
            ("4", "consult_traffic"),
            ("5", "consult_property"),
            ("6", "consult_other"),
        ]
    ],
    Caller(
        "legal-aid-id",
        [
            LANG,
            (MAIN, "2"),
            ("legal_aid_menu", "2"),
            ("legal_aid_id", "11010519491231002*#"),
            ("queue:legal_aid", "hangup"),
        ],
        "queued",
        "legal_aid",
        also=["ivr.collected"],
    ),
    Caller("mediation", [LANG, (MAIN, "3"), ("queue:mediation", "hangup")], "queued", "mediation"),
    Caller(
        "info-self-service",
        [LANG, (MAIN, "4"), ("info_menu", "1"), ("after_info", "hangup")],
        "self_served",
    ),
    Caller(
        "complaint",
        [LANG, (MAIN, "5"), ("complaint_menu", "1"), ("queue:complaint", "hangup")],
        "queued",
        "complaint",
    ),
    # No 12345 trunk is configured here: the transfer fails and the caller reaches a person.
    Caller(
        "to-12345",
        [LANG, (MAIN, "5"), ("complaint_menu", "2"), ("queue:operator", "hangup")],
        "queued",
        "operator",
        also=["ivr.action_failed"],
    ),
    Caller(
        "work-order-query",
        [
            LANG,
            (MAIN, "9"),
            ("work_order_number", "20261121#"),  # no such order: "not found" is spoken
            ("after_work_order_status", "0"),
            ("queue:work_order", "hangup"),
        ],
        "queued",
        "work_order",
    ),
    Caller("operator", [LANG, (MAIN, "0"), ("queue:operator", "hangup")], "queued", "operator"),
    Caller(
        "invalid-then-valid",
        [LANG, (MAIN, "7"), ("invalid:main_menu", ""), (MAIN, "3"), ("queue:mediation", "hangup")],
        "queued",
        "mediation",
    ),
    Caller(
        "barge-in-type-ahead",
        [("welcome", "1"), (MAIN, "0"), ("queue:operator", "hangup")],
        "queued",
        "operator",
        also=["ivr.barge_in"],
    ),
    # 0 from every menu reaches a person (人工服务).
    *[
        Caller(
            f"zero-at-{menu}",
            [*prefix, (menu, "0"), ("queue:operator", "hangup")],
            "queued",
            "operator",
        )
        for menu, prefix in [
            ("language", []),
            ("consult_menu", [LANG, (MAIN, "1")]),
            ("legal_aid_menu", [LANG, (MAIN, "2")]),
            ("info_menu", [LANG, (MAIN, "4")]),
            ("complaint_menu", [LANG, (MAIN, "5")]),
        ]
    ],
    # Silence: every timeout chain ends at a person.
    # (at the legal-aid menu, whose prompt is short: three timeouts there take about a minute)
    Caller(
        "silence",
        [LANG, (MAIN, "2"), ("queue:operator", "hangup")],
        "queued",
        "operator",
        also=["ivr.invalid"],
    ),
    # Hang-ups at each kind of node leave a complete record.
    Caller("hangup-in-language-menu", [("language", "hangup")], "hung_up"),
    Caller("hangup-in-menu", [LANG, (MAIN, "hangup")], "hung_up"),
    Caller(
        "hangup-in-collect",
        [LANG, (MAIN, "9"), ("work_order_number", "12"), ("work_order_number", "hangup")],
        "hung_up",
    ),
    Caller(
        "hangup-in-info",
        [LANG, (MAIN, "4"), ("info_menu", "2"), ("info_appraisal", "hangup")],
        "hung_up",
    ),
]


async def follow(service, port: int, caller: Caller) -> None:
    masked = mask_number(caller.number)
    async with Phone.start(caller.name) as phone:
        call = await phone.call(f"sip:12348@127.0.0.1:{port}", from_user=caller.number)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
        for where, keys in caller.steps:
            kind, _, target = where.rpartition(":")
            if kind == "queue":
                # Silence takes three menu timeouts before it reaches a person.
                await service.await_logged(masked, "queue.entered", timeout=150, queue=target)
            elif kind == "invalid":
                await service.await_logged(masked, "ivr.invalid", timeout=30, node=target)
            else:
                await service.await_logged(masked, "ivr.node_entered", timeout=90, node=where)
            if keys == "hangup":
                await phone.hangup(call)
                await phone.wait_event("disconnected", call=call, timeout=10)
                return
            if keys:
                await phone.dtmf(call, keys)
        raise AssertionError(f"{caller.name}: the steps must end with a hang-up")


def check_record(service, caller: Caller) -> None:
    events = service.wait_call_ended(mask_number(caller.number))
    kinds = [e.type for e in events]
    outcomes = [e.data["outcome"] for e in events if e.type == "ivr.outcome"]
    # A hand-off that fails (a transfer with no trunk) is followed by the fallback's outcome.
    assert outcomes[-1] == caller.outcome, f"{caller.name}: outcomes {outcomes}"
    assert kinds.count("ivr.action_failed") == len(outcomes) - 1, f"{caller.name}: {kinds}"
    if caller.queue:
        entered = [e.data["queue"] for e in events if e.type == "queue.entered"]
        assert entered == [caller.queue], f"{caller.name}: queues {entered}"
        assert "queue.abandoned" in kinds, f"{caller.name}: no abandon record"
    for kind in caller.also:
        assert kind in kinds, f"{caller.name}: {kind} missing from {kinds}"
    ended = next(e for e in events if e.type == "call.ended")
    assert ended.data["hangup_by"] == "caller", f"{caller.name}: {ended.data}"
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # Nothing a caller typed into a sensitive node, nor their number, is stored in clear.
    text = str([e.data for e in events])
    assert caller.number not in text
    assert "110105194912310" not in text


async def test_every_path_of_the_default_flow(hotline_service):
    service = hotline_service
    results = await asyncio.gather(
        *(follow(service, service.sip_port, c) for c in CALLERS), return_exceptions=True
    )
    failures = [f"{c.name}: {r!r}" for c, r in zip(CALLERS, results, strict=True) if r]
    assert not failures, "\n".join(failures)
    for caller in CALLERS:
        check_record(service, caller)


async def test_after_hours_message_and_callback(hotline_service, tmp_path):
    service = hotline_service
    saturday = "2026-11-21T10:00:00+08:00"  # not a 调休 workday: lawyers are off
    message = speak_wav(tmp_path / "message.wav", "我想咨询劳动合同的问题，请回电。")
    service.restart_with(ivr={"clock": saturday})
    try:
        leave = Caller("message", [LANG, (MAIN, "1"), ("after_hours", "1")], "message")
        callback = Caller("callback", [LANG, (MAIN, "1"), ("after_hours", "2")], "callback")
        masked = mask_number(leave.number)
        async with Phone.start("after-hours") as phone:
            call = await phone.call(f"sip:12348@127.0.0.1:{service.sip_port}",
                                    from_user=leave.number)  # fmt: skip
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
            for node, keys in leave.steps:
                await service.await_logged(masked, "ivr.node_entered", timeout=60, node=node)
                await phone.dtmf(call, keys)
            await service.await_logged(masked, "ivr.node_entered", node="leave_message")
            await service.await_logged(masked, "prompt.finished", timeout=30,
                                       prompt="record_instructions", state="done")  # fmt: skip
            await phone.play(call, message)
            await phone.wait_event("play_done", call=call, timeout=20)
            await phone.dtmf(call, "#")  # ends the recording
            await phone.wait_event("disconnected", call=call, timeout=30)  # goodbye, we hang up
        await follow_to_end(service, callback)
    finally:
        service.restart_with(ivr={"clock": OFFICE_HOURS})

    events = service.wait_call_ended(masked)
    kinds = [e.type for e in events]
    assert "message.recorded" in kinds and ["message"] == [
        e.data["outcome"] for e in events if e.type == "ivr.outcome"
    ]
    recorded = next(e for e in events if e.type == "message.recorded")
    assert recorded.data["duration_s"] >= 2
    closed = next(e for e in events if e.type == "ivr.choice" and e.data["node"] == "lawyer_hours")
    assert closed.data["choice"] == "closed"
    callback_events = service.wait_call_ended(mask_number(callback.number))
    assert "callback.booked" in [e.type for e in callback_events]


async def follow_to_end(service, caller: Caller) -> None:
    """Press through the steps and wait for the hotline to end the call (goodbye prompt)."""
    masked = mask_number(caller.number)
    async with Phone.start(caller.name) as phone:
        call = await phone.call(f"sip:12348@127.0.0.1:{service.sip_port}", from_user=caller.number)
        await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=15)
        for node, keys in caller.steps:
            await service.await_logged(masked, "ivr.node_entered", timeout=60, node=node)
            await phone.dtmf(call, keys)
        await phone.wait_event("disconnected", call=call, timeout=30)
    events = service.wait_call_ended(masked)
    outcomes = [e.data["outcome"] for e in events if e.type == "ivr.outcome"]
    assert outcomes == [caller.outcome]
