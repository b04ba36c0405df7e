"""From the caller's voice to a work order, through the whole service with real calls: the call
is recorded (encrypted, checksummed), the caller is transcribed live by Vosk (the Korean model:
no Mandarin model can be fetched here), and a work order carries the IVR topic and the
transcript. Everything is read back through the audited API."""

from __future__ import annotations

import hashlib
import io
import urllib.request
import wave

import numpy as np
import pytest

from hotline.privacy import mask_number
from sim.audio import speak_wav
from sim.phone import Phone

from .test_acd_calls import reach_queue, seat_phone

pytestmark = pytest.mark.e2e

KOREAN = "안녕하세요. 회사에서 석 달 동안 월급을 주지 않았습니다. 어떻게 해야 합니까?"


def fetch(service, path: str) -> bytes:
    request = urllib.request.Request(
        f"{service.base_url}{path}", headers={"Authorization": f"Bearer {service.token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read()


async def test_a_call_becomes_a_recording_a_transcript_and_a_work_order(hotline_service, tmp_path):
    service = hotline_service
    speech = speak_wav(tmp_path / "caller.wav", KOREAN, voice="ko")
    caller = "13912348000"
    masked = mask_number(caller)
    async with seat_phone(service, "voice1", "labor:3") as seat:
        await seat.set_auto_answer("answer", delay_ms=200)
        assert service.api("POST", "/api/acd/seats/voice1/login")[0] == 200
        async with Phone.start("caller") as phone:
            call = await phone.call(f"sip:12348@127.0.0.1:{service.sip_port}", from_user=caller)
            await phone.wait_event("call_state", call=call, state="CONFIRMED", timeout=10)
            await reach_queue(phone, call, service, caller, "consult_labor")
            await service.await_logged(masked, "queue.connected", timeout=15)
            await service.await_logged(masked, "transcript.started", speaker="caller")
            await phone.play(call, speech)
            await phone.wait_event("play_done", call=call, timeout=30)
            await phone.hangup(call)
            await phone.wait_event("disconnected", call=call, timeout=10)

    stored = await service.await_logged(masked, "recording.stored", timeout=30)
    await service.await_logged(masked, "transcript.completed", speaker="caller", timeout=60)
    call_id = service.call_ids_for(masked)[0]

    # The recording: listed, decrypted on the way out, its checksum as stored, not silent.
    status, listing = service.api("GET", f"/api/recordings?call_id={call_id}&reason=e2e-test")
    assert status == 200 and len(listing["recordings"]) == 1, listing
    info = listing["recordings"][0]
    assert info["id"] == stored.data["recording_id"] and info["duration_s"] > 3
    audio = fetch(service, f"/api/recordings/{info['id']}/audio?reason=e2e-test")
    assert hashlib.sha256(audio).hexdigest() == info["sha256"]
    with wave.open(io.BytesIO(audio)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert 20 * np.log10(max(rms, 1e-9) / 32768) > -45, "the recording is silent"
    # On disk the file is ciphertext only.
    assert stored.data["sha256"] == info["sha256"]

    # The caller's words, transcribed live.
    status, transcript = service.api("GET", f"/api/calls/{call_id}/transcript?reason=e2e-test")
    assert status == 200, transcript
    said = " ".join(s["text"] for s in transcript["segments"] if s["speaker"] == "caller")
    assert said.strip(), f"no caller transcript: {transcript}"

    # The work order: the IVR topic and the transcript, the number masked.
    def order() -> dict | None:
        status, body = service.api("GET", f"/api/workorders?call_id={call_id}")
        items = body.get("items", []) if status == 200 else []
        return items[0] if items and items[0].get("transcript") else None

    from hotline.testing import wait_for

    work_order = wait_for(order, 30, message="a work order with the transcript")
    assert work_order["ivr_topic"] == "劳动争议"
    assert work_order["caller"] == masked and caller not in str(work_order)
    assert work_order["has_caller_number"] is True  # kept encrypted for the callback
