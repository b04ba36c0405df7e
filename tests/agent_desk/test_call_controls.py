"""Who may use the call controls and supervision of the ACD's call API, forced seat states with a
reason, the callback list, and silent monitoring staying silent on the desk. The audio of hold,
monitor, whisper and barge-in is tested with real phones in tests/e2e/test_supervision.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from desk_client import DeskClient
from desk_server import PASSWORD, SERVICE_TOKEN, DeskServer

from agent_desk.live import LiveHub
from hotline.events.log import events_for_call
from hotline.events.types import CallEvent
from hotline.testing import wait_for
from hotline.web import Principal, Role


async def signed_in(server: DeskServer, username: str) -> DeskClient:
    client = DeskClient(server.url)
    status, body = await client.login(username, PASSWORD)
    assert status == 200, body
    return client


async def test_only_supervisors_supervise_and_lawyers_act_only_on_their_own_call(
    full_server: DeskServer,
) -> None:
    server = full_server
    server.add_user("boss", Role.SUPERVISOR, "s900")  # a supervisor with a phone
    server.add_user("admin", Role.ADMINISTRATOR)
    lawyer = await signed_in(server, "lawyer1")
    supervisor = await signed_in(server, "super")  # no phone linked
    boss = await signed_in(server, "boss")
    admin = await signed_in(server, "admin")
    async with lawyer, supervisor, boss, admin:
        for path in ("supervise", "supervise/stop"):
            status, body = await lawyer.post(f"/api/acd/calls/c-1/{path}", {"mode": "monitor"})
            assert status == 403, body
        # A lawyer's hold, resume, hang-up on a call that is not at their seat: refused.
        for action in ("hold", "resume", "hangup"):
            status, body = await lawyer.post(f"/api/acd/calls/c-1/{action}")
            assert status == 403 and body["error"]["code"] == "not_your_call", body
        status, body = await supervisor.post("/api/acd/calls/c-1/supervise", {"mode": "monitor"})
        assert status == 409 and body["error"]["code"] == "no_phone", body
        status, body = await boss.post("/api/acd/calls/c-1/supervise", {"mode": "monitor"})
        assert status == 404 and body["error"]["code"] == "unknown_call", body
        status, body = await boss.post("/api/acd/calls/c-1/supervise", {"mode": "listen"})
        assert status == 400 and body["error"]["code"] == "bad_mode", body
        # An administrator without a phone names one; it must look like a seat id.
        status, body = await admin.post(
            "/api/acd/calls/c-1/supervise", {"mode": "whisper", "phone": "PJSIP/x;evil"}
        )
        assert status == 409 and body["error"]["code"] == "no_phone", body
        status, body = await admin.post(
            "/api/acd/calls/c-1/supervise", {"mode": "whisper", "phone": "s900"}
        )
        assert status == 404, body
        # Without the CSRF token even a supervisor's request is refused.
        status, _ = await boss.post("/api/acd/calls/c-1/supervise", {"mode": "barge"}, csrf=False)
        assert status == 403
        status, body = await supervisor.post("/api/acd/calls/c-1/hold")
        assert status == 404 and body["error"]["code"] == "unknown_call", body
    # The lawyer's two refused attempts are in the security audit log.
    entries = server.store.audit_entries(100, None)
    denied = [e for e in entries if e["action"] == "access.denied" and "supervise" in e["target"]]
    assert [e["actor"] for e in denied] == ["lawyer1", "lawyer1"], denied


async def test_a_forced_state_is_logged_with_who_and_why(full_server: DeskServer) -> None:
    server = full_server
    supervisor = await signed_in(server, "super")
    lawyer = await signed_in(server, "lawyer1")
    async with supervisor, lawyer:
        status, body = await supervisor.post("/api/acd/seats/s103/login", {"reason": "早班"})
        assert status == 200 and body["state"] == "available", body
        status, body = await supervisor.post("/api/acd/seats/s103/pause", {"reason": "培训"})
        assert status == 200 and body["state"] == "paused", body
        # The lawyer's own changes are not "forced".
        assert (await lawyer.post("/api/acd/seats/s101/login"))[0] == 200

    def forced(seat: str) -> list[tuple[str, str, str]]:
        rows = events_for_call(server.engine, f"seat:{seat}")
        return [(e.data["action"], e.data["reason"], e.data["by"]) for e in rows
                if e.type == "seat.forced"]  # fmt: skip

    wanted = [("login", "早班", "super"), ("pause", "培训", "super")]
    wait_for(lambda: forced("s103") == wanted, 5, message="seat.forced events logged")
    # Written after the lawyer's own login, which went through the same log.
    wait_for(lambda: events_for_call(server.engine, "seat:s101"), 5, message="s101 logged")
    assert forced("s101") == []


async def test_callback_list_shows_the_callers_waiting_in_my_queues(
    full_server: DeskServer,
) -> None:
    import aiohttp

    server = full_server
    server.acd_input("call_arrived", "c-cb-1", "consult_labor", caller_key="ab" * 32)
    server.acd_input("callback_requested", "c-cb-1")
    server.acd_input("call_arrived", "c-cb-2", "consult_family")
    lawyer = await signed_in(server, "lawyer1")
    async with lawyer:
        status, body = await lawyer.get("/api/acd/callbacks")
        assert status == 200, body
        assert [c["call_id"] for c in body["callbacks"]] == ["c-cb-1"]  # c-cb-2 just waits
        assert body["callbacks"][0]["queue"] == "consult_labor"
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}/api/acd/callbacks", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        ) as response:
            assert response.status == 200
            assert len((await response.json())["callbacks"]) == 1


def test_supervision_events_never_reach_the_seat_lawyer() -> None:
    hub = LiveHub()
    lawyer = hub.connect(Principal("lawyer1", Role.SEAT_LAWYER, seat_id="s101"))
    boss = hub.connect(Principal("boss", Role.SUPERVISOR, seat_id="s900"))
    at = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)

    def ev(seq: int, type_: str, **data: Any) -> CallEvent:
        return CallEvent("c-9", seq, at, type_, data)

    hub.ingest(ev(1, "call.entered", caller="13800138000", dialled="12348"))
    hub.ingest(ev(2, "queue.offered", call_id="c-9", queue="labour", seat_id="s101"))
    hub.ingest(ev(3, "queue.connected", call_id="c-9", queue="labour", seat_id="s101"))
    hub.ingest(ev(4, "supervision.started", seat_id="s101", mode="monitor", supervisor="boss"))
    hub.ingest(ev(5, "call.held", seat_id="s101", by="lawyer1"))
    seen = [m["event"]["type"] for m in list(lawyer.outbox) if m.get("kind") == "event"]
    assert seen == ["queue.offered", "queue.connected", "call.held"]
    assert lawyer.outbox[-1]["call"]["on_hold"] is True  # the summary says so (wallboard)
    hub.ingest(ev(6, "call.resumed", seat_id="s101", held_s=3.5, why="resumed"))
    assert lawyer.outbox[-1]["call"]["on_hold"] is False
    seen = [m["event"]["type"] for m in list(boss.outbox) if m.get("kind") == "event"]
    assert "supervision.started" in seen and "call.held" in seen
