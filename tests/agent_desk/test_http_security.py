"""The desk's HTTP security, end to end over real HTTP to the in-process server."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from desk_client import DeskClient
from desk_server import PASSWORD, SERVICE_TOKEN, DeskServer

from hotline.web import Role


def audit_actions(server: DeskServer) -> list[str]:
    return [e["action"] for e in server.store.audit_entries(500)]


@pytest.mark.parametrize(
    ("username", "landing"),
    [("lawyer1", "/desk"), ("super", "/wallboard"), ("admin", "/admin"), ("audit", "/admin")],
)
async def test_sign_in_each_role_lands_on_its_page(
    server: DeskServer, username: str, landing: str
) -> None:
    async with DeskClient(server.url) as c:
        status, body = await c.login(username, PASSWORD)
        assert status == 200
        assert body["landing"] == landing
        assert len(body["csrf_token"]) >= 40
        status, me = await c.get("/api/auth/me")
        assert status == 200 and me["user"]["username"] == username
        assert "password_hash" not in me["user"]
        status, _ = await c.get(landing)
        assert status == 200
        # The sign-in page sends a signed-in user to their own page.
        status, _ = await c.get("/")
        assert status == 302


async def test_session_cookie_flags(server: DeskServer) -> None:
    async with DeskClient(server.url) as c:
        await c.login("lawyer1", PASSWORD)
        assert c.last_login is not None
        cookie = c.last_login.headers["Set-Cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=Strict" in cookie
        assert "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        assert "Max-Age" not in cookie and "expires" not in cookie.lower()


async def test_secure_cookie_when_configured(server_factory: Callable[..., DeskServer]) -> None:
    server = server_factory(secure_cookies="always")
    server.add_user("sup", Role.SUPERVISOR)
    async with DeskClient(server.url) as c:
        status, _ = await c.login("sup", PASSWORD)
        assert status == 200
        assert c.last_login is not None
        assert "Secure" in c.last_login.headers["Set-Cookie"]


async def test_wrong_password_is_refused_and_audited(server: DeskServer) -> None:
    async with DeskClient(server.url) as c:
        status, body = await c.login("lawyer1", "Wrong-Password-1")
        assert status == 401
        assert body["error"]["code"] == "invalid_credentials"
        assert "用户名或密码错误" in body["error"]["message"]
        status, _ = await c.get("/api/auth/me")
        assert status == 401
    assert "login.failed" in audit_actions(server)


async def test_locked_out_after_repeated_failures(
    server_factory: Callable[..., DeskServer],
) -> None:
    server = server_factory(max_failures=3, lockout_s=600)
    server.add_user("lawyer1", Role.SEAT_LAWYER, "s101")
    async with DeskClient(server.url) as c:
        for _ in range(3):
            status, _ = await c.login("lawyer1", "Wrong-Password-1")
            assert status == 401
        status, body = await c.login("lawyer1", PASSWORD)
        assert status == 423
        assert body["error"]["code"] == "account_locked"
        assert body["error"]["retry_after_s"] > 590
    # An administrator unlocks it.
    server.add_user("admin", Role.ADMINISTRATOR)
    async with DeskClient(server.url) as a, DeskClient(server.url) as c:
        await a.login("admin", PASSWORD)
        status, users = await a.get("/api/admin/users")
        assert {u["username"]: u["locked"] for u in users["users"]}["lawyer1"] is True
        assert (await a.post("/api/admin/users/lawyer1/unlock"))[0] == 200
        assert (await c.login("lawyer1", PASSWORD))[0] == 200


async def test_rate_limited_per_client_address(server_factory: Callable[..., DeskServer]) -> None:
    server = server_factory(addr_attempts=4, user_attempts=100)
    async with DeskClient(server.url) as c:
        for i in range(4):
            assert (await c.login(f"user{i}", "Wrong-Password-1"))[0] == 401
        status, body = await c.login("user9", "Wrong-Password-1")
        assert status == 429
        assert body["error"]["code"] == "too_many_attempts"
        assert c.last_login is not None and int(c.last_login.headers["Retry-After"]) > 0
    assert "login.throttled" in audit_actions(server)


async def test_rate_limited_per_user_across_addresses(
    server_factory: Callable[..., DeskServer],
) -> None:
    server = server_factory(addr_attempts=100, user_attempts=3, trust_forwarded_for=True)
    server.add_user("lawyer1", Role.SEAT_LAWYER, "s101")
    async with DeskClient(server.url) as c:
        for i in range(3):
            status, _ = await c.login(
                "lawyer1", "Wrong-1-Pass", **{"X-Forwarded-For": f"10.0.0.{i}"}
            )
            assert status == 401
        status, _ = await c.login("lawyer1", PASSWORD, **{"X-Forwarded-For": "10.0.0.99"})
        assert status == 429
        # Another user from one of those addresses is not affected.
        server.add_user("lawyer2", Role.SEAT_LAWYER, "s102")
        status, _ = await c.login("lawyer2", PASSWORD, **{"X-Forwarded-For": "10.0.0.1"})
        assert status == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/admin/users", {"username": "x1", "role": "auditor"}),
        ("/api/admin/users/lawyer1/lock", {}),
        ("/api/other-feature/ping", {}),  # another feature's API guarded by hotline.web.require
        ("/api/auth/logout", {}),
    ],
)
async def test_csrf_token_missing_or_wrong_is_refused(
    server: DeskServer, path: str, body: dict
) -> None:
    async with DeskClient(server.url) as c:
        await c.login("admin", PASSWORD)
        status, resp = await c.post(path, body, csrf=False)
        assert (status, resp["error"]["code"]) == (403, "csrf_failed")
        status, resp = await c.post(path, body, csrf="not-the-token-" + "x" * 30)
        assert (status, resp["error"]["code"]) == (403, "csrf_failed")
        # The same request from another origin is refused even with the right token.
        status, resp = await c.post(path, body, headers={"Origin": "http://evil.example"})
        assert (status, resp["error"]["code"]) == (403, "cross_origin")
        # Nothing happened: the admin is still signed in, lawyer1 is not locked.
        assert (await c.get("/api/auth/me"))[0] == 200
        status, users = await c.get("/api/admin/users")
        assert not {u["username"]: u["locked"] for u in users["users"]}["lawyer1"]
        status, _ = await c.post(path, body)
        assert status in (200, 201)
    assert "csrf.rejected" in audit_actions(server)


async def test_csrf_token_of_another_session_is_refused(server: DeskServer) -> None:
    async with DeskClient(server.url) as a, DeskClient(server.url) as b:
        await a.login("super", PASSWORD)
        await b.login("super", PASSWORD)
        assert a.csrf != b.csrf
        status, _ = await a.post("/api/other-feature/ping", csrf=b.csrf or "")
        assert status == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users"),
        ("POST", "/api/admin/users/lawyer2/reset-password"),
        ("POST", "/api/admin/users/lawyer2/lock"),
        ("GET", "/api/admin/audit"),
        ("GET", "/api/desk/sessions"),  # a supervisor's API
    ],
)
async def test_seat_lawyer_gets_403_on_supervisor_and_admin_apis(
    server: DeskServer, method: str, path: str
) -> None:
    async with DeskClient(server.url) as c:
        await c.login("lawyer1", PASSWORD)
        if method == "GET":
            status, body = await c.get(path)
        else:
            status, body = await c.post(path, {"username": "evil", "role": "administrator"})
        assert status == 403
        assert body["error"]["code"] == "forbidden"
    entries = server.store.audit_entries(50)
    assert any(e["action"] == "access.denied" and e["actor"] == "lawyer1" for e in entries)
    assert server.store.get_user("evil") is None


async def test_pages_are_authorised_on_the_server(server: DeskServer) -> None:
    async with DeskClient(server.url) as anon:
        for page in ("/desk", "/wallboard", "/admin"):
            status, _ = await anon.get(page)
            assert status == 302
    async with DeskClient(server.url) as c:
        await c.login("lawyer1", PASSWORD)
        for page, expected in (("/desk", 200), ("/wallboard", 403), ("/admin", 403)):
            assert (await c.get(page))[0] == expected
    async with DeskClient(server.url) as c:
        await c.login("super", PASSWORD)
        for page, expected in (("/desk", 403), ("/wallboard", 200), ("/admin", 403)):
            assert (await c.get(page))[0] == expected


async def test_auditor_can_read_but_not_change_anything(server: DeskServer) -> None:
    async with DeskClient(server.url) as c:
        await c.login("audit", PASSWORD)
        assert (await c.get("/api/admin/users"))[0] == 200
        assert (await c.get("/api/admin/audit"))[0] == 200
        assert (await c.get("/api/desk/sessions"))[0] == 200
        attempts = [
            ("/api/admin/users", {"username": "sneaky", "role": "administrator"}),
            ("/api/admin/users/lawyer1/reset-password", {}),
            ("/api/admin/users/lawyer1/lock", {}),
            ("/api/admin/users/lawyer1/unlock", {}),
            ("/api/other-feature/ping", {}),
        ]
        for path, body in attempts:
            status, resp = await c.post(path, body)
            assert status == 403, path
            assert resp["error"]["code"] == "forbidden"
    assert server.store.get_user("sneaky") is None
    assert not server.store.get_user("lawyer1").disabled  # type: ignore[union-attr]


async def test_admin_user_management_is_audited(server: DeskServer) -> None:
    async with DeskClient(server.url) as a:
        await a.login("admin", PASSWORD)
        status, body = await a.post(
            "/api/admin/users",
            {
                "username": "Lawyer3",
                "display_name": "赵律师",
                "role": "seat_lawyer",
                "seat_id": "s103",
            },
        )
        assert status == 201
        first = body["password"]
        assert body["user"]["username"] == "lawyer3" and body["user"]["must_change_password"]
        # A new user must change the generated password before doing anything else.
        async with DeskClient(server.url) as n:
            status, info = await n.login("lawyer3", first)
            assert status == 200 and info["landing"] == "/"
            status, resp = await n.post("/api/other-feature/ping")
            assert (status, resp["error"]["code"]) == (403, "password_change_required")
            assert (await n.get("/desk"))[0] == 302
            status, resp = await n.post("/api/auth/password", {"current": first, "new": "short"})
            assert (status, resp["error"]["code"]) == (400, "weak_password")
            status, resp = await n.post(
                "/api/auth/password", {"current": first, "new": "New-Secret-42x"}
            )
            assert status == 200 and resp["landing"] == "/desk"
            assert (await n.post("/api/other-feature/ping"))[0] == 200
            # Lock ends the session at once; reset gives a new generated password.
            assert (await a.post("/api/admin/users/lawyer3/lock"))[0] == 200
            assert (await n.get("/api/auth/me"))[0] == 401
            assert (await n.login("lawyer3", "New-Secret-42x"))[0] == 423
            assert (await a.post("/api/admin/users/lawyer3/unlock"))[0] == 200
            status, reset = await a.post("/api/admin/users/lawyer3/reset-password")
            assert status == 200 and reset["password"] != first
            assert (await n.login("lawyer3", reset["password"]))[0] == 200
        status, resp = await a.post("/api/admin/users/admin/lock")
        assert (status, resp["error"]["code"]) == (400, "self_lock")
        status, audit = await a.get("/api/admin/audit?limit=200")
    by_action = {e["action"]: e for e in audit["entries"]}
    for action in ("user.created", "user.locked", "user.unlocked", "user.password_reset",
                   "password.changed", "login.ok"):  # fmt: skip
        assert action in by_action, action
    assert by_action["user.created"]["actor"] == "admin"
    assert by_action["user.created"]["target"] == "lawyer3"
    # No password, generated or chosen, ever lands in the audit log.
    assert first not in str(audit) and "New-Secret-42x" not in str(audit)


async def test_session_idle_expiry_and_logout(server: DeskServer) -> None:
    now = [datetime.now(UTC)]
    server.store.clock = lambda: now[0]
    idle = server.store.config.idle_timeout_s
    async with DeskClient(server.url) as c:
        await c.login("super", PASSWORD)
        now[0] += timedelta(seconds=idle - 5)
        assert (await c.get("/api/auth/me"))[0] == 200
        now[0] += timedelta(seconds=idle + 1)
        assert (await c.get("/api/auth/me"))[0] == 401
        assert (await c.post("/api/other-feature/ping"))[0] == 401
    async with DeskClient(server.url) as c:
        await c.login("super", PASSWORD)
        assert (await c.post("/api/auth/logout"))[0] == 200
        assert (await c.get("/api/auth/me"))[0] == 401
    assert "session.expired" in audit_actions(server)
    assert "logout" in audit_actions(server)


async def test_absolute_expiry_despite_activity(server_factory: Callable[..., DeskServer]) -> None:
    server = server_factory(idle_timeout_s=600, absolute_timeout_s=900)
    server.add_user("sup", Role.SUPERVISOR)
    now = [datetime.now(UTC)]
    server.store.clock = lambda: now[0]
    async with DeskClient(server.url) as c:
        await c.login("sup", PASSWORD)
        for _ in range(3):
            now[0] += timedelta(seconds=290)
            assert (await c.get("/api/auth/me"))[0] == 200
        now[0] += timedelta(seconds=60)
        assert (await c.get("/api/auth/me"))[0] == 401


async def test_service_token_still_works_without_csrf(server: DeskServer) -> None:
    async with DeskClient(server.url) as c:
        status, body = await c.get(
            "/api/admin/users", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}
        )
        assert status == 200 and len(body["users"]) == 5


async def test_login_requires_json_and_same_origin(server: DeskServer) -> None:
    async with DeskClient(server.url) as c:
        async with c.http.post(
            f"{server.url}/api/auth/login", data={"username": "admin", "password": PASSWORD}
        ) as resp:
            assert resp.status == 415
        status, _ = await c.login("admin", PASSWORD, Origin="http://evil.example")
        assert status == 403


async def test_security_headers_on_pages(server: DeskServer) -> None:
    async with DeskClient(server.url) as c:
        async with c.http.get(f"{server.url}/") as resp:
            assert resp.status == 200
            csp = resp.headers["Content-Security-Policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert resp.headers["Cache-Control"] == "no-store"
        async with c.http.get(f"{server.url}/static/../auth.py") as resp:
            assert resp.status in (403, 404)
