"""Transfers and three-way calls through the ACD API, with real calls and pjsua2 seats.

Every test starts like a real consultation: a pjsua2 caller presses through the IVR to a topic
queue and a seat lawyer answers. Then the desk's API moves the call: blind to a queue and to a
named seat, consultative with cancel and complete, and a third party (an interpreter) joins.
Who hears whom is checked on the audio itself (``segment_correlation`` against the WAV each
party plays), and what happened is checked in the event log.
"""

from __future__ import annotations

import contextlib
import wave
from pathlib import Path

import pytest
import yaml

from hotline.privacy import mask_number
from hotline.testing import wait_for
from sim.audio import segment_correlation, speak_wav
from sim.phone import Phone

from .test_first_call import new_caller

pytestmark = pytest.mark.e2e

# Main menu 1 法律咨询, then the topic's key in the consultation menu. These queues are not
# used by the other end-to-end tests, so seats of earlier tests never take these calls.
TOPIC_KEYS = {"consult_contract": "3", "consult_property": "5", "consult_other": "6"}
HEARD = 0.8  # segment correlation of a party that is heard (about 0.95 measured)
HEARD_IN_MIX = 0.5  # one of two voices mixed together (three-way call)
NOT_HEARD = 0.5  # and of one that is not (music on hold or silence: below 0.3 measured)


def uri_for(service) -> str:
    return f"sip:12348@127.0.0.1:{service.sip_port}"


async def reach_queue(phone: Phone, call: str, service, caller: str, queue: str) -> str:
    """Press through the IVR as a caller would; returns the call id once the call is queued."""
    masked = mask_number(caller)
    for node, digit in [("language", "1"), ("main_menu", "1"), ("consult_menu", TOPIC_KEYS[queue])]:
        service.wait_logged(masked, "ivr.node_entered", node=node, timeout=20)
        await phone.dtmf(call, digit)
    service.wait_logged(masked, "queue.entered", queue=queue, timeout=15)
    (call_id,) = service.call_ids_for(masked)
    return call_id


def add_seat(service, seat_id: str, skills: str) -> tuple[str, str]:
    """A new seat; returns (seat id, SIP password). The phone worker's argument parser takes a
    password starting with '-' for an option (sim/phone.py), so such a seat is replaced."""
    for suffix in ("", "b", "c", "d", "e"):
        password = service.add_seat(seat_id + suffix, skills)
        if not password.startswith("-"):
            return seat_id + suffix, password
    raise AssertionError("five generated passwords in a row started with '-'")


@contextlib.asynccontextmanager
async def seat_phone(service, seat_id: str, skills: str, **auto_answer):
    """A registered, logged-in seat phone that answers after 300 ms (``phone.seat_id``)."""
    seat_id, password = add_seat(service, seat_id, skills)
    async with Phone.start(
        seat_id, registrar=service.registrar, user=seat_id, password=password
    ) as phone:
        phone.seat_id = seat_id  # type: ignore[attr-defined]
        await phone.wait_event("reg_state", active=True, code=200, timeout=10)
        await phone.set_auto_answer("answer", delay_ms=300, **auto_answer)
        status, view = service.api("POST", f"/api/acd/seats/{seat_id}/login")
        assert status == 200 and view["state"] == "available", view
        try:
            yield phone
        finally:
            service.api("POST", f"/api/acd/seats/{seat_id}/logout")


async def answered(seat: Phone, within: float = 15) -> str:
    """The seat's next incoming call, once it is up; returns its call id on the phone."""
    incoming = await seat.wait_event("incoming", timeout=within)
    await seat.wait_event("call_state", call=incoming["call"], state="CONFIRMED", timeout=10)
    await seat.wait_event("media_active", call=incoming["call"], timeout=5)
    return str(incoming["call"])


def speech(path: Path, text: str) -> Path:
    return speak_wav(path, text, speed=190)


def score(heard: Path, reference: Path) -> float:
    """How well ``reference`` is heard in ``heard`` (printed: the figures for the report)."""
    value = segment_correlation(heard, reference)
    print(f"{heard.stem} vs {reference.stem}: r={value:.3f}")
    return value


def seconds_of(wav: Path) -> float:
    with wave.open(str(wav)) as handle:
        return handle.getnframes() / handle.getframerate()


async def listen(phone: Phone, call: str, path: Path, *references: Path) -> Path:
    """Record what ``phone`` hears on ``call``, long enough to hold each reference once (the
    parties play theirs in a loop)."""
    await phone.record(call, path)
    with contextlib.suppress(TimeoutError):
        await phone.wait_event("never", timeout=max(map(seconds_of, references)) + 1.0)
    await phone.stop_record(call)
    await phone.wait_event("recording_done", call=call, timeout=5)
    return path


def transfer(service, call_id: str, to: str, mode: str = "blind") -> dict:
    status, body = service.api(
        "POST", f"/api/acd/calls/{call_id}/transfer", {"to": to, "mode": mode}
    )
    assert status == 200, body
    return body


def consult_answered(service, call_id: str) -> dict:
    """The call's view once the service has the consultation target on the line (the phone
    may report its answer before the service has handled it)."""

    def view() -> dict | None:
        status, body = service.api("GET", f"/api/acd/calls/{call_id}")
        assert status == 200, body
        return body if (body["consult"] or {}).get("state") == "answered" else None

    return wait_for(view, 5, message=f"the consultation of call {call_id} to be answered")


def wait_seat(service, seat_id: str, *states: str, timeout: float = 10) -> dict:
    return wait_for(
        lambda: (seat := service.seat(seat_id))["state"] in states and seat,
        timeout,
        message=f"seat {seat_id} to be {states}",
    )


def logged(service, call_id: str, type_: str, timeout: float = 10, **data) -> dict:
    def find():
        for event in service.events(call_id):
            if event.type == type_ and all(event.data.get(k) == v for k, v in data.items()):
                return event
        return None

    return wait_for(find, timeout, message=f"{type_} {data} in call {call_id}").data


@pytest.fixture
def without_live_transcription(hotline_service):
    """Known bug, open: tearing down a live-transcription tap (snoop + AudioSocket) on the caller
    while the call moves between bridges stalled Asterisk's ARI once in two full runs (the
    DELETE of the tap channel and the next originate got no answer). Until that is fixed these
    transfer tests run without live taps; recordings and transcripts are tested elsewhere."""
    config = yaml.safe_load(hotline_service.config_path.read_text(encoding="utf-8"))
    model = config.get("speech", {}).get("model_path")
    hotline_service.restart_with(speech={"model_path": "/nonexistent/no-live-transcription"})
    yield
    hotline_service.restart_with(speech={"model_path": model})


@pytest.mark.usefixtures("without_live_transcription")
async def test_blind_transfer_to_a_queue_then_to_a_named_seat(hotline_service, tmp_path):
    service = hotline_service
    caller_says = speech(tmp_path / "caller.wav", "我想咨询合同纠纷。")
    async with (
        seat_phone(service, "xfer_a", "contract:2") as first,
        seat_phone(service, "xfer_b", "property:2") as second,
    ):
        a, b = first.seat_id, second.seat_id  # type: ignore[attr-defined]
        caller = new_caller()
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller, play=caller_says,
                                    play_loop=True)  # fmt: skip
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            call_id = await reach_queue(phone, call, service, caller, "consult_contract")
            a_call = await answered(first)
            logged(service, call_id, "queue.connected", seat_id=a)

            # No partner trunk in this configuration: a transfer to 12345 is refused clearly.
            status, body = service.api(
                "POST", f"/api/acd/calls/{call_id}/transfer", {"to": "number:12345"}
            )
            assert status == 409 and body["error"]["code"] == "no_trunk", body
            status, body = service.api(
                "POST", f"/api/acd/calls/{call_id}/transfer", {"to": "queue:no_such_queue"}
            )
            assert status == 404 and body["error"]["code"] == "unknown_queue", body

            # Blind to another topic's queue: the first seat is released into wrap-up, the
            # caller waits again and the property lawyer gets the call.
            assert transfer(service, call_id, "queue:consult_property")["status"] == "queued"
            await first.wait_event("disconnected", call=a_call, timeout=10)
            b_call = await answered(second)
            moved = logged(service, call_id, "queue.transferred", to_queue="consult_property")
            assert moved["seat_id"] == a and moved["from_queue"] == "consult_contract"
            logged(service, call_id, "queue.connected", seat_id=b, queue="consult_property")
            heard = await listen(second, b_call, tmp_path / "b-heard.wav", caller_says)
            r = score(heard, caller_says)
            assert r > HEARD, f"the second lawyer does not hear the caller (r={r:.3f})"

            # Blind to a named seat: the first lawyer again (back from its 1 s wrap-up).
            wait_seat(service, a, "available")
            transfer(service, call_id, f"seat:{a}")
            await second.wait_event("disconnected", call=b_call, timeout=10)
            a_again = await answered(first)
            logged(service, call_id, "queue.transferred", to_seat=a, seat_id=b)
            heard = await listen(first, a_again, tmp_path / "a-heard.wav", caller_says)
            r = score(heard, caller_says)
            assert r > HEARD, f"the named seat does not hear the caller (r={r:.3f})"
            assert service.seat(a)["state"] == "on_call"

            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)
            await first.wait_event("disconnected", call=a_again, timeout=10)

        events = service.wait_call_ended(mask_number(caller))
        connected = [e.data["seat_id"] for e in events if e.type == "queue.connected"]
        assert connected == [a, b, a], connected
        completed = [e.data for e in events if e.type == "queue.completed"]
        assert [(c["seat_id"], c["by"]) for c in completed] == [(a, "caller")], completed
        # Each seat that gave the call away went through wrap-up (话后处理).
        b_events = service.events(f"seat:{b}")
        assert any(
            e.type == "seat.state_changed" and e.data["to"] == "wrap_up" for e in b_events
        ), [e.data for e in b_events]


@pytest.mark.usefixtures("without_live_transcription")
async def test_consult_cancel_conference_and_consult_complete(hotline_service, tmp_path):
    service = hotline_service
    caller_says = speech(tmp_path / "caller.wav", "房子漏水，物业不管。")
    lawyer_says = speech(tmp_path / "lawyer.wav", "请稍等，我问同事。")
    async with (
        seat_phone(service, "cons_a", "property:3", play=lawyer_says, play_loop=True) as first,
        seat_phone(service, "cons_b", "contract:1") as second,
        seat_phone(service, "cons_c", "contract:1") as third,
    ):
        a, b, c = (p.seat_id for p in (first, second, third))  # type: ignore[attr-defined]
        caller = new_caller()
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller, play=caller_says,
                                    play_loop=True)  # fmt: skip
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            call_id = await reach_queue(phone, call, service, caller, "consult_property")
            a_call = await answered(first)
            logged(service, call_id, "queue.connected", seat_id=a)

            status, body = service.api(
                "POST",
                f"/api/acd/calls/{call_id}/transfer",
                {"to": "queue:consult_contract", "mode": "consult"},
            )
            assert status == 400 and body["error"]["code"] == "needs_person", body

            # Consult B: the caller is on hold, A and B talk (B hears A, not the caller).
            assert transfer(service, call_id, f"seat:{b}", "consult")["status"] == "ringing"
            b_call = await answered(second)
            view = consult_answered(service, call_id)
            assert view["on_hold"] and view["seat_id"] == a, view
            heard = await listen(
                second, b_call, tmp_path / "b-consult.wav", lawyer_says, caller_says
            )
            from_a = score(heard, lawyer_says)
            from_caller = score(heard, caller_says)
            assert from_a > HEARD, f"B does not hear A during the consultation (r={from_a:.3f})"
            assert from_caller < NOT_HEARD, f"B hears the held caller (r={from_caller:.3f})"

            # Cancel: B is hung up, the caller is back with A.
            status, body = service.api("POST", f"/api/acd/calls/{call_id}/transfer/cancel")
            assert status == 200 and body["status"] == "cancelled", body
            await second.wait_event("disconnected", call=b_call, timeout=10)
            heard = await listen(first, a_call, tmp_path / "a-back.wav", caller_says)
            r = score(heard, caller_says)
            assert r > HEARD, f"A does not hear the caller after the cancel (r={r:.3f})"

            # Three-way: C (an interpreter) joins the same bridge and hears both.
            status, body = service.api(
                "POST", f"/api/acd/calls/{call_id}/conference", {"to": f"seat:{c}"}
            )
            assert status == 200 and body["status"] == "ringing", body
            c_call = await answered(third)
            heard = await listen(third, c_call, tmp_path / "c-heard.wav", caller_says, lawyer_says)
            r = score(heard, caller_says)
            assert r > HEARD_IN_MIX, f"the third party does not hear the caller (r={r:.3f})"
            r = score(heard, lawyer_says)
            assert r > HEARD_IN_MIX, f"the third party does not hear the lawyer (r={r:.3f})"
            await third.hangup(c_call)  # the interpreter leaves; the call goes on
            await third.wait_event("disconnected", call=c_call, timeout=5)
            wait_for(
                lambda: service.api("GET", f"/api/acd/calls/{call_id}")[1]["conference"] == [],
                5,
                message="the third party to leave the call",
            )

            # Consult B again and complete: A is released, B has the caller.
            transfer(service, call_id, f"seat:{b}", "consult")
            b_again = await answered(second)
            consult_answered(service, call_id)
            status, body = service.api("POST", f"/api/acd/calls/{call_id}/transfer/complete")
            assert status == 200 and body["status"] == "completed", body
            await first.wait_event("disconnected", call=a_call, timeout=10)
            logged(service, call_id, "queue.transferred", to_seat=b, seat_id=a)
            logged(service, call_id, "queue.connected", seat_id=b)
            assert service.seat(b)["state"] == "on_call"
            # B's phone was not rung again: the consultation leg itself took the caller.
            assert len(second.find_events("incoming")) == 2
            heard = await listen(second, b_again, tmp_path / "b-after.wav", caller_says)
            r = score(heard, caller_says)
            assert r > HEARD, f"B does not hear the caller after completing (r={r:.3f})"

            await second.hangup(b_again)  # B ends the call: the caller is asked for a rating
            service.wait_logged(mask_number(caller), "survey.offered", timeout=10)
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)

        events = service.wait_call_ended(mask_number(caller))
        connected = [e.data["seat_id"] for e in events if e.type == "queue.connected"]
        assert connected == [a, b], connected
        transferred = [e.data for e in events if e.type == "queue.transferred"]
        assert len(transferred) == 1 and transferred[0]["to_seat"] == b, transferred
        completed = [e.data for e in events if e.type == "queue.completed"]
        assert [(x["seat_id"], x["by"]) for x in completed] == [(b, "seat")], completed
        wait_seat(service, a, "available", "wrap_up")


class _OneCall:
    """Only what the API's authorisation looks at: seat ``s1`` is on call ``c1``."""

    callback_dial = transfer_dial = None

    def connected_seat(self, call_id: str) -> str | None:
        return "s1" if call_id == "c1" else None

    async def transfer(self, call_id: str, target, mode: str) -> dict:
        return {"call_id": call_id, "to": str(target), "mode": mode, "status": "queued"}


async def test_only_the_seat_on_the_call_a_supervisor_or_an_administrator_may_transfer():
    from aiohttp.test_utils import TestClient, TestServer

    from acd import api as acd_api
    from hotline.web import Principal, Role, new_app

    async def from_header(request):
        role, _, seat = request.headers.get("X-Test", "").partition(":")
        return Principal(id=role, role=Role(role), seat_id=seat or None) if role else None

    app = new_app(object(), [from_header])
    acd_api.setup(app, _OneCall())  # type: ignore[arg-type]
    body = {"to": "queue:consult_family"}
    async with TestClient(TestServer(app)) as client:

        async def status(who: str, call_id: str = "c1") -> int:
            response = await client.post(
                f"/api/acd/calls/{call_id}/transfer", json=body, headers={"X-Test": who}
            )
            return response.status

        assert await status("seat_lawyer:s1") == 200
        assert await status("seat_lawyer:s2") == 403
        assert await status("seat_lawyer:s1", "c2") == 403
        assert await status("supervisor") == 200
        assert await status("administrator") == 200
        assert await status("auditor") == 403
        assert await status("") == 401
        response = await client.post(
            "/api/acd/calls/c1/transfer", json={"to": "desk:7"}, headers={"X-Test": "supervisor"}
        )
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "bad_target"
