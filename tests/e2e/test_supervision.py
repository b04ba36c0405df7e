"""Hold / resume and supervisor monitoring with real calls, real Asterisk and pjsua2 phones.

A caller presses through the IVR to a topic queue and a seat lawyer answers, as in the transfer
tests. Then the ACD's call API (what the desk's buttons and the wallboard call) holds and resumes
the caller, and a supervisor signed in to the desk listens on the phone linked to their account:
silent monitor, whisper to the seat, barge-in. Who hears whom is checked on the audio itself
(``segment_correlation`` against the WAV each party plays); what happened, and who listened, in
the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp
import pytest

from agent_desk.auth import AuthStore, DeskAuthConfig
from hotline.web import Role
from sim.audio import rms_dbfs
from sim.phone import Phone

from .test_acd_transfer import (
    HEARD,
    NOT_HEARD,
    add_seat,
    answered,
    listen,
    logged,
    reach_queue,
    score,
    seat_phone,
    speech,
    uri_for,
)
from .test_first_call import new_caller

pytestmark = pytest.mark.e2e

PASSWORD = "Correct-Horse-Battery-9"
FAST = DeskAuthConfig(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)


def add_user(service, username: str, role: Role, seat_id: str | None) -> None:
    """A desk account in the service's database (what ``hotline users add`` makes)."""
    store = AuthStore(service.engine, FAST)
    if store.get_user(username) is None:
        store.create_user(
            username, role, seat_id=seat_id, password=PASSWORD, must_change_password=False
        )


@contextlib.asynccontextmanager
async def desk_session(service, username: str):
    """Signed in to the desk as a browser would be: the session cookie and the CSRF token."""
    async with aiohttp.ClientSession(
        base_url=service.base_url, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        async with http.post(
            "/api/auth/login", json={"username": username, "password": PASSWORD}
        ) as response:
            assert response.status == 200, await response.text()
            csrf = (await response.json())["csrf_token"]
        http.headers["X-CSRF-Token"] = csrf  # type: ignore[index]
        yield http


async def post(http: aiohttp.ClientSession, path: str, body: dict | None = None):
    async with http.post(path, json=body or {}) as response:
        return response.status, await response.json()


@contextlib.asynccontextmanager
async def supervisor_phone(service, seat_id: str, **auto_answer):
    """The supervisor's own phone: a SIP seat that is never logged in to the ACD (it is never
    offered queue calls), answering after 200 ms."""
    seat_id, password = add_seat(service, seat_id, "traffic:1")
    async with Phone.start(
        seat_id, registrar=service.registrar, user=seat_id, password=password
    ) as phone:
        phone.seat_id = seat_id  # type: ignore[attr-defined]
        await phone.wait_event("reg_state", active=True, code=200, timeout=10)
        await phone.set_auto_answer("answer", delay_ms=200, **auto_answer)
        yield phone


async def hear_all(*listeners: tuple[Phone, str, Path, Path]) -> None:
    """Record several phones at the same time (each long enough for its reference)."""
    await asyncio.gather(*(listen(p, c, path, ref) for p, c, path, ref in listeners))


async def test_hold_plays_music_to_the_caller_and_resume_brings_the_lawyer_back(
    hotline_service, tmp_path
):
    service = hotline_service
    lawyer_says = speech(tmp_path / "lawyer.wav", "您好，我是律师，请您稍等，我查一下法条。")
    async with seat_phone(
        service, "hold_a", "general_law:2", play=lawyer_says, play_loop=True
    ) as seat:
        caller = new_caller()
        async with Phone.start("caller") as phone:
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            call_id = await reach_queue(phone, call, service, caller, "consult_other")
            await answered(seat)
            logged(service, call_id, "queue.connected", seat_id=seat.seat_id)  # type: ignore[attr-defined]

            status, body = service.api("POST", f"/api/acd/calls/{call_id}/hold")
            assert status == 200 and body["on_hold"] is True, body
            status, body = service.api("POST", f"/api/acd/calls/{call_id}/hold")
            assert status == 409 and body["error"]["code"] == "already_on_hold", body
            status, view = service.api("GET", f"/api/acd/calls/{call_id}")
            assert view["on_hold"] is True, view
            held = await listen(phone, call, tmp_path / "caller-on-hold.wav", lawyer_says)
            # Music, not the lawyer: not silent, and the lawyer's words are not in it.
            assert score(held, lawyer_says) < NOT_HEARD
            assert rms_dbfs(held) > -40, f"no hold music ({rms_dbfs(held):.1f} dBFS)"

            status, body = service.api("POST", f"/api/acd/calls/{call_id}/resume")
            assert status == 200 and body["on_hold"] is False, body
            back = await listen(phone, call, tmp_path / "caller-resumed.wav", lawyer_says)
            assert score(back, lawyer_says) > HEARD
            status, body = service.api("POST", f"/api/acd/calls/{call_id}/resume")
            assert status == 409 and body["error"]["code"] == "not_on_hold", body
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)

    held_event = logged(service, call_id, "call.held")
    assert held_event["seat_id"] == seat.seat_id  # type: ignore[attr-defined]
    resumed = logged(service, call_id, "call.resumed", why="resumed")
    assert resumed["held_s"] > 1.0, resumed


async def test_supervisor_monitors_whispers_and_barges_in_from_their_own_phone(
    hotline_service, tmp_path
):
    service = hotline_service
    caller_says = speech(tmp_path / "caller.wav", "我的工资被拖欠了三个月，我该怎么办？")
    boss_says = speech(tmp_path / "supervisor.wav", "提醒律师：告诉他可以申请劳动仲裁。")
    lawyer_says = speech(tmp_path / "lawyer.wav", "您可以向劳动争议仲裁委员会申请仲裁。")
    async with (
        seat_phone(service, "sup_lawyer", "general_law:2") as seat,
        supervisor_phone(service, "sup_phone") as boss,
    ):
        seat_id, boss_id = seat.seat_id, boss.seat_id  # type: ignore[attr-defined]
        add_user(service, "sup_lawyer_user", Role.SEAT_LAWYER, seat_id)
        add_user(service, "sup_boss", Role.SUPERVISOR, boss_id)
        caller = new_caller()
        async with (
            Phone.start("caller") as phone,
            desk_session(service, "sup_boss") as supervisor,
            desk_session(service, "sup_lawyer_user") as lawyer,
        ):
            call = await phone.call(uri_for(service), from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            call_id = await reach_queue(phone, call, service, caller, "consult_other")
            seat_call = await answered(seat)
            logged(service, call_id, "queue.connected", seat_id=seat_id)

            # A seat lawyer may not listen in (403), even on their own call.
            status, body = await post(lawyer, f"/api/acd/calls/{call_id}/supervise",
                                      {"mode": "monitor"})  # fmt: skip
            assert status == 403, body

            # 1. Silent monitor: the supervisor hears the caller; nobody hears the supervisor.
            status, body = await post(supervisor, f"/api/acd/calls/{call_id}/supervise",
                                      {"mode": "monitor"})  # fmt: skip
            assert status == 200 and body["mode"] == "monitor", body
            incoming = await boss.wait_event("incoming", timeout=5)
            boss_call = str(incoming["call"])
            await boss.wait_event("media_active", call=boss_call, timeout=5)
            await phone.play(call, caller_says, loop=True)
            await boss.play(boss_call, boss_says, loop=True)
            await hear_all(
                (boss, boss_call, tmp_path / "monitor-boss-hears.wav", caller_says),
                (phone, call, tmp_path / "monitor-caller-hears.wav", boss_says),
                (seat, seat_call, tmp_path / "monitor-seat-hears.wav", boss_says),
            )
            assert score(tmp_path / "monitor-boss-hears.wav", caller_says) > HEARD
            assert score(tmp_path / "monitor-caller-hears.wav", boss_says) < NOT_HEARD
            assert score(tmp_path / "monitor-seat-hears.wav", boss_says) < NOT_HEARD

            # 2. Whisper (same line, no new ring): the lawyer hears the supervisor, the caller
            # does not. The caller is quiet so the lawyer hears the supervisor alone.
            await phone.stop_play(call)
            status, body = await post(supervisor, f"/api/acd/calls/{call_id}/supervise",
                                      {"mode": "whisper"})  # fmt: skip
            assert status == 200 and body["mode"] == "whisper", body
            await hear_all(
                (seat, seat_call, tmp_path / "whisper-seat-hears.wav", boss_says),
                (phone, call, tmp_path / "whisper-caller-hears.wav", boss_says),
            )
            assert score(tmp_path / "whisper-seat-hears.wav", boss_says) > HEARD
            assert score(tmp_path / "whisper-caller-hears.wav", boss_says) < NOT_HEARD

            # 3. Barge-in: everybody hears the supervisor, and the supervisor hears the lawyer.
            status, body = await post(supervisor, f"/api/acd/calls/{call_id}/supervise",
                                      {"mode": "barge"})  # fmt: skip
            assert status == 200 and body["mode"] == "barge", body
            await hear_all(
                (seat, seat_call, tmp_path / "barge-seat-hears.wav", boss_says),
                (phone, call, tmp_path / "barge-caller-hears.wav", boss_says),
            )
            assert score(tmp_path / "barge-seat-hears.wav", boss_says) > HEARD
            assert score(tmp_path / "barge-caller-hears.wav", boss_says) > HEARD
            await boss.stop_play(boss_call)
            await seat.play(seat_call, lawyer_says, loop=True)
            await listen(boss, boss_call, tmp_path / "barge-boss-hears.wav", lawyer_says)
            assert score(tmp_path / "barge-boss-hears.wav", lawyer_says) > HEARD

            # Another supervisor's request would be refused while this one listens; this one
            # ends it: the supervisor's phone is hung up, the call goes on.
            status, body = await post(supervisor, f"/api/acd/calls/{call_id}/supervise/stop")
            assert status == 200, body
            await boss.wait_event("disconnected", call=boss_call, timeout=10)
            status, view = service.api("GET", f"/api/acd/calls/{call_id}")
            assert status == 200 and view["supervision"] is None and view["seat_id"] == seat_id
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)

    started = logged(service, call_id, "supervision.started")
    assert started == {**started, "mode": "monitor", "supervisor": "sup_boss", "phone": boss_id}
    logged(service, call_id, "supervision.mode_changed", mode="whisper", **{"from": "monitor"})
    logged(service, call_id, "supervision.mode_changed", mode="barge", **{"from": "whisper"})
    ended = logged(service, call_id, "supervision.ended", why="stopped", by="sup_boss")
    assert ended["duration_s"] > 5, ended
