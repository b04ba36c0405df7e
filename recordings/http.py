"""HTTP API of the recordings feature (routes added by ``setup(app, service)``).

- ``GET /api/recordings?call_id=<id>`` — the call's recordings (metadata only).
- ``GET /api/recordings/{id}/audio?reason=<why>[&download=1]`` — the decrypted WAV, streamed.
  ``reason`` is mandatory (400 ``reason_required``); 404 unknown, 410 purged, 409 if the
  stored file fails authentication (nothing is sent), 503 if the audit cannot be written.
- ``GET /api/calls/{call_id}/transcript[?reason=<why>]`` — the call's transcript segments.

Audio and listings: supervisors, administrators, auditors (and the service token). The
transcript also to seat lawyers, who need it to draft the work order. Every request that
reaches a handler is audited by ``recordings.access`` before anything is returned.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from hotline.web import Role, json_error, json_response, principal_of, require
from recordings.access import AccessRefused, AuditUnavailable, ReasonRequired
from recordings.models import AuditOutcome

AUDIO_ROLES = (Role.SUPERVISOR, Role.ADMINISTRATOR, Role.AUDITOR)
TRANSCRIPT_ROLES = (*AUDIO_ROLES, Role.SEAT_LAWYER)
RECORDINGS_KEY = web.AppKey("hotline_recordings", object)
_STATUS = {AuditOutcome.NOT_FOUND: 404, AuditOutcome.GONE: 410, AuditOutcome.INVALID: 409}


def setup(app: web.Application, service: Any) -> None:
    """Add the routes; ``service.recordings`` is the ``RecordingService``."""
    app[RECORDINGS_KEY] = service.recordings
    app.router.add_get("/api/recordings", list_recordings)
    app.router.add_get("/api/recordings/{recording_id}/audio", recording_audio)
    app.router.add_get("/api/calls/{call_id}/transcript", call_transcript)


def _service(request: web.Request) -> Any:
    return request.app[RECORDINGS_KEY]


@require(*AUDIO_ROLES)
async def list_recordings(request: web.Request) -> web.StreamResponse:
    call_id = request.query.get("call_id", "").strip()
    if not call_id:
        return json_error(400, "call_id_required", "give ?call_id=<call id>")
    principal = await principal_of(request)
    assert principal is not None
    try:
        infos = await _service(request).access.list_for_call(
            principal, call_id, request.query.get("reason")
        )
    except AuditUnavailable as exc:
        return json_error(503, "audit_unavailable", str(exc))
    return json_response({"call_id": call_id, "recordings": [i.to_json() for i in infos]})


@require(*AUDIO_ROLES)
async def recording_audio(request: web.Request) -> web.StreamResponse:
    recording_id = request.match_info["recording_id"]
    principal = await principal_of(request)
    assert principal is not None
    download = request.query.get("download", "") in ("1", "true", "yes")
    try:
        grant = await _service(request).access.audio(
            principal, recording_id, request.query.get("reason"), download=download
        )
    except ReasonRequired as exc:
        return json_error(400, "reason_required", str(exc))
    except AccessRefused as exc:
        return json_error(_STATUS[exc.outcome], exc.outcome.value, str(exc))
    except AuditUnavailable as exc:
        return json_error(503, "audit_unavailable", str(exc))
    try:
        size = await asyncio.to_thread(lambda: grant.path.stat().st_size)
        response = web.StreamResponse(
            headers={
                "Content-Type": "audio/wav",
                "Content-Length": str(size),
                "Content-Disposition": (
                    f'{"attachment" if download else "inline"}; filename="{recording_id}.wav"'
                ),
                "Cache-Control": "no-store",
                "X-Recording-Sha256": grant.info.sha256,
            }
        )
        await response.prepare(request)
        handle = await asyncio.to_thread(open, grant.path, "rb")
        try:
            while chunk := await asyncio.to_thread(handle.read, 64 * 1024):
                await response.write(chunk)
        finally:
            await asyncio.to_thread(handle.close)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(grant.close)


@require(*TRANSCRIPT_ROLES)
async def call_transcript(request: web.Request) -> web.StreamResponse:
    call_id = request.match_info["call_id"]
    principal = await principal_of(request)
    assert principal is not None
    try:
        segments = await _service(request).access.transcript(
            principal, call_id, request.query.get("reason")
        )
    except AuditUnavailable as exc:
        return json_error(503, "audit_unavailable", str(exc))
    return json_response({"call_id": call_id, "segments": segments})
