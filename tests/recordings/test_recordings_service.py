"""RecordingService without Asterisk: post-call transcription of stored recordings, and a
missing model (the hotline keeps running, defers, and catches up once a model is there)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from hotline.db.testing import DbTarget
from hotline.events import CallEventLog, EventType, events_for_call
from recordings.models import TranscriptState
from recordings.service import RecordingService, segments_for_call

pytestmark = pytest.mark.timeout(120)


async def test_a_voice_message_is_transcribed_after_the_call(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path, ko_model: Path, ko_speech: Path
) -> None:
    clear = tmp_path / "msg.wav"
    shutil.copy(ko_speech, clear)
    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=tmp_path / "rt", model_path=ko_model
    ) as service:
        info = await service.store_recording("call-msg", "message", clear)
        async with asyncio.timeout(60):
            await service.wait_post_call_idle()
        assert service.store.get(info.id).transcript_state == TranscriptState.DONE
    segments = segments_for_call(sqlite_db.engine, "call-msg")
    assert segments and all(s["text"] for s in segments)
    assert {(s["speaker"], s["source"], s["recording_id"]) for s in segments} == {
        ("caller", "post_call", info.id)
    }
    await event_log.flush()
    types = [e.type for e in events_for_call(sqlite_db.engine, "call-msg")]
    assert types[0] == EventType.RECORDING_STORED
    assert types.count(EventType.TRANSCRIPT_SEGMENT) == len(segments)
    assert types[-1] == EventType.TRANSCRIPT_COMPLETED


async def test_without_a_model_calls_are_recorded_and_transcribed_once_one_exists(
    sqlite_db: DbTarget, event_log: CallEventLog, tmp_path: Path, ko_model: Path, ko_speech: Path
) -> None:
    runtime = tmp_path / "rt"
    clear = tmp_path / "call.wav"
    shutil.copy(ko_speech, clear)
    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=runtime, model_path=tmp_path / "no-model"
    ) as service:
        assert not service.live_available
        assert "hotline models fetch zh" in (service.model_error or "")
        # No ARI is touched: refusal is immediate and logged.
        assert await service.tap(None, "call-x", "chan-1", "caller") is None  # type: ignore[arg-type]
        info = await service.store_recording("call-x", "call", clear)
        assert service.store.get(info.id).transcript_state == TranscriptState.PENDING

    await event_log.flush()
    deferred = [e for e in events_for_call(sqlite_db.engine, "call-x")
                if e.type == EventType.TRANSCRIPT_DEFERRED]  # fmt: skip
    assert [e.data for e in deferred] == [{"speaker": "caller", "reason": "no_model"}]

    async with RecordingService(
        sqlite_db.engine, event_log, runtime_dir=runtime, model_path=ko_model
    ) as service:
        async with asyncio.timeout(60):
            await service.wait_post_call_idle()
        assert service.store.get(info.id).transcript_state == TranscriptState.DONE
    segments = segments_for_call(sqlite_db.engine, "call-x")
    assert segments and {s["speaker"] for s in segments} == {"mixed"}
