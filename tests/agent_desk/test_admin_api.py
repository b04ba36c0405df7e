"""The administration API on the real service: ``HotlineService.http_app()`` with its database
(SQLite and PostgreSQL), flow store, ACD and desk sign-in, served by aiohttp's test server.

Only Asterisk is absent: ``service.asterisk`` is a recorder of what would be pushed to it (the
real push, re-render + PJSIP reload, is exercised by tests/e2e/test_admin_seat.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from desk_client import DeskClient
from desk_server import FAST, PASSWORD
from sqlalchemy import select

from acd.models import SeatRow
from acd.seats import list_seats
from agent_desk.auth import AuthStore, DeskAuthConfig
from agent_desk.http import DESK_KEY
from hotline.asterisk.render import SeatCredential, seat_credential
from hotline.config import Settings
from hotline.db import migrate
from hotline.secrets import load_or_create
from hotline.service import HotlineService
from hotline.web import Role
from ivr.calendar import HOLIDAYS_DIR
from ivr.flow import DEFAULT_FLOW

USERS = {
    "lawyer1": (Role.SEAT_LAWYER, "s101"),
    "super": (Role.SUPERVISOR, None),
    "admin": (Role.ADMINISTRATOR, None),
    "audit": (Role.AUDITOR, None),
}


@dataclass
class RecordingAsterisk:
    """Stands in for ``AsteriskRuntime``: a running instance whose PJSIP reloads are recorded."""

    installed: bool = True
    reloads: list[list[SeatCredential]] = field(default_factory=list)

    def status(self) -> Any:
        return type("Status", (), {"running": True})()

    def reload_pjsip(self, seats: list[SeatCredential] | None = None) -> None:
        self.reloads.append(list(seats or []))


@dataclass
class Admin:
    service: HotlineService
    server: TestServer
    asterisk: RecordingAsterisk
    store: AuthStore
    settings: Settings

    def client(self) -> DeskClient:
        return DeskClient(str(self.server.make_url("")).rstrip("/"))

    async def signed_in(self, username: str) -> DeskClient:
        client = self.client()
        status, body = await client.login(username, PASSWORD)
        assert status == 200, body
        return client

    def audit(self, action: str) -> list[dict]:
        return [e for e in self.store.audit_entries(500) if e["action"] == action]


async def start_admin(tmp_path: Path, database_url: str, monkeypatch) -> AsyncIterator[Admin]:
    """The service's app with its flow store, ACD and desk; its holiday files are the runtime
    directory's copies of the packaged ones."""
    settings = Settings(runtime_dir=tmp_path / "runtime", database={"url": database_url})
    settings.runtime_path.mkdir(parents=True)
    monkeypatch.setattr(DeskAuthConfig, "from_service", classmethod(lambda cls, s: FAST))
    service = HotlineService(settings, load_or_create(settings.runtime_path), sounds_path="/s")
    await asyncio.to_thread(migrate, service.engine)
    await service.event_log.start()
    service._start_acd([])
    recorder = RecordingAsterisk()
    service.asterisk = recorder  # type: ignore[assignment]
    app = service.http_app()
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    store = app[DESK_KEY].auth.store
    for name, (role, seat) in USERS.items():
        store.create_user(name, role, seat_id=seat, password=PASSWORD, must_change_password=False)
    try:
        yield Admin(service, server, recorder, store, settings)
    finally:
        await server.close()
        if service.acd is not None:
            await service.acd.close()
        await service.event_log.close()
        service.engine.dispose()


@pytest.fixture
async def admin_db(db, tmp_path: Path, monkeypatch) -> AsyncIterator[Admin]:
    """On SQLite and PostgreSQL: where seats and the audit are stored."""
    async for admin in start_admin(tmp_path, db.url, monkeypatch):
        yield admin


@pytest.fixture
async def admin(tmp_path: Path, monkeypatch) -> AsyncIterator[Admin]:
    async for a in start_admin(tmp_path, f"sqlite:///{tmp_path / 'hotline.db'}", monkeypatch):
        yield a


# --- roles and CSRF --------------------------------------------------------------------------


async def test_only_the_administrator_changes_others_read_or_are_refused(admin: Admin) -> None:
    new_seat = {"seat_id": "labor9", "skills": {"labor": 2}}
    async with admin.client() as anonymous:
        assert (await anonymous.get("/api/admin/seats"))[0] == 401
    for user, reads in [("lawyer1", 403), ("super", 200), ("audit", 200)]:
        async with await admin.signed_in(user) as c:
            for path in ("/api/admin/seats", "/api/admin/queues", "/api/admin/flow",
                         "/api/admin/calendar", "/api/admin/holidays/cn-2026"):  # fmt: skip
                status, _ = await c.get(path)
                assert status == reads, (user, path, status)
            for path, body in [
                ("/api/admin/seats", new_seat),
                ("/api/admin/seats/s101", {"region": "x"}),
                ("/api/admin/seats/s101/disable", {}),
                ("/api/admin/flow", {"text": DEFAULT_FLOW.read_text()}),
                ("/api/admin/flow/rollback", {"version": 1}),
                ("/api/admin/holidays/cn-2026", {"text": "holidays: [2026-01-01]"}),
            ]:
                status, resp = await c.post(path, body)
                assert (status, resp["error"]["code"]) == (403, "forbidden"), (user, path)
    async with await admin.signed_in("admin") as c:
        status, resp = await c.post("/api/admin/seats", new_seat, csrf=False)
        assert (status, resp["error"]["code"]) == (403, "csrf_failed")
        status, resp = await c.post("/api/admin/seats", new_seat, csrf="x" * 43)
        assert (status, resp["error"]["code"]) == (403, "csrf_failed")
    assert list_seats(admin.service.engine, active_only=False) == []
    assert not admin.asterisk.reloads
    denied = {(e["actor"], e["target"]) for e in admin.audit("access.denied")}
    assert ("lawyer1", "/api/admin/seats") in denied and ("audit", "/api/admin/flow") in denied
    assert admin.audit("csrf.rejected")


# --- seats -----------------------------------------------------------------------------------


async def test_a_seat_is_created_with_credentials_shown_once(admin_db: Admin) -> None:
    admin = admin_db
    async with await admin.signed_in("admin") as c:
        status, body = await c.post(
            "/api/admin/seats",
            {"seat_id": "labor7", "display_name": "赵律师", "skills": "labor:3,family:1",
             "region": "武汉"},
        )  # fmt: skip
        assert status == 201, body
        password = body["sip"]["password"]
        assert body["sip"]["user"] == "labor7" and len(password) >= 20
        assert body["seat"]["skills"] == {"labor": 3, "family": 1}
        assert body["asterisk"] == {"ok": True, "message": "Asterisk reloaded"}

        # Stored as the digest Asterisk needs, never in clear; never shown again.
        with admin.service.engine.connect() as conn:
            row = conn.execute(select(SeatRow).where(SeatRow.seat_id == "labor7")).one()
        assert row.md5_cred == seat_credential("labor7", password).md5_cred
        assert password not in repr(tuple(row))
        status, listing = await c.get("/api/admin/seats")
        assert status == 200 and password not in repr(listing)
        (seat,) = listing["seats"]
        assert seat["display_name"] == "赵律师" and seat["region"] == "武汉"
        assert seat["live"]["state"] == "offline"

        # Asterisk was re-rendered with the new seat's credential and reloaded.
        assert [(s.name, s.md5_cred) for s in admin.asterisk.reloads[-1]] == [
            ("labor7", row.md5_cred)
        ]
        # The ACD knows the seat: it can sign in and is offered as having its skills.
        status, view = await c.post("/api/acd/seats/labor7/login")
        assert status == 200 and view["state"] == "available", view
        assert view["skills"] == {"labor": 3, "family": 1} and view["region"] == "武汉"

        # Malformed requests change nothing and say why.
        for bad, words in [
            ({"seat_id": "labor7", "skills": {}}, "already exists"),
            ({"seat_id": "Bad Id", "skills": {}}, "seat id"),
            ({"seat_id": "labor8", "skills": "labor=3"}, "NAME:LEVEL"),
            ({"seat_id": "labor8", "skills": {"labor": "high"}}, "whole number"),
            ({"seat_id": 7}, "seat_id must be text"),
            ({"seat_id": "labor8", "region": "x" * 65}, "region"),
        ]:
            status, resp = await c.post("/api/admin/seats", bad)
            assert status == 400 and resp["error"]["code"] == "invalid_seat", (bad, resp)
            assert words in resp["error"]["message"], resp
        async with c.http.post(
            f"{c.base}/api/admin/seats", data=b"{not json", headers={"X-CSRF-Token": c.csrf}
        ) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    assert [r.seat_id for r in list_seats(admin.service.engine, active_only=False)] == ["labor7"]
    assert len(admin.asterisk.reloads) == 1
    (created,) = admin.audit("seat.created")
    assert created["actor"] == "admin" and created["target"] == "labor7"
    assert created["details"]["skills"] == {"labor": 3, "family": 1}
    assert password not in repr(admin.store.audit_entries(500))
    assert len(admin.audit("seat.create_failed")) == 6


async def test_edit_skills_and_disable_reach_the_acd_and_asterisk(admin_db: Admin) -> None:
    admin = admin_db
    core = admin.service.acd.core
    async with await admin.signed_in("admin") as c:
        assert (await c.post("/api/admin/seats", {"seat_id": "fam1", "skills": "family:1"}))[
            0
        ] == 201
        # Signed out: the ACD takes the new skills at once.
        status, body = await c.post("/api/admin/seats/fam1", {"skills": {"family": 3, "labor": 1}})
        assert status == 200 and body["acd"] == "applied", body
        assert core.seat_view("fam1").skills == {"family": 3, "labor": 1}
        assert body["changes"]["skills"] == {
            "from": {"family": 1},
            "to": {"family": 3, "labor": 1},
        }

        # Signed in: stored now, given to the ACD when the seat signs out.
        assert (await c.post("/api/acd/seats/fam1/login"))[0] == 200
        status, body = await c.post("/api/admin/seats/fam1", {"region": "宜昌"})
        assert status == 200 and body["acd"] == "after_logout" and body["seat"]["pending"]
        assert core.seat_view("fam1").region != "宜昌"
        assert (await c.post("/api/acd/seats/fam1/logout"))[0] == 200
        for _ in range(100):
            if core.seat_view("fam1").region == "宜昌":
                break
            await asyncio.sleep(0.05)
        assert core.seat_view("fam1").region == "宜昌"

        for bad in ({"skills": "family"}, {"region": ""}, {"colour": "red"}):
            status, resp = await c.post("/api/admin/seats/fam1", bad)
            assert status == 400 and resp["error"]["code"] == "invalid_seat", resp
        assert (await c.post("/api/admin/seats/nobody", {"region": "x"}))[0] == 404

        # Disable a signed-in seat: signed out, gone from Asterisk, cannot sign in again.
        assert (await c.post("/api/acd/seats/fam1/login"))[0] == 200
        status, body = await c.post("/api/admin/seats/fam1/disable")
        assert status == 200 and body["acd"] == "signed_out" and not body["seat"]["active"]
        assert core.seat_view("fam1").state == "offline"
        assert admin.asterisk.reloads[-1] == []
        assert (await c.post("/api/acd/seats/fam1/login"))[0] == 404
        status, body = await c.post("/api/admin/seats/fam1/enable")
        assert status == 200 and body["seat"]["active"]
        assert [s.name for s in admin.asterisk.reloads[-1]] == ["fam1"]
        assert (await c.post("/api/acd/seats/fam1/login"))[0] == 200
    row = next(r for r in list_seats(admin.service.engine) if r.seat_id == "fam1")
    assert row.skills == {"family": 3, "labor": 1} and row.region == "宜昌"
    updates = admin.audit("seat.updated")
    assert {"region": {"from": "default", "to": "宜昌"}} in [
        u["details"]["changes"] for u in updates
    ]
    assert [e["target"] for e in admin.audit("seat.disabled")] == ["fam1"]
    assert len(admin.audit("seat.update_failed")) == 3


async def test_a_seat_sip_password_reset_replaces_the_credential(admin: Admin) -> None:
    async with await admin.signed_in("admin") as c:
        status, body = await c.post("/api/admin/seats", {"seat_id": "lab3", "skills": "labor:1"})
        first = body["sip"]["password"]
        status, body = await c.post("/api/admin/seats/lab3/reset-sip")
        assert status == 200 and body["sip"]["user"] == "lab3", body
        second = body["sip"]["password"]
        assert second != first
        assert (await c.post("/api/admin/seats/nobody/reset-sip"))[0] == 404
    async with await admin.signed_in("super") as c:
        status, body = await c.post("/api/admin/seats/lab3/reset-sip")
        assert (status, body["error"]["code"]) == (403, "forbidden")
    (row,) = list_seats(admin.service.engine)
    assert row.md5_cred == seat_credential("lab3", second).md5_cred
    assert [(s.name, s.md5_cred) for s in admin.asterisk.reloads[-1]] == [("lab3", row.md5_cred)]
    (reset,) = admin.audit("seat.sip_password_reset")
    assert reset["actor"] == "admin" and second not in repr(reset)


async def test_queues_are_listed_with_their_settings(admin: Admin) -> None:
    async with await admin.signed_in("super") as c:
        status, body = await c.get("/api/admin/queues")
    assert status == 200
    queues = {q["name"]: q for q in body["queues"]}
    assert set(body["flow_queues"]) <= set(queues) and "consult_labor" in queues
    assert {q["origin"] for q in body["queues"] if q["name"] in body["flow_queues"]} == {"flow"}
    labor = queues["consult_labor"]
    assert labor["skill"] == "labor" and labor["strategy"] == "longest_idle"
    assert labor["max_wait_s"] == admin.settings.acd.max_wait_s
    assert labor["overflow"] == {"after_s": 90.0, "to_queue": "operator"}
    assert body["origin_priority"] == {"110": 2}
    assert body["source"]["flow_file"] == str(DEFAULT_FLOW)


# --- flows -----------------------------------------------------------------------------------

BROKEN_TARGET = "next: main_menu"


def good_flow(flow_id: str) -> str:
    return DEFAULT_FLOW.read_text().replace("id: default-12348", f"id: {flow_id}", 1)


async def test_flow_upload_is_validated_switched_live_and_rolled_back(admin: Admin) -> None:
    flows = admin.service.flows
    original = DEFAULT_FLOW.read_text()
    assert BROKEN_TARGET in original
    broken = original.replace(BROKEN_TARGET, "next: no_such_node", 1)
    broken_line = broken.splitlines().index("      next: no_such_node") + 1
    async with await admin.signed_in("admin") as c:
        status, body = await c.get("/api/admin/flow")
        assert (
            status == 200
            and body["text"] == original
            and body["live"]["flow_id"] == ("default-12348")
        )
        # Validation only: problems as FILE:LINE, nothing saved.
        status, body = await c.post(
            "/api/admin/flow/validate", {"text": broken, "filename": "broken.yaml"}
        )
        assert status == 200 and not body["ok"]
        assert any(p.startswith(f"broken.yaml:{broken_line}: ") and "no_such_node" in p
                   for p in body["problems"]), body  # fmt: skip
        # A broken upload: 400 with the problems, the flow in service and its file unchanged.
        status, body = await c.post("/api/admin/flow", {"text": broken, "filename": "broken.yaml"})
        assert status == 400 and body["error"]["code"] == "invalid_flow", body
        assert f"broken.yaml:{broken_line}:" in "\n".join(body["error"]["problems"])
        status, body = await c.post(
            "/api/admin/flow", {"text": "flow: [1, 2", "filename": "x.yaml"}
        )
        assert status == 400 and body["error"]["problems"][0].startswith("x.yaml:1: not valid YAML")
        assert (await c.post("/api/admin/flow", {"text": ""}))[0] == 400
        assert flows.current.id == "default-12348" and flows.path == DEFAULT_FLOW
        assert not (admin.settings.runtime_path / "ivr" / "flow.yaml").exists()

        # A good upload is saved to the runtime flow file and is live at once.
        status, body = await c.post(
            "/api/admin/flow", {"text": good_flow("v2"), "filename": "v2.yaml"}
        )
        assert status == 200 and body["version"] == 2 and not body["restart_needed"], body
        runtime_flow = admin.settings.runtime_path / "ivr" / "flow.yaml"
        assert flows.current.id == "v2" and flows.path == runtime_flow
        assert runtime_flow.read_text() == good_flow("v2")
        assert DEFAULT_FLOW.read_text() == original  # the packaged flow is never written
        # A restarted service takes the uploaded flow.
        again = HotlineService(admin.settings, admin.service.secrets, sounds_path="/s")
        assert again.flows.current.id == "v2"
        again.engine.dispose()

        status, body = await c.get("/api/admin/flow")
        history = body["history"]
        assert [(h["version"], h["flow_id"], h["note"]) for h in history] == [
            (1, "default-12348", "initial"),
            (2, "v2", "upload"),
        ]
        assert history[1]["actor"] == "admin"
        status, body = await c.get("/api/admin/flow/versions/1")
        assert status == 200 and body["text"] == original

        # Roll back to the original: live again, and the roll-back is itself a version.
        status, body = await c.post("/api/admin/flow/rollback", {"version": 1})
        assert status == 200 and body["version"] == 3, body
        assert flows.current.id == "default-12348" and runtime_flow.read_text() == original
        for bad in ({"version": 0}, {"version": "1"}, {}):
            status, resp = await c.post("/api/admin/flow/rollback", bad)
            assert status == 400 and resp["error"]["code"] == "invalid_version"
        assert (await c.post("/api/admin/flow/rollback", {"version": 99}))[0] == 404
    assert [e["details"]["version"] for e in admin.audit("flow.updated")] == [2]
    assert [e["target"] for e in admin.audit("flow.rolled_back")] == ["default-12348"]
    failed = admin.audit("flow.update_failed")
    assert {e["target"] for e in failed} >= {"broken.yaml", "x.yaml"}


async def test_a_flow_adding_a_queue_says_the_acd_needs_a_restart(admin: Admin) -> None:
    text = good_flow("v3").replace("queue: consult_labor", "queue: consult_labor_2", 1)
    async with await admin.signed_in("admin") as c:
        status, body = await c.post("/api/admin/flow", {"text": text})
    assert status == 200 and body["restart_needed"], body
    assert "consult_labor_2" in body["queues_changed"]
    assert admin.service.flows.current.id == "v3"


# --- business hours and holidays -------------------------------------------------------------


async def test_calendar_and_holiday_file_upload_with_validation(admin: Admin) -> None:
    flows = admin.service.flows
    christmas = date(2026, 12, 25)  # a Friday: open in the packaged calendar
    assert flows.current.calendar.spans_for(christmas)
    original = (admin.service.holidays_dir / "cn-2026.yaml").read_text()
    async with await admin.signed_in("audit") as c:
        status, body = await c.get("/api/admin/calendar")
    assert status == 200
    assert (
        body["hours"]["weekly"]["mon"] == ["09:00-17:30"] and body["hours"]["weekly"]["sun"] == []
    )
    assert "2026-10-01" in body["hours"]["holidays"] and "2026-10-10" in body["hours"]["workdays"]
    (cn2026,) = [f for f in body["holiday_files"] if f["name"] == "cn-2026"]
    assert {"dates": "2026-10-01..2026-10-07", "name": "国庆节"} in cn2026["holidays"]
    # open_now is what the IVR decides by: its clock (a drill's fixed ivr.clock included).
    sh = ZoneInfo("Asia/Shanghai")
    for moment, open_now in [
        (datetime(2026, 11, 23, 10, 0, tzinfo=sh), True),  # Monday morning
        (datetime(2026, 11, 21, 20, 0, tzinfo=sh), False),  # Saturday evening
        (datetime(2026, 10, 2, 10, 0, tzinfo=sh), False),  # 国庆节
    ]:
        admin.service.calls.clock = lambda moment=moment: moment
        async with await admin.signed_in("audit") as c:
            status, body = await c.get("/api/admin/calendar")
        assert status == 200 and body["hours"]["open_now"] is open_now, moment

    async with await admin.signed_in("admin") as c:
        wrong_year = "holidays:\n  - {name: 元旦, dates: 2026-01-01}\n  - 2027-02-10\n"
        status, body = await c.post("/api/admin/holidays/cn-2027", {"text": wrong_year})
        assert status == 400 and body["error"]["code"] == "invalid_holidays"
        assert body["error"]["problems"] == [
            "cn-2027.yaml:2: holidays: 2026-01-01 is not in 2027 (the file is for 2027)"
        ]
        for text, expected in [
            ("holidays:\n  - 2027-01-01\n  - [oops\n", "cn-2027.yaml:4: not valid YAML"),
            ("holidays:\n  - 2027-01-01\n  - 2027-02-30..2027-03-01\n", "cn-2027.yaml:3: "),
            ("holidays: [2027-01-05..2027-01-02]\n", "runs backwards"),
            ("holiday: [2027-01-01]\n", "expected keys holidays, workdays"),
        ]:
            status, body = await c.post("/api/admin/holidays/cn-2027", {"text": text})
            assert status == 400, body
            assert expected in body["error"]["problems"][0], (text, body)
        for bad_name in ("CN_2027", "cn-2027.yaml", "..%2Fetc"):
            status, body = await c.post(f"/api/admin/holidays/{bad_name}", {"text": "holidays: []"})
            assert status == 400 and body["error"]["code"] == "invalid_name", bad_name
        assert not (admin.service.holidays_dir / "cn-2027.yaml").exists()

        # A new year's file.
        good = "source: test\nholidays:\n  - {name: 元旦, dates: 2027-01-01}\n"
        status, body = await c.post("/api/admin/holidays/cn-2027", {"text": good})
        assert status == 200 and body["version"] == 1, body
        assert (admin.service.holidays_dir / "cn-2027.yaml").read_text() == good

        # Editing the year in force changes the live calendar at once.
        text = original.replace(
            "holidays:\n", "holidays:\n  - {name: 测试休息日, dates: 2026-12-25}\n", 1
        )
        status, body = await c.post("/api/admin/holidays/cn-2026", {"text": text})
        assert status == 200 and body["version"] == 2, body
        assert not flows.current.calendar.spans_for(christmas)
        status, body = await c.get("/api/admin/holidays/cn-2026")
        assert [h["note"] for h in body["history"]] == ["initial", "upload"]
        status, body = await c.post("/api/admin/holidays/cn-2026/rollback", {"version": 1})
        assert status == 200, body
        assert flows.current.calendar.spans_for(christmas)
        assert (admin.service.holidays_dir / "cn-2026.yaml").read_text() == original
    assert (HOLIDAYS_DIR / "cn-2026.yaml").read_text() == original  # the package is untouched
    assert [e["target"] for e in admin.audit("holidays.updated")] == [
        "cn-2026",
        "cn-2027",
    ]  # newest first
    assert len(admin.audit("holidays.update_failed")) >= 6


async def test_an_upload_switches_the_flow_through_the_sighup_path(tmp_path, monkeypatch) -> None:
    """The live switch is ``HotlineService.reload_flow``, the same function SIGHUP runs."""
    async for admin in start_admin(tmp_path, f"sqlite:///{tmp_path / 'h.db'}", monkeypatch):
        service = admin.service
        calls: list[bool] = []

        def counted_reload(reload=service.reload_flow, calls=calls) -> bool:
            calls.append(reload())
            return calls[-1]

        monkeypatch.setattr(service, "reload_flow", counted_reload)
        async with await admin.signed_in("admin") as c:
            status, body = await c.post("/api/admin/flow", {"text": good_flow("via-sighup")})
        assert status == 200, body
        assert calls == [True] and service.flows.current.id == "via-sighup"
        # A later SIGHUP reads the same file: the uploaded flow stays.
        assert service.reload_flow() and service.flows.current.id == "via-sighup"
