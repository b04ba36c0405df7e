"""Hotline administration over HTTP: seats, queues, IVR flows, business hours and holidays.

Owns the administrator's API behind ``/admin`` (the page is ``static/admin.html``). It holds no
domain logic of its own: seats are stored by ``acd.seats`` (the CLI's functions), Asterisk
takes a seat change through ``hotline.asterisk.reload.push_seats``, flows are checked by
``ivr.flow.parse_flow`` and holiday files by ``ivr.calendar.load_holidays``. What it adds is
the operator's workflow around them: authorisation, validation with clear errors, version
history with roll-back, the live switch, and an audit row for every change.

Who may do what (checked on the server; state changes need the session's CSRF token; every
refusal and every change is in the security audit log with the actor):

=======  ========================================  =====================================
GET      /api/admin/seats                          seats with their live ACD state (R)
POST     /api/admin/seats                          create; SIP password returned once (A)
POST     /api/admin/seats/{id}                     edit skills / region / name (A)
POST     /api/admin/seats/{id}/disable | enable    (A)
POST     /api/admin/seats/{id}/reset-sip           new SIP password, returned once (A)
GET      /api/admin/queues                         the ACD's queues and their settings (R)
GET      /api/admin/flow                           current flow YAML, warnings, history (R)
GET      /api/admin/flow/versions/{n}              one saved version's YAML (R)
POST     /api/admin/flow/validate                  {text, filename?} → problems (A)
POST     /api/admin/flow                           {text, filename?} → saved + live (A)
POST     /api/admin/flow/rollback                  {version} (A)
GET      /api/admin/calendar                       hours, holidays in force, holiday files (R)
GET      /api/admin/holidays/{name}                one holiday file's YAML + history (R)
POST     /api/admin/holidays/{name}                {text} → saved, calendar reloaded (A)
POST     /api/admin/holidays/{name}/rollback       {version} (A)
=======  ========================================  =====================================

(R) administrator, supervisor, auditor; (A) administrator only. Malformed input is a 400 with a
JSON error naming the problem, and nothing is changed. Flow and holiday problems come as a list
of ``FILE:LINE: problem`` strings.

Where things live: the flow in service is ``ivr.flow_file`` when configured, else the first
upload goes to ``<runtime>/ivr/flow.yaml``, which ``hotline.service`` prefers over the packaged
flow from then on. Saved versions are kept under ``<runtime>/admin-history/``. Holiday files
are written where the flow loader reads them (``<runtime>/holidays``, seeded from the packaged
``ivr/holidays``, which is never written). Queues are derived from the
flow's queue nodes and ``acd:`` in the configuration file when the service starts: a flow that
adds or removes a queue is saved and live for the IVR at once, the ACD takes it at the next
restart (the response says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from acd import seats as seat_store
from acd.model import InvalidTransition
from acd.wiring import flow_queues
from agent_desk.http import desk_of, guarded
from hotline.web import Role, json_error, json_response, read_json
from ivr.calendar import HOLIDAYS_DIR, WEEKDAYS, CalendarError, load_holidays
from ivr.flow import FlowError, parse_flow

log = logging.getLogger(__name__)

READ = (Role.ADMINISTRATOR, Role.SUPERVISOR, Role.AUDITOR)
WRITE = (Role.ADMINISTRATOR,)
MAX_YAML_BYTES = 256 * 1024
HOLIDAY_NAME = re.compile(r"^[a-z]{2,8}-(\d{4})$")
FILENAME = re.compile(r"[^\w.\-]+")
# Audit action of a change that was made (a refused one is "<action>_failed").
DONE = {
    "flow.update": "flow.updated",
    "flow.rollback": "flow.rolled_back",
    "holidays.update": "holidays.updated",
    "holidays.rollback": "holidays.rolled_back",
}


def uploaded_flow_file(runtime_dir: Path) -> Path | None:
    """The flow an administrator uploaded (when no ``ivr.flow_file`` is configured), if any."""
    path = runtime_dir / "ivr" / "flow.yaml"
    return path if path.is_file() else None


# --- version history ---------------------------------------------------------------------------


class History:
    """Saved versions of one document (the flow, a holiday file): ``NNNN.yaml`` + ``index.json``.

    Version 1 is the document as it was before the first change through the API, so the
    original can always be restored."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def entries(self) -> list[dict[str, Any]]:
        try:
            return json.loads((self.dir / "index.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []

    def text(self, version: int) -> str | None:
        try:
            return (self.dir / f"{version:04d}.yaml").read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def add(self, text: str, **meta: Any) -> dict[str, Any]:
        self.dir.mkdir(parents=True, exist_ok=True)
        entries = self.entries()
        version = entries[-1]["version"] + 1 if entries else 1
        _write_atomic(self.dir / f"{version:04d}.yaml", text)
        entry = {
            "version": version,
            "saved_at": datetime.now(UTC).isoformat(),
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            **meta,
        }
        entries.append(entry)
        _write_atomic(self.dir / "index.json", json.dumps(entries, ensure_ascii=False, indent=1))
        return entry


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# --- the administration's state ----------------------------------------------------------------


@dataclass
class Admin:
    """What the handlers need from the service; every part may be missing in a partial app."""

    service: Any
    holidays_dir: Path
    history_dir: Path | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Seat changes made while the seat is signed in reach the ACD when it signs out.
    pending: dict[str, Any] = field(default_factory=dict)
    watcher: asyncio.Task[None] | None = None

    @property
    def engine(self) -> Any:
        return self.service.engine

    @property
    def acd(self) -> Any:
        return getattr(self.service, "acd", None)

    @property
    def flows(self) -> Any:
        return getattr(self.service, "flows", None)

    @property
    def runtime_dir(self) -> Path | None:
        settings = getattr(self.service, "settings", None)
        return getattr(settings, "runtime_path", None)

    def flow_target(self) -> Path:
        """Where an uploaded flow goes: the configured flow file, else the runtime's."""
        settings = getattr(self.service, "settings", None)
        configured = getattr(getattr(settings, "ivr", None), "flow_file", None)
        if configured is not None:
            return Path(configured)
        assert self.runtime_dir is not None
        return self.runtime_dir / "ivr" / "flow.yaml"

    def flow_history(self) -> History:
        assert self.history_dir is not None
        return History(self.history_dir / "flow")

    def holiday_history(self, name: str) -> History:
        assert self.history_dir is not None
        return History(self.history_dir / "holidays" / name)


ADMIN_KEY = web.AppKey("hotline_admin", Admin)


def admin_of(request: web.Request) -> Admin:
    return request.app[ADMIN_KEY]


def setup(app: web.Application, service: Any) -> Admin:
    """Add the administration API to the desk's application (called by ``agent_desk.http``)."""
    runtime_dir = getattr(getattr(service, "settings", None), "runtime_path", None)
    admin = Admin(
        service,
        holidays_dir=Path(getattr(service, "holidays_dir", None) or HOLIDAYS_DIR),
        history_dir=Path(runtime_dir) / "admin-history" if runtime_dir else None,
    )
    app[ADMIN_KEY] = admin

    async def on_startup(_app: web.Application) -> None:
        bus = getattr(service, "bus", None)
        if bus is not None:
            admin.watcher = asyncio.create_task(_apply_after_logout(admin, bus))

    async def on_cleanup(_app: web.Application) -> None:
        if admin.watcher is not None:
            admin.watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await admin.watcher

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    r = app.router
    r.add_get("/api/admin/seats", list_seats)
    r.add_post("/api/admin/seats", create_seat)
    r.add_post("/api/admin/seats/{seat_id}", edit_seat)
    r.add_post("/api/admin/seats/{seat_id}/disable", disable_seat)
    r.add_post("/api/admin/seats/{seat_id}/enable", enable_seat)
    r.add_post("/api/admin/seats/{seat_id}/reset-sip", reset_sip_password)
    r.add_get("/api/admin/queues", list_queues)
    r.add_get("/api/admin/flow", show_flow)
    r.add_get("/api/admin/flow/versions/{version}", flow_version)
    r.add_post("/api/admin/flow/validate", validate_flow)
    r.add_post("/api/admin/flow", upload_flow)
    r.add_post("/api/admin/flow/rollback", rollback_flow)
    r.add_get("/api/admin/calendar", show_calendar)
    r.add_get("/api/admin/holidays/{name}", show_holidays)
    r.add_post("/api/admin/holidays/{name}", upload_holidays)
    r.add_post("/api/admin/holidays/{name}/rollback", rollback_holidays)
    return admin


async def _apply_after_logout(admin: Admin, bus: Any) -> None:
    """A seat edited while signed in gets its new skills in the ACD once it signs out."""
    sub = bus.subscribe("seat.logout", maxsize=1000)
    try:
        async for event in sub:
            seat_id = event.data.get("seat_id")
            cfg = admin.pending.pop(seat_id, None)
            if cfg is not None and admin.acd is not None:
                try:
                    admin.acd.core.add_seat(cfg)
                    log.info("seat %s: new configuration applied after sign-out", seat_id)
                except InvalidTransition:
                    admin.pending[seat_id] = cfg  # signed in again at once; try next time
    finally:
        bus.unsubscribe(sub)


async def _audit(request: web.Request, action: str, **kw: Any) -> None:
    principal = request.get("principal")
    if principal is not None and principal.role == Role.SERVICE:
        kw.setdefault("actor", principal.id)  # a program with the API token, not a desk user
        kw.setdefault("actor_role", str(principal.role))
    await desk_of(request).auth.audit(request, action, **kw)


async def _refuse(
    request: web.Request, action: str, target: str, code: str, message: str, **details: Any
) -> web.Response:
    """A 400 with a clear JSON error, audited as a failed change (nothing was changed)."""
    await _audit(request, f"{action}_failed", outcome="failed", target=target, code=code)
    return json_error(400, code, message, **details)


# --- seats -------------------------------------------------------------------------------------


def _seat_json(row: Any, admin: Admin) -> dict[str, Any]:
    state = None
    acd = admin.acd
    if acd is not None and row.seat_id in acd.core.seat_ids():
        view = acd.core.seat_view(row.seat_id)
        state = {"state": str(view.state), "reason": view.reason, "call_id": view.call_id}
    return {
        "seat_id": row.seat_id,
        "display_name": row.display_name,
        "skills": dict(row.skills),
        "region": row.region,
        "wrap_up_s": row.wrap_up_s,
        "active": row.active,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "live": state,
        "pending": row.seat_id in admin.pending,
    }


def _parse_skills(value: Any) -> dict[str, int]:
    """Skills as {"labor": 3} or "labor:3,family:2", checked by the seat directory's parser."""
    if isinstance(value, str):
        return seat_store.parse_skills(value)
    if isinstance(value, dict):
        parts = []
        for name, level in value.items():
            if not isinstance(level, int) or isinstance(level, bool):
                raise seat_store.SeatError(f"skill {name!r}: the level must be a whole number")
            parts.append(f"{name}:{level}")
        return seat_store.parse_skills(",".join(parts))
    raise seat_store.SeatError("skills must be an object {name: level} or 'name:level,...'")


def _text_field(body: dict[str, Any], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value.strip()) > limit:
        raise seat_store.SeatError(f"{key} must be text of at most {limit} characters")
    return value.strip()


async def _push_to_asterisk(admin: Admin) -> dict[str, Any]:
    """Re-render PJSIP with the active seats and reload it (blocking work off the loop)."""
    runtime = getattr(admin.service, "asterisk", None)
    if runtime is None:
        return {"ok": True, "message": "no Asterisk in this process"}
    from hotline.asterisk.reload import push_seats
    from hotline.asterisk.runtime import AsteriskError

    def push() -> str:
        return push_seats(runtime, seat_store.credentials(admin.engine))

    try:
        return {"ok": True, "message": await asyncio.to_thread(push)}
    except AsteriskError as exc:
        log.error("seat change not taken by Asterisk: %s", exc)
        return {"ok": False, "message": str(exc)}


def _acd_learn(admin: Admin, row: Any) -> str:
    """Tell the running ACD about a seat's (new) configuration; returns what happened."""
    acd = admin.acd
    if acd is None:
        return "no_acd"
    cfg = seat_store.seat_config(row)
    if row.seat_id not in acd.core.seat_ids():
        acd.ensure_seat(cfg)
        return "applied"
    try:
        acd.core.add_seat(cfg)  # only while the seat is signed out
    except InvalidTransition:
        admin.pending[row.seat_id] = cfg
        return "after_logout"
    admin.pending.pop(row.seat_id, None)
    return "applied"


@guarded(*READ)
async def list_seats(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    rows = await asyncio.to_thread(seat_store.list_seats, admin.engine, active_only=False)
    return json_response({"seats": [_seat_json(row, admin) for row in rows]})


@guarded(*WRITE)
async def create_seat(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    body = await read_json(request, max_bytes=8192)
    seat_id = body.get("seat_id")
    target = str(seat_id)[:64]
    try:
        if not isinstance(seat_id, str):
            raise seat_store.SeatError("seat_id must be text, e.g. labor7")
        skills = _parse_skills(body.get("skills", {}))
        region = _text_field(body, "region", 64) or "default"
        name = _text_field(body, "display_name", 100) or ""
        async with admin.lock:
            new = await asyncio.to_thread(
                seat_store.add_seat,
                admin.engine,
                seat_id.strip(),
                skills=skills,
                region=region,
                display_name=name,
            )
            row = await asyncio.to_thread(seat_store.get_seat, admin.engine, new.seat_id)
            asterisk = await _push_to_asterisk(admin)
            acd = _acd_learn(admin, row)
    except seat_store.SeatError as exc:
        return await _refuse(request, "seat.create", target, "invalid_seat", str(exc))
    await _audit(
        request, "seat.created", target=new.seat_id, skills=skills, region=region,
        asterisk=asterisk["message"],
    )  # fmt: skip
    return json_response(
        {"seat": _seat_json(row, admin), "sip": _sip_json(admin, new), "asterisk": asterisk,
         "acd": acd},
        status=201,
    )  # fmt: skip


def _sip_json(admin: Admin, new: seat_store.NewSeat) -> dict[str, Any]:
    """What the seat's phone needs; the password is shown this once (only its digest is kept)."""
    ast = getattr(getattr(admin.service, "settings", None), "asterisk", None)
    return {
        "user": new.seat_id,
        "password": new.password,
        "realm": "hotline",
        "registrar": f"sip:{ast.bind}:{ast.sip_port}" if ast is not None else None,
    }


@guarded(*WRITE)
async def reset_sip_password(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    seat_id = request.match_info["seat_id"]
    async with admin.lock:
        row = await _get_seat_or_404(admin, seat_id)
        if row is None:
            return json_error(404, "unknown_seat", f"no seat {seat_id!r}")
        new = await asyncio.to_thread(seat_store.reset_password, admin.engine, seat_id)
        # The old password stops working at the reload (a registered phone keeps its
        # registration until it refreshes it).
        asterisk = await _push_to_asterisk(admin)
    await _audit(request, "seat.sip_password_reset", target=seat_id, asterisk=asterisk["message"])
    return json_response({"seat": _seat_json(row, admin), "sip": _sip_json(admin, new),
                          "asterisk": asterisk})  # fmt: skip


async def _get_seat_or_404(admin: Admin, seat_id: str) -> Any:
    return await asyncio.to_thread(seat_store.get_seat, admin.engine, seat_id)


@guarded(*WRITE)
async def edit_seat(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    seat_id = request.match_info["seat_id"]
    body = await read_json(request, max_bytes=8192)
    unknown = set(body) - {"skills", "region", "display_name"}
    try:
        if unknown:
            raise seat_store.SeatError(f"unknown field(s) {sorted(unknown)}: give skills, region "
                                       "or display_name")  # fmt: skip
        skills = _parse_skills(body["skills"]) if "skills" in body else None
        region = _text_field(body, "region", 64)
        if region == "":
            raise seat_store.SeatError("region must not be empty")
        name = _text_field(body, "display_name", 100)
    except seat_store.SeatError as exc:
        return await _refuse(request, "seat.update", seat_id, "invalid_seat", str(exc))
    async with admin.lock:
        before = await _get_seat_or_404(admin, seat_id)
        if before is None:
            return json_error(404, "unknown_seat", f"no seat {seat_id!r}")
        row = await asyncio.to_thread(
            seat_store.update_seat,
            admin.engine,
            seat_id,
            skills=skills,
            region=region,
            display_name=name,
        )
        acd = _acd_learn(admin, row) if row.active else "disabled"
    changes = {
        key: {"from": old, "to": new}
        for key, old, new in (
            ("skills", dict(before.skills), dict(row.skills)),
            ("region", before.region, row.region),
            ("display_name", before.display_name, row.display_name),
        )
        if old != new
    }
    await _audit(request, "seat.updated", target=seat_id, changes=changes, acd=acd)
    return json_response({"seat": _seat_json(row, admin), "acd": acd, "changes": changes})


async def _set_active(request: web.Request, active: bool) -> web.StreamResponse:
    admin = admin_of(request)
    seat_id = request.match_info["seat_id"]
    async with admin.lock:
        if await _get_seat_or_404(admin, seat_id) is None:
            return json_error(404, "unknown_seat", f"no seat {seat_id!r}")
        row = await asyncio.to_thread(seat_store.set_active, admin.engine, seat_id, active)
        asterisk = await _push_to_asterisk(admin)
        acd = "no_acd"
        if admin.acd is not None:
            if active:
                acd = _acd_learn(admin, row)
            elif seat_id in admin.acd.core.seat_ids():
                # A signed-in seat is signed out, so that no call is offered to it any more.
                try:
                    await admin.acd.seat_logout(seat_id)
                    acd = "signed_out"
                except InvalidTransition:
                    acd = "in_call"  # it signs out when the call ends; it cannot sign in again
            else:
                acd = "applied"
    action = "seat.enabled" if active else "seat.disabled"
    await _audit(request, action, target=seat_id, asterisk=asterisk["message"], acd=acd)
    return json_response({"seat": _seat_json(row, admin), "asterisk": asterisk, "acd": acd})


@guarded(*WRITE)
async def disable_seat(request: web.Request) -> web.StreamResponse:
    return await _set_active(request, False)


@guarded(*WRITE)
async def enable_seat(request: web.Request) -> web.StreamResponse:
    return await _set_active(request, True)


# --- queues ------------------------------------------------------------------------------------


@guarded(*READ)
async def list_queues(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    acd = admin.acd
    flows = admin.flows
    in_flow = sorted(flow_queues(flows.current)) if flows is not None else []
    queues = []
    for q in getattr(getattr(acd, "config", None), "queues", ()):
        queues.append(
            {
                "name": q.name,
                # A queue of the flow, or one a partner trunk's transfers enter directly.
                "origin": "flow" if q.name in in_flow else "partner",
                "skill": q.skill,
                "min_level": q.min_level,
                "regions": list(q.regions) if q.regions else None,
                "strategy": q.strategy,
                "ring_timeout_s": q.ring_timeout_s,
                "wrap_up_s": q.wrap_up_s,
                "max_wait_s": q.max_wait_s,
                "on_max_wait": q.on_max_wait,
                "overflow": q.overflow.model_dump() if q.overflow else None,
                "aging_s_per_level": q.aging_s_per_level,
                "relaxation": [s.model_dump() for s in q.relaxation],
                "callback_offer_after_s": q.callback_offer_after_s,
                "announce_interval_s": q.announce_interval_s,
            }
        )
    origin_priority = dict(getattr(getattr(acd, "config", None), "origin_priority", {}) or {})
    return json_response(
        {
            "queues": queues,
            "origin_priority": origin_priority,
            "flow_queues": in_flow,
            "source": {
                "flow_file": str(flows.path) if flows is not None else None,
                "settings": "acd: in the configuration file (defaults, acd.queues.<name>)",
                "note": "队列由 IVR 流程中的 queue 节点和配置文件的 acd 部分决定；"
                "修改后重启服务生效 (queues come from the flow's queue nodes and the acd: "
                "section of the configuration file; the ACD takes changes at restart)",
            },
        }
    )


# --- IVR flow ----------------------------------------------------------------------------------


def _filename(body: dict[str, Any], default: str) -> str:
    name = body.get("filename")
    if not isinstance(name, str) or not name.strip():
        return default
    return FILENAME.sub("_", Path(name).name)[:80] or default


def _yaml_text(body: dict[str, Any]) -> str:
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("give the YAML as text (a non-empty string)")
    if len(text.encode()) > MAX_YAML_BYTES:
        raise ValueError(f"the YAML is over {MAX_YAML_BYTES // 1024} KiB")
    return text


def _check_flow(admin: Admin, text: str, filename: str) -> Any:
    """The parsed flow, or FlowError with FILE:LINE problems (nothing is written)."""
    return parse_flow(text, admin.flows.catalogue, file=filename, holidays_dir=admin.holidays_dir)


def _reload_flow(admin: Admin) -> str | None:
    """Switch the live flow to the file's, as SIGHUP does; the error text when it is refused."""
    service, flows = admin.service, admin.flows
    if callable(getattr(service, "reload_flow", None)):
        if service.reload_flow():
            return None
        return "the flow in service stays: its reload was refused (see the service log)"
    error = flows.reload()  # a deployment without the service (tests): the same swap
    return None if error is None else str(error)


def _flow_unavailable(admin: Admin) -> web.Response | None:
    if admin.flows is None:
        return json_error(503, "no_flow", "this process runs no IVR flow")
    return None


def _flow_meta(flow: Any) -> dict[str, Any]:
    return {
        "flow_id": flow.id,
        "nodes": len(flow.nodes),
        "queues": sorted(flow_queues(flow)),
        "warnings": list(flow.warnings),
    }


@guarded(*READ)
async def show_flow(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if (error := _flow_unavailable(admin)) is not None:
        return error
    flows = admin.flows
    try:
        text = await asyncio.to_thread(flows.path.read_text, encoding="utf-8")
    except OSError as exc:
        text = f"# cannot read {flows.path}: {exc}"
    history = admin.flow_history().entries() if admin.history_dir else []
    return json_response(
        {
            "path": str(flows.path),
            "text": text,
            "live": _flow_meta(flows.current),
            "history": history,
            "editable": admin.history_dir is not None,
        }
    )


@guarded(*READ)
async def flow_version(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if admin.history_dir is None:
        return json_error(404, "no_history", "no saved versions")
    try:
        version = int(request.match_info["version"])
    except ValueError:
        return json_error(400, "invalid_version", "the version is a number")
    text = admin.flow_history().text(version)
    if text is None:
        return json_error(404, "unknown_version", f"no flow version {version}")
    return json_response({"version": version, "text": text})


@guarded(*WRITE)
async def validate_flow(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if (error := _flow_unavailable(admin)) is not None:
        return error
    body = await read_json(request, max_bytes=MAX_YAML_BYTES + 4096)
    try:
        text = _yaml_text(body)
    except ValueError as exc:
        return json_error(400, "invalid_body", str(exc))
    try:
        flow = await asyncio.to_thread(_check_flow, admin, text, _filename(body, "flow.yaml"))
    except FlowError as exc:
        return json_response({"ok": False, "problems": [str(p) for p in exc.problems]})
    return json_response({"ok": True, "problems": [], **_flow_meta(flow)})


async def _save_flow(
    request: web.Request, text: str, filename: str, *, action: str, note: str
) -> web.StreamResponse:
    """Check, write, switch live, keep the version; ``action`` names the audit rows
    (``flow.update`` → ``flow.updated`` / ``flow.update_failed``)."""
    admin = admin_of(request)
    if admin.history_dir is None:
        return json_error(503, "no_runtime_dir", "no runtime directory to keep flow versions in")
    try:
        flow = await asyncio.to_thread(_check_flow, admin, text, filename)
    except FlowError as exc:
        problems = [str(p) for p in exc.problems]
        return await _refuse(
            request, action, filename, "invalid_flow",
            f"流程有 {len(problems)} 个问题，未保存 (the flow has {len(problems)} problem(s); "
            "nothing was saved)", problems=problems,
        )  # fmt: skip
    flows = admin.flows
    async with admin.lock:
        history = admin.flow_history()
        previous_path = flows.path
        previous_text = await asyncio.to_thread(previous_path.read_text, encoding="utf-8")
        old_queues = set(flow_queues(flows.current))
        if not history.entries():
            history.add(previous_text, actor=None, flow_id=flows.current.id, note="initial",
                        filename=previous_path.name)  # fmt: skip
        target = admin.flow_target()
        target_old = target.read_text(encoding="utf-8") if target.is_file() else None
        await asyncio.to_thread(_write_atomic, target, text)
        flows.path = target
        refused = await asyncio.to_thread(_reload_flow, admin)
        if refused is not None:
            # Put everything back: the file, the path; the flow in service never changed.
            if target_old is None:
                target.unlink(missing_ok=True)
            else:
                await asyncio.to_thread(_write_atomic, target, target_old)
            flows.path = previous_path
            return await _refuse(request, action, filename, "reload_refused", refused)
        principal = request.get("principal")
        entry = history.add(text, actor=principal.id if principal else None, flow_id=flow.id,
                            note=note, filename=filename)  # fmt: skip
    new_queues = set(flow_queues(flow))
    restart = sorted(new_queues ^ old_queues)
    await _audit(
        request, DONE[action], target=flow.id, version=entry["version"], sha256=entry["sha256"],
        filename=filename, path=str(target),
    )  # fmt: skip
    return json_response(
        {
            "ok": True,
            "version": entry["version"],
            "path": str(target),
            "live": _flow_meta(flows.current),
            "queues_changed": restart,
            "restart_needed": bool(restart),
        }
    )


@guarded(*WRITE)
async def upload_flow(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if (error := _flow_unavailable(admin)) is not None:
        return error
    body = await read_json(request, max_bytes=MAX_YAML_BYTES + 4096)
    filename = _filename(body, "flow.yaml")
    try:
        text = _yaml_text(body)
    except ValueError as exc:
        return await _refuse(request, "flow.update", filename, "invalid_body", str(exc))
    return await _save_flow(request, text, filename, action="flow.update", note="upload")


def _version_of(body: dict[str, Any]) -> int:
    version = body.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError("give the version to restore as a positive number")
    return version


@guarded(*WRITE)
async def rollback_flow(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    if (error := _flow_unavailable(admin)) is not None:
        return error
    body = await read_json(request, max_bytes=1024)
    try:
        version = _version_of(body)
    except ValueError as exc:
        return await _refuse(request, "flow.rollback", "flow", "invalid_version", str(exc))
    text = admin.flow_history().text(version) if admin.history_dir else None
    if text is None:
        return json_error(404, "unknown_version", f"no flow version {version}")
    return await _save_flow(
        request, text, f"flow-v{version}.yaml", action="flow.rollback",
        note=f"rollback to {version}",
    )  # fmt: skip


# --- business hours and holidays ---------------------------------------------------------------


def _span_text(span: tuple[Any, Any]) -> str:
    start, end = span
    end_text = "24:00" if end.hour == 23 and end.minute == 59 and end.second == 59 else (
        end.strftime("%H:%M"))  # fmt: skip
    return f"{start.strftime('%H:%M')}-{end_text}"


def _holiday_files(directory: Path) -> list[dict[str, Any]]:
    files = []
    for path in sorted(directory.glob("*.yaml")):
        entry: dict[str, Any] = {"name": path.stem, "holidays": [], "workdays": []}
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            entry["source"] = data.get("source")
            for kind in ("holidays", "workdays"):
                for item in data.get(kind) or []:
                    value = item.get("dates") if isinstance(item, dict) else item
                    label = item.get("name") if isinstance(item, dict) else None
                    entry[kind].append({"dates": str(value), "name": label})
        except (OSError, yaml.YAMLError, ValueError, AttributeError) as exc:
            entry["error"] = str(exc)
        files.append(entry)
    return files


def _ivr_now(admin: Admin) -> datetime:
    """The time the IVR decides opening hours by (``ivr.clock`` in a drill, else now)."""
    clock = getattr(getattr(admin.service, "calls", None), "clock", None)
    return clock() if callable(clock) else datetime.now(UTC)


@guarded(*READ)
async def show_calendar(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    calendar = getattr(getattr(admin.flows, "current", None), "calendar", None)
    hours = None
    if calendar is not None:
        hours = {
            "tz": calendar.tz,
            "weekly": {
                WEEKDAYS[d]: [_span_text(s) for s in calendar.hours.get(d, ())] for d in range(7)
            },
            "makeup_hours": [_span_text(s) for s in calendar.makeup_hours]
            if calendar.makeup_hours is not None
            else None,
            "holidays": sorted(d.isoformat() for d in calendar.holidays),
            "workdays": sorted(d.isoformat() for d in calendar.workdays),
            "open_now": calendar.is_open(_ivr_now(admin)),
        }
    files = await asyncio.to_thread(_holiday_files, admin.holidays_dir)
    return json_response(
        {
            "hours": hours,
            "flow_file": str(admin.flows.path) if admin.flows is not None else None,
            "holiday_files": files,
            "editable": admin.history_dir is not None,
            "note": "营业时间在 IVR 流程的 calendar 部分中修改 (edit the hours in the flow's "
            "calendar section)",
        }
    )


def _holiday_name(request: web.Request) -> str | None:
    name = request.match_info["name"]
    return name if HOLIDAY_NAME.match(name) else None


def _check_holidays(text: str, name: str) -> list[str]:
    """Problems of a holiday file as ``NAME.yaml:LINE: problem`` (empty: it is good)."""
    file = f"{name}.yaml"
    try:
        yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return [f"{file}:{mark.line + 1 if mark else 1}: not valid YAML: {exc.problem}"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file
        path.write_text(text, encoding="utf-8")
        try:
            found = load_holidays(path)
        except CalendarError as exc:
            message = str(exc).replace(f"holiday file {path}: ", "").replace(str(path), file)
            return [f"{file}:{_line_of(text, message)}: {message}"]
    problems = []
    year = int(HOLIDAY_NAME.match(name).group(1))  # type: ignore[union-attr]
    for kind, dates in (("holidays", found.holidays), ("workdays", found.workdays)):
        for day in sorted(d for d in dates if d.year != year):
            problems.append(
                f"{file}:{_line_of(text, day.isoformat())}: {kind}: {day} is not in {year} "
                f"(the file is for {year})"
            )
    if not found.holidays and not found.workdays:
        problems.append(f"{file}:1: no holidays and no workdays: expected dates under holidays:")
    return problems


def _line_of(text: str, message: str) -> int:
    """The first line that holds the date or value a problem names (1 when none does)."""
    for needle in re.findall(r"'([^']+)'|(\d{4}-\d{2}-\d{2})", message):
        value = needle[0] or needle[1]
        for number, line in enumerate(text.splitlines(), start=1):
            if value in line and not line.lstrip().startswith("#"):
                return number
    return 1


@guarded(*READ)
async def show_holidays(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    name = _holiday_name(request)
    if name is None:
        return json_error(400, "invalid_name", "a holiday file is named like cn-2027")
    path = admin.holidays_dir / f"{name}.yaml"
    text = path.read_text(encoding="utf-8") if path.is_file() else None
    history = admin.holiday_history(name).entries() if admin.history_dir else []
    return json_response({"name": name, "exists": text is not None, "text": text or "",
                          "history": history})  # fmt: skip


async def _save_holidays(
    request: web.Request, name: str, text: str, *, action: str, note: str
) -> web.StreamResponse:
    """As ``_save_flow``, for one holiday file (the flow is reloaded for its calendar)."""
    admin = admin_of(request)
    if admin.history_dir is None:
        return json_error(503, "no_runtime_dir", "no runtime directory to keep versions in")
    problems = await asyncio.to_thread(_check_holidays, text, name)
    if problems:
        return await _refuse(
            request, action, name, "invalid_holidays",
            f"节假日文件有 {len(problems)} 个问题，未保存 (the holiday file has {len(problems)} "
            "problem(s); nothing was saved)", problems=problems,
        )  # fmt: skip
    async with admin.lock:
        history = admin.holiday_history(name)
        path = admin.holidays_dir / f"{name}.yaml"
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old is not None and not history.entries():
            history.add(old, actor=None, note="initial")
        await asyncio.to_thread(_write_atomic, path, text)
        # The flow's calendar is built when the flow loads: reload it to take the new dates.
        refused = await asyncio.to_thread(_reload_flow, admin) if admin.flows else None
        if refused is not None:
            if old is None:
                path.unlink(missing_ok=True)
            else:
                await asyncio.to_thread(_write_atomic, path, old)
            return await _refuse(request, action, name, "reload_refused", refused)
        principal = request.get("principal")
        entry = history.add(text, actor=principal.id if principal else None, note=note)
    await _audit(
        request, DONE[action], target=name, version=entry["version"], sha256=entry["sha256"]
    )
    return json_response({"ok": True, "name": name, "version": entry["version"]})


@guarded(*WRITE)
async def upload_holidays(request: web.Request) -> web.StreamResponse:
    name = _holiday_name(request)
    if name is None:
        return await _refuse(request, "holidays.update", request.match_info["name"][:64],
                             "invalid_name", "a holiday file is named like cn-2027")  # fmt: skip
    body = await read_json(request, max_bytes=MAX_YAML_BYTES + 4096)
    try:
        text = _yaml_text(body)
    except ValueError as exc:
        return await _refuse(request, "holidays.update", name, "invalid_body", str(exc))
    return await _save_holidays(request, name, text, action="holidays.update", note="upload")


@guarded(*WRITE)
async def rollback_holidays(request: web.Request) -> web.StreamResponse:
    admin = admin_of(request)
    name = _holiday_name(request)
    if name is None:
        return json_error(400, "invalid_name", "a holiday file is named like cn-2027")
    body = await read_json(request, max_bytes=1024)
    try:
        version = _version_of(body)
    except ValueError as exc:
        return await _refuse(request, "holidays.rollback", name, "invalid_version", str(exc))
    text = admin.holiday_history(name).text(version) if admin.history_dir else None
    if text is None:
        return json_error(404, "unknown_version", f"no version {version} of {name}")
    return await _save_holidays(
        request, name, text, action="holidays.rollback", note=f"rollback to {version}"
    )
