"""The agent desk's HTTP side: pages, sign-in API, user administration, live WebSocket.

``setup(app, service)`` adds everything to the service's aiohttp application and registers the
session-cookie authenticator with ``hotline.web``, so every feature API guarded by
``hotline.web.require`` accepts a signed-in desk user (with CSRF enforced on state changes).

Routes (Chinese-first pages; every API authorised on the server, refusals audited):

=======  ==============================  ===============================================
GET      /                               sign-in page (a signed-in user goes to their page)
GET      /desk, /wallboard, /admin       the seat lawyer's desk, the wallboard, admin
GET      /static/...                     CSS, JS (no build step)
POST     /api/auth/login                 {username, password} → user, csrf_token, landing
POST     /api/auth/logout                ends the session
GET      /api/auth/me                    user, csrf_token, expiry
POST     /api/auth/password              {current, new}: change one's own password
GET      /api/events/ws                  live events (WebSocket), filtered by role, masked
GET      /api/desk/sessions              who is signed in (supervisor, admin, auditor)
GET      /api/admin/users                users (admin, auditor)
POST     /api/admin/users                create, with a generated first password (admin)
POST     /api/admin/users/{u}/reset-password | lock | unlock        (admin)
GET      /api/admin/audit                the security audit log (admin, auditor)
=======  ==============================  ===============================================

The service object needs ``engine`` (SQLAlchemy) and ``bus`` (EventBus); ``settings.desk``
is read when present (see ``DeskAuthConfig``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from agent_desk.auth import (
    SESSION_KEY,
    AuthError,
    AuthStore,
    DeskAuth,
    DeskAuthConfig,
    SessionInfo,
    parse_role,
    same_origin,
)
from agent_desk.live import LiveHub
from hotline.web import (
    AUTHENTICATORS_KEY,
    Role,
    json_error,
    json_response,
    principal_of,
    read_json,
    require,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"

LANDING = {
    Role.SEAT_LAWYER: "/desk",
    Role.SUPERVISOR: "/wallboard",
    Role.ADMINISTRATOR: "/admin",
    Role.AUDITOR: "/admin",
}
PAGES: dict[str, tuple[str, frozenset[Role]]] = {
    "/desk": ("desk.html", frozenset({Role.SEAT_LAWYER})),
    "/wallboard": (
        "wallboard.html",
        frozenset({Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR}),
    ),
    "/admin": ("admin.html", frozenset({Role.ADMINISTRATOR, Role.AUDITOR})),
}
# Pages load only our own scripts and styles; the WebSocket is same-origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
WS_CLOSE_SESSION_ENDED = 4401  # the page goes back to the sign-in page


@dataclass
class Desk:
    auth: DeskAuth
    hub: LiveHub
    sockets: weakref.WeakSet[web.WebSocketResponse]


DESK_KEY = web.AppKey("agent_desk", Desk)


def desk_of(request: web.Request) -> Desk:
    return request.app[DESK_KEY]


def setup(
    app: web.Application,
    service: Any,
    *,
    config: DeskAuthConfig | None = None,
    start_hub: bool = True,
) -> Desk:
    """Add the desk's routes to ``app`` and its session authenticator to hotline.web."""
    config = config or DeskAuthConfig.from_service(service)
    store = AuthStore(service.engine, config)
    targets, tz = _kpi_targets(service)
    hub = LiveHub(wrap_up_lookup=_wrap_up_lookup(service), kpi_targets=targets, tz=tz)
    desk = Desk(DeskAuth(store), hub, weakref.WeakSet())
    app[DESK_KEY] = desk
    app[AUTHENTICATORS_KEY].append(desk.auth.session_authenticator)

    async def on_startup(_app: web.Application) -> None:
        bus = getattr(service, "bus", None)
        if start_hub and bus is not None:
            desk.hub.start(bus, getattr(service, "engine", None))

    async def on_shutdown(_app: web.Application) -> None:
        for ws in list(desk.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def on_cleanup(_app: web.Application) -> None:
        await desk.hub.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    app.on_response_prepare.append(_security_headers)

    r = app.router
    r.add_get("/", sign_in_page)
    for path in PAGES:
        r.add_get(path, page)
    r.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    r.add_post("/api/auth/login", login)
    r.add_post("/api/auth/logout", logout)
    r.add_get("/api/auth/me", me)
    r.add_post("/api/auth/password", change_password)
    r.add_get("/api/events/ws", events_ws)
    r.add_get("/api/desk/sessions", active_sessions)
    r.add_get("/api/admin/users", list_users)
    r.add_post("/api/admin/users", create_user)
    r.add_post("/api/admin/users/{username}/reset-password", reset_password)
    r.add_post("/api/admin/users/{username}/lock", lock_user)
    r.add_post("/api/admin/users/{username}/unlock", unlock_user)
    r.add_get("/api/admin/audit", audit_log)
    from agent_desk import admin_api  # seats, queues, flows, hours (it imports this module)

    admin_api.setup(app, service)
    return desk


def _wrap_up_lookup(service: Any) -> Callable[[str, str | None], float | None]:
    """The wrap-up seconds of a seat after a call of ``queue``, from the running ACD's
    configuration (a seat's own setting wins over its queue's), for seat events that do not
    carry them. Looked up at each wrap-up: the ACD is created after the routes."""

    def lookup(seat_id: str, queue: str | None) -> float | None:
        config = getattr(getattr(service, "acd", None), "config", None)
        if config is None:
            return None
        for seat in getattr(config, "seats", ()):
            if seat.seat_id == seat_id and seat.wrap_up_s is not None:
                return float(seat.wrap_up_s)
        queues = list(getattr(config, "queues", ()))
        chosen = next((q for q in queues if q.name == queue), None)
        if chosen is None and len(queues) == 1:
            chosen = queues[0]
        return float(chosen.wrap_up_s) if chosen is not None else None

    return lookup


def _kpi_targets(service: Any) -> tuple[dict[str, float], str]:
    """The KPI targets the wallboard compares against (the KPI feature's settings)."""
    from kpi.settings import kpi_settings

    settings = kpi_settings(getattr(service, "settings", None))
    targets = settings.targets.model_dump()
    targets["service_level_s"] = settings.service_level_s
    return targets, settings.tz


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.path.startswith("/api/") or response.content_type == "text/html":
        headers.setdefault("Cache-Control", "no-store")
    if response.content_type == "text/html":
        headers.setdefault("Content-Security-Policy", CSP)


# --- pages ---------------------------------------------------------------------------------

_page_cache: dict[str, bytes] = {}


def _html(name: str, status: int = 200) -> web.Response:
    body = _page_cache.get(name)
    if body is None:
        body = _page_cache[name] = (STATIC_DIR / name).read_bytes()
    return web.Response(body=body, status=status, content_type="text/html", charset="utf-8")


async def sign_in_page(request: web.Request) -> web.StreamResponse:
    session = await desk_of(request).auth.session_of(request)
    if session is not None and not session.user.must_change_password:
        raise web.HTTPFound(LANDING[Role(session.user.role)])
    return _html("index.html")


async def page(request: web.Request) -> web.StreamResponse:
    name, roles = PAGES[request.path]
    session = await desk_of(request).auth.session_of(request)
    if session is None or session.user.must_change_password:
        raise web.HTTPFound("/")
    if Role(session.user.role) not in roles:
        request[SESSION_KEY] = session
        await desk_of(request).auth.audit(
            request, "access.denied", outcome="denied", target=request.path
        )
        return _html("forbidden.html", status=403)
    return _html(name)


# --- sign-in API ---------------------------------------------------------------------------


def _session_json(session: SessionInfo, config: DeskAuthConfig) -> dict[str, Any]:
    role = Role(session.user.role)
    return {
        "user": session.user.to_json(),
        "csrf_token": session.csrf_token,
        "landing": "/" if session.user.must_change_password else LANDING[role],
        "expires_at": session.expires_at.isoformat(),
        "idle_timeout_s": config.idle_timeout_s,
    }


async def login(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    # A JSON body only: a cross-site HTML form cannot send one without a CORS pre-flight.
    if request.content_type != "application/json":
        return json_error(415, "json_required", "send the credentials as application/json")
    if not same_origin(request):
        return json_error(403, "cross_origin", "跨站请求被拒绝 (cross-origin request refused)")
    body = await read_json(request, max_bytes=4096)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str) or not username:
        return json_error(400, "invalid_body", "give username and password as strings")
    try:
        result = await desk.auth.login(request, username, password[:1024])
    except AuthError as exc:
        return exc.response()
    response = json_response(_session_json(result.session, desk.auth.config))
    desk.auth.set_cookie(response, request, result.token)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    principal = await principal_of(request)  # enforces the CSRF token
    session: SessionInfo | None = request.get(SESSION_KEY)
    if principal is None or session is None:
        return json_error(401, "unauthenticated", "not signed in")
    await asyncio.to_thread(desk.auth.store.end_session, session.token_hash)
    await desk.auth.audit(request, "logout")
    response = json_response({"ok": True})
    desk.auth.clear_cookie(response, request)
    return response


async def me(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    await principal_of(request)
    session: SessionInfo | None = request.get(SESSION_KEY)
    if session is None:
        return json_error(401, "unauthenticated", "not signed in")
    return json_response(_session_json(session, desk.auth.config))


async def change_password(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    await principal_of(request)
    session: SessionInfo | None = request.get(SESSION_KEY)
    if session is None:
        return json_error(401, "unauthenticated", "not signed in")
    body = await read_json(request, max_bytes=4096)
    current, new = body.get("current"), body.get("new")
    if not isinstance(current, str) or not isinstance(new, str):
        return json_error(400, "invalid_body", "give current and new passwords as strings")
    # Guessing the current password through this form counts like sign-in attempts.
    limiter, key, now = desk.auth.user_limiter, f"user:{session.user.username}", time.monotonic()
    if limiter.retry_after(key, now) > 0:
        return json_error(429, "too_many_attempts", "尝试次数过多 (too many attempts)")
    limiter.hit(key, now)
    try:
        await asyncio.to_thread(
            desk.auth.store.change_password, session.user.username, current[:1024], new[:1024]
        )
    except AuthError as exc:
        await desk.auth.audit(request, "password.change_failed", outcome="failed", code=exc.code)
        return exc.response()
    await desk.auth.audit(request, "password.changed")
    refreshed = await desk.auth.session_of(request)
    assert refreshed is not None
    return json_response(_session_json(refreshed, desk.auth.config))


# --- authorisation with audit ---------------------------------------------------------------

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def guarded(*roles: Role) -> Callable[[Handler], Handler]:
    """``hotline.web.require`` plus an audit row for every refused request."""

    def decorate(handler: Handler) -> Handler:
        inner = require(*roles)(handler)

        async def run(request: web.Request) -> web.StreamResponse:
            response = await inner(request)
            if response.status == 403:
                await desk_of(request).auth.audit(
                    request, "access.denied", outcome="denied", target=request.path
                )
            return response

        run.__name__ = handler.__name__
        run.__doc__ = handler.__doc__
        return run

    return decorate


def _actor(request: web.Request) -> dict[str, Any]:
    principal = request.get("principal")
    return {"actor": principal.id, "actor_role": str(principal.role)} if principal else {}


# --- supervisor ------------------------------------------------------------------------------


@guarded(Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR)
async def active_sessions(request: web.Request) -> web.StreamResponse:
    rows = await asyncio.to_thread(desk_of(request).auth.store.active_sessions)
    return json_response({"sessions": rows})


# --- administration -------------------------------------------------------------------------


@guarded(Role.ADMINISTRATOR, Role.AUDITOR)
async def list_users(request: web.Request) -> web.StreamResponse:
    users = await asyncio.to_thread(desk_of(request).auth.store.list_users)
    return json_response({"users": [u.to_json() for u in users]})


@guarded(Role.ADMINISTRATOR)
async def create_user(request: web.Request) -> web.StreamResponse:
    desk = desk_of(request)
    body = await read_json(request, max_bytes=8192)
    username = body.get("username")
    seat_id = body.get("seat_id") or None
    display_name = body.get("display_name")
    if not isinstance(username, str) or (seat_id is not None and not isinstance(seat_id, str)):
        return json_error(400, "invalid_body", "username (and seat_id) must be strings")
    try:
        role = parse_role(body.get("role"))
        user, password = await asyncio.to_thread(
            desk.auth.store.create_user,
            username,
            role,
            display_name=display_name if isinstance(display_name, str) else None,
            seat_id=seat_id.strip()[:64] if seat_id else None,
        )
    except AuthError as exc:
        await desk.auth.audit(
            request, "user.create_failed", outcome="failed", target=str(username), code=exc.code
        )
        return exc.response()
    await desk.auth.audit(
        request, "user.created", target=user.username, role=user.role, seat_id=user.seat_id
    )
    # The generated password is shown once, to the administrator who made the account.
    return json_response({"user": user.to_json(), "password": password}, status=201)


async def _user_action(
    request: web.Request, action: str, run: Callable[[AuthStore, str], Any]
) -> web.StreamResponse:
    desk = desk_of(request)
    username = request.match_info["username"].lower()
    try:
        result = await asyncio.to_thread(run, desk.auth.store, username)
    except AuthError as exc:
        await desk.auth.audit(request, f"{action}_failed", outcome="failed", target=username)
        return exc.response()
    await desk.auth.audit(request, action, target=username)
    return json_response(result)


@guarded(Role.ADMINISTRATOR)
async def reset_password(request: web.Request) -> web.StreamResponse:
    def run(store: AuthStore, username: str) -> dict[str, Any]:
        return {"username": username, "password": store.reset_password(username)}

    return await _user_action(request, "user.password_reset", run)


@guarded(Role.ADMINISTRATOR)
async def lock_user(request: web.Request) -> web.StreamResponse:
    principal = request["principal"]
    if request.match_info["username"].lower() == principal.id:
        return json_error(400, "self_lock", "不能锁定自己的账户 (you cannot lock yourself out)")

    def run(store: AuthStore, username: str) -> dict[str, Any]:
        return {"user": store.set_disabled(username, True).to_json()}

    return await _user_action(request, "user.locked", run)


@guarded(Role.ADMINISTRATOR)
async def unlock_user(request: web.Request) -> web.StreamResponse:
    def run(store: AuthStore, username: str) -> dict[str, Any]:
        return {"user": store.set_disabled(username, False).to_json()}

    return await _user_action(request, "user.unlocked", run)


@guarded(Role.ADMINISTRATOR, Role.AUDITOR)
async def audit_log(request: web.Request) -> web.StreamResponse:
    try:
        limit = max(1, min(500, int(request.query.get("limit", "100"))))
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError:
        return json_error(400, "invalid_query", "limit and before must be integers")
    rows = await asyncio.to_thread(desk_of(request).auth.store.audit_entries, limit, before)
    return json_response({"entries": rows})


# --- live events ----------------------------------------------------------------------------


async def events_ws(request: web.Request) -> web.StreamResponse:
    """Stream the hub's messages for this principal until the socket or the session ends."""
    desk = desk_of(request)
    principal = await principal_of(request)
    session: SessionInfo | None = request.get(SESSION_KEY)
    if principal is None:
        return json_error(401, "unauthenticated", "sign in first")
    if not same_origin(request):
        # Cross-site WebSocket hijacking: browsers send the cookie-less Origin of the attacker.
        await desk.auth.audit(request, "ws.rejected", outcome="denied", target=request.path)
        return json_error(403, "cross_origin", "跨站请求被拒绝 (cross-origin request refused)")
    ws = web.WebSocketResponse(heartbeat=20, max_msg_size=4096)
    await ws.prepare(request)
    desk.sockets.add(ws)
    client = desk.hub.connect(principal)
    idle = desk.auth.config.idle_timeout_s
    check_every = max(0.2, min(30.0, idle / 4))

    async def reader() -> None:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and msg.data == "snapshot":
                client.put(desk.hub.snapshot(principal))

    reading = asyncio.create_task(reader())
    try:
        await ws.send_str(
            _dumps(
                {
                    "kind": "hello",
                    "user": principal.id,
                    "role": str(principal.role),
                    "seat_id": principal.seat_id,
                }
            )
        )
        next_check = time.monotonic() + check_every
        while not ws.closed and not reading.done():
            getting = asyncio.ensure_future(client.get())
            timeout = max(0.0, next_check - time.monotonic())
            done, _ = await asyncio.wait(
                {getting, reading}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if getting in done:
                await ws.send_str(_dumps(getting.result()))
            else:
                getting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await getting
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + check_every
                # The socket does not keep the session alive: only the user's requests do.
                if session is None or await desk.auth.session_of(request, touch=False) is None:
                    await ws.send_str(_dumps({"kind": "bye", "reason": "session_ended"}))
                    await ws.close(code=WS_CLOSE_SESSION_ENDED, message=b"session ended")
                    break
    except ConnectionResetError:
        pass  # the browser went away mid-send
    finally:
        desk.hub.disconnect(client)
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reading
        if not ws.closed:
            await ws.close()
    return ws


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
