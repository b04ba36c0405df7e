"""HTTP API of the work-order feature (routes added by ``setup(app, service)``).

- ``GET   /api/workorders?state=&seat=&call_id=&caller_key=&limit=`` → ``{"items": [order]}``
  (``state`` may list several, comma-separated; newest first; ``limit`` ≤ 500, default 50).
- ``POST  /api/workorders`` ``{call_id?, topic?, summary?, details?}`` → a hand-made draft.
- ``GET   /api/workorders/callbacks?scope=mine|pool|open`` → ``{"items": [callback]}``: the
  callback list (回拨列表) of callback requests and voice messages (masked number, booked at,
  due time, warning, last callback outcome, ``audio_url`` of a voice message for the audited
  recordings API). Seat lawyers: ``mine`` (default) or ``pool``; others ``open`` (default),
  with ``seats`` (active seats, their skills and topics) for the assign picker.
- ``GET   /api/workorders/{id}`` → the order with ``history`` and ``allowed_actions``
  (``{id}`` may also be the human number GD20261121-0001).
- ``PATCH /api/workorders/{id}`` ``{topic?, summary?, details?, fields?}`` → the order.
- ``POST  /api/workorders/{id}/actions/{action}`` ``{target?, note?, seat_id?}`` → the order;
  actions:
  submit, dispatch (needs ``target``: ``{"kind": "agency"|"department"|"region",
  "unit_id", "name"}`` or a unit name), claim, start (callback made), resolve, review, close,
  reopen, return, note, ``assign`` (a callback request / voice message to the seat
  ``seat_id``: supervisors and administrators; a seat lawyer claims it for their own seat from
  their pool, 409 ``already_assigned`` when someone was first), and ``callback`` (ask the
  system to call the caller back: the seat ``seat_id``, else the principal's own, is rung
  first).
- ``GET   /api/parties/{caller_key}/archive`` → ``{"calls", "orders", "satisfaction"}``.

Reading: seat lawyers (their own orders), supervisors, administrators, auditors; changing: not
auditors (403 from the guard). 403 when the role or person may not, 409 when the state does
not allow the action, 404 unknown order or action, 400 a bad body. All errors are JSON
(``hotline.web.json_error``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hotline.web import Role, json_error, json_response, principal_of, read_json, require
from workorders.archive import party_archive
from workorders.service import WorkOrderProblem, WorkOrderService

READ_ROLES = (Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR)
WRITE_ROLES = (Role.SEAT_LAWYER, Role.SUPERVISOR, Role.ADMINISTRATOR)
WORKORDERS_KEY = web.AppKey("hotline_workorders", WorkOrderService)


def setup(app: web.Application, service: Any) -> None:
    """Add the routes. ``service`` is the ``WorkOrderService`` or the hotline service holding
    it as ``.workorders``; the work-order service runs while the app runs (cleanup_ctx)."""
    workorders = service if isinstance(service, WorkOrderService) else service.workorders
    if workorders.integrations is None and getattr(service, "integrations", None) is not None:
        workorders.integrations = service.integrations
    app[WORKORDERS_KEY] = workorders
    app.cleanup_ctx.append(workorders.lifecycle)
    app.router.add_get("/api/workorders", list_orders)
    app.router.add_post("/api/workorders", create_order)
    app.router.add_get("/api/workorders/callbacks", callback_list)
    app.router.add_get("/api/workorders/{order_id}", get_order)
    app.router.add_patch("/api/workorders/{order_id}", patch_order)
    app.router.add_post("/api/workorders/{order_id}/actions/{action}", order_action)
    app.router.add_get("/api/parties/{caller_key}/archive", archive)


def _service(request: web.Request) -> WorkOrderService:
    return request.app[WORKORDERS_KEY]


def _problem(exc: WorkOrderProblem) -> web.Response:
    return json_error(exc.status, exc.code, exc.message, **exc.details)


@require(*READ_ROLES)
async def list_orders(request: web.Request) -> web.StreamResponse:
    principal = await principal_of(request)
    assert principal is not None
    query = request.query
    try:
        limit = int(query.get("limit", "50"))
    except ValueError:
        return json_error(400, "invalid_limit", "limit must be a whole number")
    try:
        items = await _service(request).list_orders(
            principal,
            state=query.get("state") or None,
            seat=query.get("seat") or None,
            call_id=query.get("call_id") or None,
            caller_key=query.get("caller_key") or None,
            limit=limit,
        )
    except WorkOrderProblem as exc:
        return _problem(exc)
    return json_response({"items": items})


@require(*READ_ROLES)
async def callback_list(request: web.Request) -> web.StreamResponse:
    principal = await principal_of(request)
    assert principal is not None
    service = _service(request)
    try:
        items = await service.callback_list(principal, request.query.get("scope") or None)
    except WorkOrderProblem as exc:
        return _problem(exc)
    body: dict[str, Any] = {"items": items}
    if principal.role in (Role.SUPERVISOR, Role.ADMINISTRATOR, Role.SERVICE):
        body["seats"] = await service.assignable_seats()  # who an order can be assigned to
    return json_response(body)


@require(*WRITE_ROLES)
async def create_order(request: web.Request) -> web.StreamResponse:
    principal = await principal_of(request)
    assert principal is not None
    body = await read_json(request)
    try:
        order = await _service(request).create_manual(principal, body)
    except WorkOrderProblem as exc:
        return _problem(exc)
    return json_response(order, status=201)


@require(*READ_ROLES)
async def get_order(request: web.Request) -> web.StreamResponse:
    principal = await principal_of(request)
    assert principal is not None
    try:
        order = await _service(request).get(request.match_info["order_id"], principal)
    except WorkOrderProblem as exc:
        return _problem(exc)
    return json_response(order)


@require(*WRITE_ROLES)
async def patch_order(request: web.Request) -> web.StreamResponse:
    principal = await principal_of(request)
    assert principal is not None
    body = await read_json(request)
    try:
        order = await _service(request).edit(request.match_info["order_id"], principal, body)
    except WorkOrderProblem as exc:
        return _problem(exc)
    return json_response(order)


@require(*WRITE_ROLES)
async def order_action(request: web.Request) -> web.StreamResponse:
    principal = await principal_of(request)
    assert principal is not None
    body = await read_json(request) if request.can_read_body else {}
    note = body.get("note")
    if note is not None and not isinstance(note, str):
        return json_error(400, "invalid_note", "note must be text")
    try:
        order = await _service(request).act(
            request.match_info["order_id"],
            request.match_info["action"],
            principal,
            target=body.get("target"),
            note=note,
            seat_id=body.get("seat_id"),
        )
    except WorkOrderProblem as exc:
        return _problem(exc)
    return json_response(order)


@require(*READ_ROLES)
async def archive(request: web.Request) -> web.StreamResponse:
    caller_key = request.match_info["caller_key"]
    if not caller_key or len(caller_key) > 64 or not caller_key.isalnum():
        return json_error(400, "invalid_caller_key", "caller_key is the keyed hash (hex)")
    try:
        limit = max(1, min(int(request.query.get("limit", "50")), 200))
    except ValueError:
        return json_error(400, "invalid_limit", "limit must be a whole number")
    engine = _service(request).engine
    result = await asyncio.to_thread(party_archive, engine, caller_key, limit=limit)
    return json_response(result)
