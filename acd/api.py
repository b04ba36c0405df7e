"""The ACD's REST API (JSON): seat state for the agent desk, queue status for the wallboard.

Seat lawyers may change only their own seat; supervisors and administrators any seat; auditors
only read. Every state change goes through the ACD core, which logs it with its reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from acd import model as acd
from acd import seats as seat_store
from hotline.web import Role, json_error, json_response, principal_of, read_json, require

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
    import asyncio

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


def setup(app: web.Application, service: AcdService) -> None:
    app[ACD_KEY] = service
    app.router.add_get("/api/acd/seats", list_seats)
    app.router.add_get("/api/acd/queues", list_queues)
    for action in ("login", "logout", "ready", "pause", "wrapup-done"):
        app.router.add_post(f"/api/acd/seats/{{seat_id}}/{action}", _action_handler(action))
