"""The ACD's REST API (JSON): seat state for the agent desk, queue status for the wallboard,
transfers and three-way calls.

Seat lawyers may change only their own seat and act only on the call at their seat; supervisors
and administrators on any seat and call; auditors only read. Every state change goes through the
ACD core, which logs it with its reason.

Calls (``{call_id}`` is the call id of the event log)::

    GET  /api/acd/calls/{call_id}                    the live call: seat, consultation, parties,
                                                     on_hold, supervision
    GET  /api/acd/callbacks                          callers waiting for a callback (my queues)
    POST /api/acd/calls/{call_id}/transfer           {"to": "queue:<name>" | "seat:<id>" |
                                                      "number:<digits>", "mode": "blind"|"consult"}
    POST /api/acd/calls/{call_id}/transfer/complete  consultation → the target takes the caller
    POST /api/acd/calls/{call_id}/transfer/cancel    consultation → the caller is back with the seat
    POST /api/acd/calls/{call_id}/conference         {"to": "seat:<id>" | "number:<digits>"}
    POST /api/acd/calls/{call_id}/hold               the caller hears music on hold
    POST /api/acd/calls/{call_id}/resume             the caller is back in the conversation
    POST /api/acd/calls/{call_id}/hangup             the seat ends the call (survey follows)
    POST /api/acd/calls/{call_id}/supervise          {"mode": "monitor"|"whisper"|"barge",
                                                      "phone": "<seat id>" (admin, service)}
    POST /api/acd/calls/{call_id}/supervise/stop     the supervisor's line is hung up

Supervision (acd/supervision.py) is for supervisors and administrators only: the supervisor's
phone is the seat linked to their desk account (an administrator or the service token names one
with ``phone``). Seat lawyers get 403. When a supervisor (or administrator) changes another
seat's state (强制置态, from the wallboard) it is logged as ``seat.forced`` with who did it and
the reason given (``{"reason": ...}``; required for a pause as for everyone).

Errors are JSON (``{"error": {"code", "message"}}``): 400 bad_target / bad_mode / needs_person,
403 not_your_call, 404 unknown_call / unknown_queue / unknown_seat, 409 not_connected /
consult_in_progress / no_consult / not_answered / seat_unavailable / no_trunk / invalid_state /
already_on_hold / not_on_hold / already_supervised / no_phone / no_answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from acd import model as acd
from acd import seats as seat_store
from acd.adapter import TransferError, parse_target
from acd.supervision import Supervision, SupervisionError
from acd.wiring import outbound_routes
from hotline.config import Settings
from hotline.events.types import EventType
from hotline.web import (
    SERVICE_KEY,
    Role,
    json_error,
    json_response,
    principal_of,
    read_json,
    require,
)

if TYPE_CHECKING:
    from acd.adapter import AcdService

READ = (Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR)
ACT = (Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR)
SUPERVISE = (Role.SUPERVISOR, Role.ADMINISTRATOR)
ACD_KEY = web.AppKey("acd", object)
SUPERVISION_KEY = web.AppKey("acd_supervision", Supervision)
_PHONE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def seat_json(view: acd.SeatView) -> dict[str, Any]:
    return {
        "seat_id": view.seat_id,
        "state": str(view.state),
        "reason": view.reason,
        "call_id": view.call_id,
        "region": view.region,
        "skills": dict(view.skills),
        "calls_handled": view.calls_handled,
    }


def _acd(request: web.Request) -> AcdService:
    return request.app[ACD_KEY]  # type: ignore[return-value]


@require(*READ)
async def list_seats(request: web.Request) -> web.Response:
    service = _acd(request)
    return json_response([seat_json(service.core.seat_view(s)) for s in service.core.seat_ids()])


@require(*READ)
async def list_queues(request: web.Request) -> web.Response:
    service = _acd(request)
    now = service._now()
    waiting: dict[str, list[dict[str, Any]]] = {}
    for call_id in service.core.call_ids():
        view = service.core.call_view(call_id)
        if view.position is not None:
            waiting.setdefault(view.queue, []).append(
                {"call_id": call_id, "position": view.position, "priority": view.priority,
                 "waiting_s": round(now - view.entered_at, 1), "state": str(view.state)}
            )  # fmt: skip
    queues = []
    for queue in service.config.queues:
        view = service.core.queue_view(queue.name)
        calls = sorted(waiting.get(queue.name, []), key=lambda c: c["position"])
        queues.append(
            {"name": view.name, "waiting": view.waiting, "logged_in": view.logged_in,
             "staffed": view.staffed, "aht_s": round(view.aht, 1),
             "longest_wait_s": max((c["waiting_s"] for c in calls), default=0.0),
             "calls": calls}
        )  # fmt: skip
    return json_response(queues)


@require(*READ)
async def list_callbacks(request: web.Request) -> web.Response:
    """Callers who kept their place for a callback (回拨), in the queues a seat lawyer serves
    (their seat's skills), or in every queue for the other roles. Numbers masked."""
    service = _acd(request)
    principal = await principal_of(request)
    topics: set[str] | None = None
    if principal is not None and principal.role == Role.SEAT_LAWYER:
        seat = principal.seat_id
        row = await _load_seat(service, seat) if seat else None
        topics = set(service.core.seat_view(seat).skills) if row is not None and seat else set()
    now = service._now()
    items = []
    for call_id in service.core.call_ids():
        view = service.core.call_view(call_id)
        call = service.calls.get(call_id)
        if not view.callback:
            continue
        queue = service.config.queue(view.queue)
        if topics is not None and (queue is None or queue.skill not in topics):
            continue
        items.append(
            {"call_id": call_id, "queue": view.queue,
             "topic": call.topic if call is not None else queue.skill if queue else None,
             "caller": call.caller_masked if call is not None else None,
             "position": view.position, "state": str(view.state),
             "dialing": bool(call is not None and call.dialing), "seat_id": view.target_seat,
             "waiting_s": round(now - view.entered_at, 1)}
        )  # fmt: skip
    items.sort(key=lambda c: (c["position"] is None, c["position"] or 0))
    return json_response({"callbacks": items})


async def _seat_action(request: web.Request, action: str) -> web.Response:
    service = _acd(request)
    seat_id = request.match_info["seat_id"]
    principal = await principal_of(request)
    if (
        principal is not None
        and principal.role == Role.SEAT_LAWYER
        and principal.seat_id != seat_id
    ):
        return json_error(403, "forbidden", "a seat lawyer may change only their own seat")
    row = await _load_seat(service, seat_id)
    if row is None:
        return json_error(404, "unknown_seat", f"no seat {seat_id!r}")
    body = await read_json(request) if request.can_read_body else {}
    forced = (
        principal is not None
        and principal.role in (Role.SUPERVISOR, Role.ADMINISTRATOR)
        and principal.seat_id != seat_id
    )
    reason = body.get("reason")
    try:
        if action == "pause":
            if reason not in service.config.pause_reasons:
                return json_error(
                    400, "bad_reason", f"reason must be one of {list(service.config.pause_reasons)}"
                )
            await service.seat_pause(seat_id, reason)
        else:
            await getattr(service, {"login": "seat_login", "logout": "seat_logout",
                                    "ready": "seat_ready", "wrapup-done": "wrap_up_done"}[action])(
                seat_id
            )  # fmt: skip
    except acd.InvalidTransition as exc:
        return json_error(409, "invalid_state", str(exc))
    if forced and principal is not None:
        service.events.append(
            f"seat:{seat_id}",
            EventType.SEAT_FORCED,
            {"seat_id": seat_id, "action": action,
             "reason": reason.strip()[:100] if isinstance(reason, str) else None,
             "by": principal.id, "by_role": str(principal.role)},
        )  # fmt: skip
    return json_response(seat_json(service.core.seat_view(seat_id)))


async def _load_seat(service: AcdService, seat_id: str) -> Any:
    row = await asyncio.to_thread(seat_store.get_seat, service.engine, seat_id)
    if row is None or not row.active:
        return None
    service.ensure_seat(seat_store.seat_config(row))
    return row


def _action_handler(action: str):
    @require(*ACT)
    async def handler(request: web.Request) -> web.Response:
        return await _seat_action(request, action)

    return handler


# Calls: transfers and conferences ---------------------------------------------------------------
async def _call_action(request: web.Request, action: str) -> web.Response:
    service = _acd(request)
    call_id = request.match_info["call_id"]
    principal = await principal_of(request)
    if principal is not None and principal.role == Role.SEAT_LAWYER:
        seat = service.connected_seat(call_id)
        if seat is None or principal.seat_id != seat:
            return json_error(403, "not_your_call", "坐席律师只能操作自己的通话: not your call")
    supervision = request.app[SUPERVISION_KEY]
    by = principal.id if principal is not None else "?"
    try:
        if action == "show":
            view = service.call_json(call_id)  # on_hold there: during a consultation
            status = supervision.status(call_id)
            status["on_hold"] = bool(view.get("on_hold")) or status["on_hold"]
            return json_response({**view, **status})
        if action == "hold":
            return json_response(await supervision.hold(call_id, by))
        if action == "resume":
            return json_response(await supervision.resume(call_id, by))
        if action == "hangup":
            return json_response(await supervision.hang_up_seat(call_id, by))
        if action in ("complete", "cancel"):
            method = service.transfer_complete if action == "complete" else service.transfer_cancel
            return json_response(await method(call_id))
        body = await read_json(request)
        target = parse_target(body.get("to"))
        if target.kind == "seat":
            await _load_seat(service, target.value)  # a seat added while the service runs
        if action == "conference":
            if supervision.on_hold(call_id):  # the third party joins the caller, not music
                await supervision.resume(call_id, by)
            return json_response(await service.conference(call_id, target))
        mode = body.get("mode", "blind")
        if mode not in ("blind", "consult"):
            return json_error(400, "bad_mode", "mode must be 'blind' or 'consult'")
        result = await service.transfer(call_id, target, mode)
        # The transfer rebuilt the conversation (the caller is where the adapter put them).
        supervision.release_hold(call_id, "transfer", by=by)
        return json_response(result)
    except (TransferError, SupervisionError) as exc:
        return json_error(exc.status, exc.code, exc.message)


def _audit_refusal(handler: Handler) -> Handler:
    """A refused supervision request goes to the desk's security audit log too (when the desk
    is installed): who tried to listen to which call."""

    async def run(request: web.Request) -> web.StreamResponse:
        response = await handler(request)
        if response.status == 403:
            from agent_desk.http import DESK_KEY  # the desk is optional for this API

            desk = request.app.get(DESK_KEY)
            if desk is not None:
                await desk.auth.audit(
                    request, "access.denied", outcome="denied", target=request.path
                )
        return response

    run.__name__ = handler.__name__
    return run


@_audit_refusal
@require(*SUPERVISE)
async def supervise(request: web.Request) -> web.Response:
    """A supervisor's phone joins a talking call: monitor, whisper or barge (see the module)."""
    call_id = request.match_info["call_id"]
    principal = await principal_of(request)
    assert principal is not None
    body = await read_json(request)
    phone = principal.seat_id
    if phone is None and principal.role in (Role.ADMINISTRATOR, Role.SERVICE):
        phone = body.get("phone") if isinstance(body.get("phone"), str) else None
    if not phone or not _PHONE.match(phone):
        return json_error(
            409, "no_phone", "未配置班长话机: the supervisor's account has no linked phone (seat)"
        )
    try:
        result = await request.app[SUPERVISION_KEY].supervise(
            call_id, str(body.get("mode", "monitor")), supervisor=principal.id, phone=phone
        )
    except SupervisionError as exc:
        return json_error(exc.status, exc.code, exc.message)
    return json_response(result)


@_audit_refusal
@require(*SUPERVISE)
async def supervise_stop(request: web.Request) -> web.Response:
    principal = await principal_of(request)
    assert principal is not None
    try:
        result = await request.app[SUPERVISION_KEY].stop(
            request.match_info["call_id"], supervisor=principal.id
        )
    except SupervisionError as exc:
        return json_error(exc.status, exc.code, exc.message)
    return json_response(result)


def _call_handler(action: str, roles: tuple[Role, ...] = ACT):
    @require(*roles)
    async def handler(request: web.Request) -> web.Response:
        return await _call_action(request, action)

    return handler


def setup(app: web.Application, service: AcdService) -> None:
    app[ACD_KEY] = service
    app[SUPERVISION_KEY] = Supervision(service)
    # Outbound routes (callbacks, transfers to numbers) from the service's settings, when the
    # service did not give them to the adapter itself.
    settings = getattr(app.get(SERVICE_KEY), "settings", None)
    if (
        isinstance(settings, Settings)
        and service.callback_dial is None
        and service.transfer_dial is None
    ):
        service.configure_outbound(**outbound_routes(settings))
    app.router.add_get("/api/acd/calls/{call_id}", _call_handler("show", READ))
    app.router.add_post("/api/acd/calls/{call_id}/transfer", _call_handler("transfer"))
    app.router.add_post("/api/acd/calls/{call_id}/transfer/complete", _call_handler("complete"))
    app.router.add_post("/api/acd/calls/{call_id}/transfer/cancel", _call_handler("cancel"))
    app.router.add_post("/api/acd/calls/{call_id}/conference", _call_handler("conference"))
    for action in ("hold", "resume", "hangup"):
        app.router.add_post(f"/api/acd/calls/{{call_id}}/{action}", _call_handler(action))
    app.router.add_post("/api/acd/calls/{call_id}/supervise", supervise)
    app.router.add_post("/api/acd/calls/{call_id}/supervise/stop", supervise_stop)
    app.router.add_get("/api/acd/seats", list_seats)
    app.router.add_get("/api/acd/queues", list_queues)
    app.router.add_get("/api/acd/callbacks", list_callbacks)
    for action in ("login", "logout", "ready", "pause", "wrapup-done"):
        app.router.add_post(f"/api/acd/seats/{{seat_id}}/{action}", _action_handler(action))
