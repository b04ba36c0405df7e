"""The ACD's REST API (JSON): seat state for the agent desk, queue status for the wallboard,
transfers and three-way calls.

Seat lawyers may change only their own seat and act only on the call at their seat; supervisors
and administrators on any seat and call; auditors only read. Every state change goes through the
ACD core, which logs it with its reason.

Calls (``{call_id}`` is the call id of the event log)::

    GET  /api/acd/calls/{call_id}                    the live call: seat, consultation, parties
    POST /api/acd/calls/{call_id}/transfer           {"to": "queue:<name>" | "seat:<id>" |
                                                      "number:<digits>", "mode": "blind"|"consult"}
    POST /api/acd/calls/{call_id}/transfer/complete  consultation → the target takes the caller
    POST /api/acd/calls/{call_id}/transfer/cancel    consultation → the caller is back with the seat
    POST /api/acd/calls/{call_id}/conference         {"to": "seat:<id>" | "number:<digits>"}

Errors are JSON (``{"error": {"code", "message"}}``): 400 bad_target / bad_mode / needs_person,
403 not_your_call, 404 unknown_call / unknown_queue / unknown_seat, 409 not_connected /
consult_in_progress / no_consult / not_answered / seat_unavailable / no_trunk / invalid_state.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiohttp import web

from acd import model as acd
from acd import seats as seat_store
from acd.adapter import TransferError, parse_target
from acd.wiring import outbound_routes
from hotline.config import Settings
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
ACD_KEY = web.AppKey("acd", object)


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
    try:
        if action == "pause":
            body = await read_json(request)
            reason = body.get("reason")
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
    try:
        if action == "show":
            return json_response(service.call_json(call_id))
        if action in ("complete", "cancel"):
            method = service.transfer_complete if action == "complete" else service.transfer_cancel
            return json_response(await method(call_id))
        body = await read_json(request)
        target = parse_target(body.get("to"))
        if target.kind == "seat":
            await _load_seat(service, target.value)  # a seat added while the service runs
        if action == "conference":
            return json_response(await service.conference(call_id, target))
        mode = body.get("mode", "blind")
        if mode not in ("blind", "consult"):
            return json_error(400, "bad_mode", "mode must be 'blind' or 'consult'")
        return json_response(await service.transfer(call_id, target, mode))
    except TransferError as exc:
        return json_error(exc.status, exc.code, exc.message)


def _call_handler(action: str, roles: tuple[Role, ...] = ACT):
    @require(*roles)
    async def handler(request: web.Request) -> web.Response:
        return await _call_action(request, action)

    return handler


def setup(app: web.Application, service: AcdService) -> None:
    app[ACD_KEY] = service
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
    app.router.add_get("/api/acd/seats", list_seats)
    app.router.add_get("/api/acd/queues", list_queues)
    for action in ("login", "logout", "ready", "pause", "wrapup-done"):
        app.router.add_post(f"/api/acd/seats/{{seat_id}}/{action}", _action_handler(action))
