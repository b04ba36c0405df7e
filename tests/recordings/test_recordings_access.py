"""The recordings HTTP API: roles, mandatory reason, an audit row for every access, streaming
the decrypted WAV, refusing tampered files; the transcript endpoint."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from hotline.db.testing import DbTarget
from hotline.events import CallEventLog, EventType, events_for_call
from hotline.web import Principal, Role, new_app
from recordings import http
from recordings.access import RecordingAccess
from recordings.store import RecordingStore, load_keyring
from sim.audio import make_tone_wav


async def _by_header(request: web.Request) -> Principal | None:
    role = request.headers.get("X-Test-Role")
    return Principal(id=f"u-{role}", role=Role(role), name=role) if role else None


@pytest.fixture
async def api(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path
) -> AsyncIterator[tuple[TestClient, RecordingStore, RecordingAccess]]:
    store = RecordingStore(sqlite_db.engine, tmp_path / "rec", load_keyring(tmp_path), event_log)
    access = RecordingAccess(store, event_log)
    service = SimpleNamespace(recordings=SimpleNamespace(access=access, store=store))
    app = new_app(service, [_by_header])
    http.setup(app, service)
    async with TestClient(TestServer(app)) as client:
        yield client, store, access


def _as(role: Role) -> dict[str, str]:
    return {"X-Test-Role": role.value}


async def test_audio_needs_an_allowed_role_and_a_reason_and_is_audited(
    api: tuple[TestClient, RecordingStore, RecordingAccess],
    tmp_path: Path,
    sqlite_db: DbTarget,
    event_log: CallEventLog,
) -> None:
    client, store, access = api
    wav = make_tone_wav(tmp_path / "a.wav", 440, 1.5)
    original = wav.read_bytes()
    info = await store.store("call-9", "call", wav)
    url = f"/api/recordings/{info.id}/audio"

    assert (await client.get(url, params={"reason": "质检"})).status == 401
    denied = await client.get(url, params={"reason": "质检"}, headers=_as(Role.SEAT_LAWYER))
    assert denied.status == 403
    no_reason = await client.get(url, headers=_as(Role.SUPERVISOR))
    assert no_reason.status == 400
    assert (await no_reason.json())["error"]["code"] == "reason_required"
    assert access.audit_records() == []  # nothing was read, nothing to audit

    ok = await client.get(url, params={"reason": "投诉复核 #12"}, headers=_as(Role.AUDITOR))
    assert ok.status == 200 and ok.headers["Content-Type"] == "audio/wav"
    body = await ok.read()
    assert body == original
    assert ok.headers["X-Recording-Sha256"] == hashlib.sha256(original).hexdigest()
    dl = await client.get(
        url, params={"reason": "调取证据", "download": "1"}, headers=_as(Role.ADMINISTRATOR)
    )
    assert dl.status == 200 and "attachment" in dl.headers["Content-Disposition"]
    await dl.read()

    missing = await client.get(
        "/api/recordings/nope/audio", params={"reason": "x1"}, headers=_as(Role.SUPERVISOR)
    )
    assert missing.status == 404

    rows = access.audit_records()
    assert [(r["principal_id"], r["action"], r["outcome"], r["reason"]) for r in rows] == [
        ("u-auditor", "play", "granted", "投诉复核 #12"),
        ("u-administrator", "download", "granted", "调取证据"),
        ("u-supervisor", "play", "not_found", "x1"),
    ]
    assert rows[0]["recording_id"] == info.id and rows[0]["call_id"] == "call-9"
    assert rows[0]["at"] is not None
    await event_log.flush()
    accessed = [e for e in events_for_call(sqlite_db.engine, "call-9")
                if e.type == EventType.RECORDING_ACCESSED]  # fmt: skip
    assert [e.data["action"] for e in accessed] == ["play", "download"]


async def test_a_tampered_file_is_refused_and_the_attempt_audited(
    api: tuple[TestClient, RecordingStore, RecordingAccess], tmp_path: Path
) -> None:
    client, store, access = api
    info = await store.store("call-t", "call", make_tone_wav(tmp_path / "t.wav", 300, 1.0))
    path = store.file_of(info)
    data = bytearray(path.read_bytes())
    data[-40] ^= 0x01
    path.write_bytes(bytes(data))
    response = await client.get(
        f"/api/recordings/{info.id}/audio", params={"reason": "抽查"}, headers=_as(Role.AUDITOR)
    )
    assert response.status == 409
    assert [r["outcome"] for r in access.audit_records(recording_id=info.id)] == ["invalid"]


async def test_listing_and_transcript_are_audited(
    api: tuple[TestClient, RecordingStore, RecordingAccess],
    tmp_path: Path,
    sqlite_db: DbTarget,
) -> None:
    client, store, access = api
    info = await store.store("call-l", "message", make_tone_wav(tmp_path / "m.wav", 500, 0.5))
    listed = await client.get(
        "/api/recordings", params={"call_id": "call-l"}, headers=_as(Role.SUPERVISOR)
    )
    assert listed.status == 200
    body = await listed.json()
    assert [r["id"] for r in body["recordings"]] == [info.id]
    assert body["recordings"][0]["kind"] == "message"
    assert (await client.get("/api/recordings", headers=_as(Role.SUPERVISOR))).status == 400

    seat = await client.get("/api/calls/call-l/transcript", headers=_as(Role.SEAT_LAWYER))
    assert seat.status == 200 and (await seat.json())["segments"] == []
    actions = [(r["action"], r["call_id"]) for r in access.audit_records(call_id="call-l")]
    assert actions == [("list", "call-l"), ("transcript", "call-l")]


def test_transcript_text_helper() -> None:
    from recordings.service import transcript_text

    segments = [{"speaker": "caller", "text": "你好"}, {"speaker": "seat", "text": "请讲"}]
    assert transcript_text(segments) == "[caller] 你好\n[seat] 请讲"
